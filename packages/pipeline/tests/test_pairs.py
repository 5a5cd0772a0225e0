"""Pair sampling invariants on synthetic songs."""

from pathlib import Path

import numpy as np
import pytest

from openriff.pipeline.data.layout import Song, StemFile, load_stems, read_generic
from openriff.pipeline.data.pairs import PairConfig, render_pair, sample_pairs, split_songs
from openriff.pipeline.data.synth import synth_dataset

RATE = 48_000
# Short windows so that 4-bar synthetic songs hold many of them.
CONFIG = PairConfig(window=2 * RATE, hop=RATE // 2, reference=RATE, p_no_context=0.2)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[Song]:
    root = tmp_path_factory.mktemp("songs")
    synth_dataset(root, 4, bars=6, seed=10)  # wide-style bars can be short (3/4, 200 bpm)
    return read_generic(root)[0]


def all_pairs(songs: list[Song], seed: int) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    return [p for song in songs for p in sample_pairs(song, load_stems(song), CONFIG, rng)]


def test_pair_invariants(songs: list[Song]) -> None:
    pairs = all_pairs(songs, seed=0)
    assert len(pairs) > 40
    vocal = {(s.name, stem.name) for s in songs for stem in s.stems if stem.vocal}
    assert vocal  # the fixture has sung stems, which must never be targets
    empty = 0
    for pair in pairs:
        assert (pair.song, pair.target) not in vocal
        assert pair.target not in pair.context
        empty += not pair.context
        if pair.reference_start is not None:
            # A different segment of the same stem: no overlap with the target window.
            ref_end = pair.reference_start + CONFIG.reference
            assert ref_end <= pair.start or pair.reference_start >= pair.start + pair.length
        assert pair.tags[0] == pair.instrument
    assert 0 < empty < len(pairs) / 2  # some unconditional examples, not most
    assert sum(p.reference_start is not None for p in pairs) > len(pairs) / 2
    assert len({p.target for p in pairs}) >= 4  # targets vary across stems


def test_targets_restrict_the_instrument(songs: list[Song]) -> None:
    config = PairConfig(window=2 * RATE, hop=RATE // 2, reference=RATE, targets=("bass",))
    rng = np.random.default_rng(0)
    pairs = [p for song in songs for p in sample_pairs(song, load_stems(song), config, rng)]
    assert len(pairs) > 20
    assert {p.instrument for p in pairs} == {"bass"}
    assert all("bass" not in p.context for p in pairs)
    assert max(len(p.context) for p in pairs) >= 4  # the context still mixes the others


def test_pairs_are_reproducible_and_seed_dependent(songs: list[Song]) -> None:
    assert all_pairs(songs, seed=1) == all_pairs(songs, seed=1)
    assert all_pairs(songs, seed=1) != all_pairs(songs, seed=2)


def test_rendered_audio_matches_the_pair(songs: list[Song]) -> None:
    waves = load_stems(songs[0])
    pair = next(
        p for p in sample_pairs(songs[0], waves, CONFIG, np.random.default_rng(0)) if p.context
    )
    context, target, reference = render_pair(pair, waves, CONFIG.reference)
    window = slice(pair.start, pair.start + pair.length)
    assert context is not None
    np.testing.assert_allclose(context, sum(waves[n][window] for n in pair.context), atol=1e-6)
    np.testing.assert_array_equal(target, waves[pair.target][window])
    assert reference is not None
    assert reference.shape == (CONFIG.reference,)


def test_silent_stems_are_never_targets(tmp_path: Path) -> None:
    t = np.arange(4 * RATE) / RATE
    waves = {
        "bass": (0.3 * np.sin(2 * np.pi * 55 * t)).astype(np.float32),
        "silent": np.zeros(4 * RATE, np.float32),
        "voice": (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
    }
    stems = (
        StemFile("bass", (tmp_path / "b.wav",), "bass"),
        StemFile("silent", (tmp_path / "s.wav",), "keys"),
        StemFile("voice", (tmp_path / "v.wav",), "vocals", vocal=True),
    )
    song = Song("s", tmp_path, stems)
    pairs = sample_pairs(song, waves, CONFIG, np.random.default_rng(0))
    assert pairs
    assert {p.target for p in pairs} == {"bass"}
    only_voice = Song("v", tmp_path, stems[1:])
    assert (
        sample_pairs(
            only_voice, {k: waves[k] for k in ("silent", "voice")}, CONFIG, np.random.default_rng(0)
        )
        == []
    )


def test_split_is_by_song_and_stable(songs: list[Song]) -> None:
    many = [Song(f"song{i}", Path("."), ()) for i in range(200)]
    train, held = split_songs(many, 0.2, seed=0)
    assert not {s.name for s in train} & {s.name for s in held}
    assert 20 < len(held) < 60
    _, again_held = split_songs([*many, Song("new", Path("."), ())], 0.2, seed=0)
    assert {s.name for s in held} <= {s.name for s in again_held}  # adding songs moves none
    assert split_songs(many, 0.2, seed=1)[1] != held
    with pytest.raises(ValueError, match="validation"):
        split_songs(many, 1.0)
