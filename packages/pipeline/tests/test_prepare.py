"""Preprocessing into shards: contents, CLAP-free and CLAP modes, resume after a crash."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from openriff.cae import from_preset
from openriff.pipeline.data.pairs import PairConfig
from openriff.pipeline.data.prepare import PrepareConfig, prepare
from openriff.pipeline.data.shards import ShardDataset
from openriff.pipeline.data.synth import synth_dataset

PAIRS = PairConfig(window=8 * 4096, hop=24_000, reference=24_000, p_no_context=0.3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    synth_dataset(root, 3, bars=2, seed=20)
    return root


@pytest.fixture(scope="module")
def codec():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return from_preset("diffariff-tiny").eval()


def test_prepare_writes_shards_that_train_reads(data: Path, codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.34, seed=1)
    report = prepare(config, codec, tmp_path / "prep", show_progress=False)
    assert report.songs == 3
    shards = sorted((tmp_path / "prep").rglob("*.safetensors"))
    assert len(shards) == 3
    splits = {p.parent.name for p in shards}
    assert splits <= {"train", "validation"}
    dataset = ShardDataset(tmp_path / "prep" / "train")
    assert len(dataset) > 0
    assert dataset.clap_free
    target, cond = dataset.batch(torch.arange(len(dataset)))
    assert target.shape == (len(dataset), 64, 8)
    assert cond.context is not None
    assert cond.keep_context is not None
    assert cond.embedding is None  # CLAP-free
    # Pairs without a context carry zero context latents and keep_context False.
    assert bool((~cond.keep_context).any())
    assert cond.context[~cond.keep_context].abs().max() == 0
    assert all(p["target"] not in p["context"] for p in dataset.pairs)
    # The target latents are the codec's encoding of the target window, at the pair's
    # level (the gain that brought its context to the preparation's loudness).
    pair = dataset.pairs[0]
    from openriff.pipeline.data.layout import load_stems, read_generic

    song = next(s for s in read_generic(data)[0] if s.name == pair["song"])
    wave = load_stems(song)[pair["target"]][pair["start"] : pair["start"] + pair["length"]]
    gain = np.float32(10 ** (pair["gain_db"] / 20))
    assert pair["gain_db"] != 0.0
    expected = codec.encode(torch.from_numpy(wave * gain)[None, None])
    torch.testing.assert_close(target[0:1], expected)


def test_prepare_keeps_songs_apart_by_id_and_reads_one_split(codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from helpers import moises_song, slakh_track

    # Two MoisesDB songs with one title: one shard each (the second was dropped before).
    moises = tmp_path / "moises"
    moises_song(moises / "0a1b", "Intro", seconds=1.5)
    moises_song(moises / "9f8e", "Intro", seconds=1.5)
    config = PrepareConfig(data=str(moises), layout="moisesdb", pairs=PAIRS, validation=0.0)
    report = prepare(config, codec, tmp_path / "prep-m", show_progress=False)
    assert report.songs == 2
    shards = sorted((tmp_path / "prep-m").rglob("*.safetensors"))
    assert len(shards) == 2
    pairs = ShardDataset(tmp_path / "prep-m" / "train").pairs
    assert {p["song"] for p in pairs} == {"0a1b", "9f8e"}
    # Slakh2100: the train split by default; test and omitted/ songs never.
    slakh = tmp_path / "slakh"
    for split, track in (("train", 1), ("test", 2), ("omitted", 3)):
        slakh_track(slakh / split / f"Track0000{track}", seconds=1.5)
    config = PrepareConfig(data=str(slakh), layout="slakh", pairs=PAIRS, validation=0.0)
    assert config.split == "train"
    prepare(config, codec, tmp_path / "prep-s", show_progress=False)
    assert {p["song"] for p in ShardDataset(tmp_path / "prep-s" / "train").pairs} == {"Track00001"}
    recorded = json.loads((tmp_path / "prep-s" / "prepare.json").read_text())
    assert recorded["config"]["split"] == "train"
    with pytest.raises(ValueError, match="unknown split"):
        PrepareConfig(data=str(slakh), layout="slakh", split="dev")


def test_prepare_without_levels_keeps_the_songs_levels(data: Path, codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.34, seed=1, context_lufs=None)
    prepare(config, codec, tmp_path / "prep", show_progress=False)
    dataset = ShardDataset(tmp_path / "prep" / "train")
    target, _ = dataset.batch(torch.arange(len(dataset)))
    pair = dataset.pairs[0]
    from openriff.pipeline.data.layout import load_stems, read_generic

    song = next(s for s in read_generic(data)[0] if s.name == pair["song"])
    wave = load_stems(song)[pair["target"]][pair["start"] : pair["start"] + pair["length"]]
    assert pair["gain_db"] == 0.0
    torch.testing.assert_close(target[0:1], codec.encode(torch.from_numpy(wave)[None, None]))


def test_prepare_resumes_after_a_crash(data: Path, codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.0, seed=1)
    out = tmp_path / "prep"
    done = []

    def crash_after_first(song: object) -> None:
        done.append(song)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(config, codec, out, show_progress=False, on_song=crash_after_first)
    first = sorted((out / "train").glob("*.safetensors"))
    assert len(first) == 1
    assert not list((out / "train").glob(".*"))  # nothing half-written
    stamp = first[0].stat().st_mtime_ns
    redone = []
    prepare(config, codec, out, show_progress=False, on_song=redone.append)
    assert len(redone) == 2  # only the songs that were missing
    assert first[0].stat().st_mtime_ns == stamp
    assert len(list((out / "train").glob("*.safetensors"))) == 3
    with pytest.raises(ValueError, match="other settings"):
        prepare(PrepareConfig(data=str(data), pairs=PAIRS, seed=2), codec, out, show_progress=False)
    # A folder that holds no finished shard does not lock its settings: a first try
    # stopped before any song, then a corrected one, into the same folder.
    retry = tmp_path / "retry"
    with pytest.raises(KeyboardInterrupt):
        prepare(PrepareConfig(data=str(data), pairs=PAIRS, seed=3), codec, retry,
                show_progress=False, on_song=crash_after_first)  # fmt: skip
    for shard in retry.glob("*/*.safetensors"):
        shard.unlink()  # as if it stopped before the first song was written
    prepare(config, codec, retry, show_progress=False)
    assert json.loads((retry / "prepare.json").read_text())["config"]["seed"] == 1
    assert len(list((retry / "train").glob("*.safetensors"))) == 3


def test_prepare_with_clap(data: Path, codec, clap_checkpoint: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from openriff.clap_bridge.encoder import ClapEncoder

    clap = ClapEncoder(clap_checkpoint, amodel="HTSAT-tiny")
    config = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.0)
    prepare(config, codec, tmp_path / "prep", clap=clap, show_progress=False)
    dataset = ShardDataset(tmp_path / "prep" / "train")
    assert not dataset.clap_free
    _, cond = dataset.batch(torch.arange(len(dataset)))
    assert cond.embedding is not None
    assert cond.keep_embedding is not None
    kept = cond.embedding[cond.keep_embedding]
    torch.testing.assert_close(kept.norm(dim=1), torch.ones(kept.shape[0]))


def test_prepare_with_context_chroma(data: Path, codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from openriff.pipeline.chroma import context_chroma
    from openriff.pipeline.data.layout import load_stems, read_generic

    plain = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.0, seed=1)
    chroma = PrepareConfig(data=str(data), pairs=PAIRS, validation=0.0, seed=1, context_chroma=True)
    prepare(plain, codec, tmp_path / "plain", show_progress=False)
    prepare(chroma, codec, tmp_path / "chroma", show_progress=False)
    a, b = ShardDataset(tmp_path / "plain" / "train"), ShardDataset(tmp_path / "chroma" / "train")
    assert a.pairs == b.pairs
    assert b.context.shape == (len(a), 64 + 12, 8)
    torch.testing.assert_close(b.context[:, :64], a.context)  # the latents, then the chroma
    assert b.context[~b.has_context].abs().max() == 0
    songs = {s.name: s for s in read_generic(data)[0]}
    checked = 0
    for i, pair in enumerate(b.pairs):
        if not pair["context"]:
            continue
        waves = load_stems(songs[pair["song"]])
        window = slice(pair["start"], pair["start"] + pair["length"])
        mix = sum(torch.from_numpy(waves[name][window]) for name in pair["context"])
        # At the pair's level (prepare brings contexts to one loudness): frames near the
        # chroma's silence floor fall on the same side of it.
        mix = mix * 10 ** (pair["gain_db"] / 20)
        expected = context_chroma(mix, codec.hop_length, 8)
        torch.testing.assert_close(b.context[i, 64:], expected, atol=1e-5, rtol=1e-4)
        checked += 1
    assert checked > 0
    # A folder prepared before the setting existed resumes as one prepared without it...
    record = tmp_path / "plain" / "prepare.json"
    settings = json.loads(record.read_text())
    del settings["config"]["context_chroma"]
    record.write_text(json.dumps(settings))
    prepare(plain, codec, tmp_path / "plain", show_progress=False)
    # ...and not as one with it.
    with pytest.raises(ValueError, match="other settings"):
        prepare(chroma, codec, tmp_path / "plain", show_progress=False)
