"""A bundle built on the official music2latent codec (random weights here): prepared,
trained, referenced by path (never copied), and generating with its 44.1 kHz latent grid
(4458.2 samples per frame at 48 kHz)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import prepare_args, synth_songs

from openriff.pipeline.cli import main
from openriff.pipeline.generation.pipeline import AccompanimentPipeline

RATE = 48_000


@pytest.fixture(scope="module")
def m2l_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from music2latent.models import UNet

    root = tmp_path_factory.mktemp("m2l")
    checkpoint = root / "music2latent.pt"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save({"gen_state_dict": UNet().state_dict()}, checkpoint)
    songs, prepared = synth_songs(root / "songs", 2), root / "prepared"
    args = prepare_args(songs, prepared, "--target", "bass")
    args[args.index("--codec-preset") : args.index("--codec-preset") + 2] = [
        "--codec", str(checkpoint),
    ]  # fmt: skip
    assert main(args) == 0
    ldm = ["train", "ldm", "--data", str(prepared), "--out", str(root / "ldm"), "--steps", "2"]
    assert main([*ldm, "--batch-size", "2", "--quiet"]) == 0
    return root / "ldm" / "bundle", checkpoint


def tone(seconds: float, freq: float = 110.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_bundle_references_music2latent_and_generates(
    m2l_bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle, checkpoint = m2l_bundle
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["codec"] == {"music2latent": str(checkpoint.resolve())}
    assert not (bundle / "codec").exists()  # CC BY-NC weights are never copied
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    assert pipeline.hop == pytest.approx(4096 * 48_000 / 44_100)
    assert pipeline.window == 8
    context = tone(1.3, 220.0)
    out = pipeline.generate(context, steps=2, seed=0)
    assert out.audio.shape == (1, 2, len(context))
    stem = tone(3.0)
    edited = pipeline.inpaint(stem, 1.0, 1.5, steps=2, seed=0)
    assert edited.audio.shape == (1, 2, len(stem))
    frames = edited.latents.shape[-1]
    padded = np.zeros(pipeline.samples(frames), dtype=np.float32)
    padded[: len(stem)] = stem  # the stem on the whole-frame grid, as inpaint encodes it
    z = pipeline.model.codec.encode(torch.from_numpy(padded)[None, None])[0].numpy()
    index = np.arange(frames)
    inside = (index * pipeline.hop < 1.5 * RATE) & ((index + 1) * pipeline.hop > 1.0 * RATE)
    kept = edited.latents[0, 0][:, ~inside]
    assert np.array_equal(kept, z[:, :frames][:, ~inside])
    longer = pipeline.inpaint(stem, 3.0, 3.5, steps=2, seed=0)  # outpainting
    assert longer.audio.shape == (1, 2, round(3.5 * RATE))
    loop = pipeline.loop(1, 120.0, steps=2, seed=0)
    assert loop.audio.shape == (1, 2, 2 * RATE)
    # Moved weights: a clear message, and the override finds them.
    moved = tmp_path / "elsewhere.pt"
    shutil.copy(checkpoint, moved)
    hidden = checkpoint.with_suffix(".hidden")
    checkpoint.rename(hidden)
    try:
        with pytest.raises(FileNotFoundError, match="music2latent checkpoint not found"):
            AccompanimentPipeline.from_pretrained(bundle)
        found = AccompanimentPipeline.from_pretrained(bundle, codec_checkpoint=moved)
        again = found.generate(context, steps=2, seed=0)
        np.testing.assert_array_equal(again.audio, out.audio)
    finally:
        hidden.rename(checkpoint)
