"""CLAP-free adherence measures on the synthetic generator's own stems, and the synthetic
evaluation of a bundle (``openriff evaluate synthetic``)."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from openriff.metrics.apa import audio_prompt_adherence
from openriff.pipeline.cli import main
from openriff.pipeline.data.synth import SynthSong, synth_song
from openriff.pipeline.evaluation.adherence import (
    harmonic_fit,
    onsets,
    pair_embedding,
    rhythmic_fit,
)
from openriff.pipeline.evaluation.synthetic import (
    SyntheticEvaluation,
    evaluate_synthetic,
    format_report,
)
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

RATE = 48_000


@pytest.fixture(scope="module")
def songs() -> list[SynthSong]:
    return [synth_song(seed, bars=4, vocals=False) for seed in range(12)]


def keys_and_drums(song: SynthSong) -> np.ndarray:
    """The keys, with the drums where the song has them (some wide-style songs have none)."""
    drums = song.stems.get("drums")
    keys = song.stems["keys"].audio
    assert keys is not None
    return keys if drums is None or drums.audio is None else keys + drums.audio


def transposed(chords: list[dict], semitones: int) -> list[dict]:
    return [dict(c, pitches=[p + semitones for p in c["pitches"]]) for c in chords]


def test_harmonic_fit_knows_the_chords(songs: list[SynthSong]) -> None:
    fits = []
    for song in songs:
        chords = [asdict(c) for c in song.chords]
        for name in ("bass", "keys", "guitar"):
            audio = song.stems[name].audio
            fit = harmonic_fit(audio, RATE, chords)
            # A tritone away, no chord tone is shared with the true chord's root or fifth.
            wrong = harmonic_fit(audio, RATE, transposed(chords, 6))
            assert fit > 0.7, (song.seed, name)
            assert fit - wrong > 0.4, (song.seed, name)
            fits.append(fit)
    assert np.mean(fits) > 0.95
    assert np.isnan(harmonic_fit(np.zeros(RATE, dtype=np.float32), RATE, chords))


def test_rhythmic_fit_knows_the_grid(songs: list[SynthSong]) -> None:
    rng = np.random.default_rng(0)
    for song in songs[:4]:
        for name in ("drums", "bass", "guitar"):
            stem = song.stems[name]
            audio = stem.audio
            if name == "guitar":  # one strum (notes within 50 ms) is one onset
                starts: list[float] = []
                for t in sorted(n.start for n in stem.notes):
                    if not starts or t - starts[-1] > 0.05:
                        starts.append(t)
                assert abs(len(onsets(audio, RATE)) - len(starts)) <= 1, song.seed
            assert rhythmic_fit(audio, RATE, song.tempo) > 0.95, (song.seed, name)
            # Half a grid period late: every onset lands between grid points.
            late = round(60 / song.tempo / 4 / 2 * RATE)
            delayed = np.concatenate([np.zeros(late, np.float32), audio])
            assert rhythmic_fit(delayed, RATE, song.tempo) < 0.1, (song.seed, name)
    # Clicks at random times score about 2 x tolerance.
    clicks = np.zeros(60 * RATE, dtype=np.float32)
    for t in rng.uniform(0, 59.9, 200):
        clicks[int(t * RATE) : int(t * RATE) + 200] = rng.normal(0, 0.5, 200)
    assert 0.15 < rhythmic_fit(clicks, RATE, 120.0) < 0.35


def test_pair_embedding_separates_matching_from_misaligned(songs: list[SynthSong]) -> None:
    def pairs(indices: range, shift: int) -> np.ndarray:
        rows = []
        for i in indices:
            song, other = (
                songs[i],
                songs[indices.start + (i - indices.start + shift) % len(indices)],
            )
            context = keys_and_drums(song)
            n = len(context)
            bass = np.zeros(n, np.float32)
            source = other.stems["bass"].audio[:n]
            bass[: len(source)] = source
            rows.append(pair_embedding(context, bass, RATE))
        return np.concatenate(rows)

    background, misaligned = pairs(range(0, 6), 0), pairs(range(0, 6), 1)
    assert background.shape[1] == 24
    matching_new, misaligned_new = pairs(range(6, 12), 0), pairs(range(6, 12), 1)
    assert audio_prompt_adherence(background, misaligned, matching_new) > 0.7
    assert audio_prompt_adherence(background, misaligned, misaligned_new) < 0.3
    # Near-silent noise in place of the stem does not pass for a fitting stem.
    rng = np.random.default_rng(0)
    hidden = []
    for song in songs[6:12]:
        context = keys_and_drums(song)
        noise = 1e-3 * rng.standard_normal(len(context)).astype(np.float32)
        hidden.append(pair_embedding(context, noise, RATE))
    assert audio_prompt_adherence(background, misaligned, np.concatenate(hidden)) < 0.3
    # Loudness does not matter.
    song = songs[0]
    a, b = keys_and_drums(song), song.stems["bass"].audio
    np.testing.assert_allclose(
        pair_embedding(a, b, RATE), pair_embedding(3 * a, 3 * b, RATE), atol=1e-6
    )
    # Nor the stem's level against the context's: the pair is loudness-matched first.
    np.testing.assert_allclose(
        pair_embedding(a, b, RATE), pair_embedding(a, 0.05 * b, RATE), atol=1e-6
    )


def test_evaluate_synthetic_on_a_tiny_bundle(bundle: Path, tmp_path: Path, capsys) -> None:
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    config = SyntheticEvaluation(songs=2, bars=2, steps=2)
    report = evaluate_synthetic(pipeline, config)
    assert len(report["songs"]) == 2
    summary = report["summary"]
    # Against the known chords and grid, the true stem stands far above another song's.
    for metric in ("chord_fit", "grid_fit"):
        assert summary[metric]["true"]["mean"] > summary[metric]["other"]["mean"] + 0.3
    for metric in ("harmonic_fit", "rhythmic_fit", "chord_fit", "grid_fit"):
        for source in ("generated", "codec"):
            values = [row[source][metric] for row in report["songs"]]
            assert all(np.isnan(v) or 0.0 <= v <= 1.0 for v in values)
    assert set(report["apa"]) == {"generated", "codec", "random"}
    assert all(0.0 <= v <= 1.0 for v in report["apa"].values())
    assert "codec round trip" in format_report(report)
    # Settings left out are reported as used: the tiny bundle recommends none.
    assert (report["config"]["cfg_context"], report["config"]["sampler"]) == (1.25, "heun")
    assert "2 heun steps, context guidance 1.25" in format_report(report)
    # The round trip is the codec's: decoding the true stem's latents with the same seed.
    song_seed = report["songs"][0]["seed"]
    assert song_seed == config.first_seed
    with pytest.raises(ValueError, match="songs must be"):
        replace(config, songs=1)
    out = tmp_path / "report.json"
    args = ["evaluate", "synthetic", "--bundle", str(bundle), "--songs", "2", "--bars", "2"]
    assert main([*args, "--steps", "2", "--quiet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| harmonic fit (context chroma) |" in printed
    assert "| rhythmic fit (song.json tempo grid) |" in printed
    assert json.loads(out.read_text())["summary"] == json.loads(json.dumps(summary))
    assert main([*args, "--steps", "2", "--quiet", "--json", str(out)]) == 2  # exists
