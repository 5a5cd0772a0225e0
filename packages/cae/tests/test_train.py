import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from openriff.cae.audio import AudioError
from openriff.cae.data import AudioCrops
from openriff.cae.train import TrainConfig, learning_rate, train


def config(data: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        data=str(data),
        preset="diffariff-tiny",
        steps=4,
        batch_size=2,
        crop_latents=1,
        lr=1e-3,
        warmup_steps=2,
        checkpoint_every=2,
        log_every=1,
        seed=3,
    )
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


def test_resume_after_a_crash_is_exact(audio_folder: Path, tmp_path: Path) -> None:
    straight = train(config(audio_folder), tmp_path / "a", show_progress=False)
    run = tmp_path / "b"
    train(config(audio_folder), run, show_progress=False)
    # Simulate a crash after the step-2 checkpoint: later work is gone.
    for late in [run / "final", *sorted((run / "checkpoints").glob("step-00000004"))]:
        shutil.rmtree(late)
    resumed = train(config(audio_folder), run, show_progress=False)
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = weights(straight, name), weights(resumed, name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the resumed part is logged once
    # Training changed the weights, and the EMA differs from the raw weights.
    start = weights(run / "checkpoints" / "step-00000002")
    assert any(not torch.equal(start[k], a[k]) for k in a)
    raw, ema = weights(resumed), weights(resumed, "ema.safetensors")
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)


def test_a_magnitude_autoencoder_learns(audio_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = config(
        audio_folder, preset="diffariff-tiny-magnitude", steps=40, batch_size=4, lr=3e-3,
        warmup_steps=5, checkpoint_every=40,
    )  # fmt: skip
    final = train(settings, run, show_progress=False)
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    assert not any(key.startswith("unet.") for key in weights(final))


def test_fine_tuning_a_frequency_head_keeps_the_latents(audio_folder: Path, tmp_path: Path) -> None:
    """A decoder fine-tuned with the encoder frozen encodes exactly as before (a diffusion
    model trained on those latents stays valid), and its new frequency head learns."""
    from openriff.cae import from_pretrained

    base = train(
        config(audio_folder, preset="diffariff-tiny-magnitude", steps=2), tmp_path / "base",
        show_progress=False,
    )  # fmt: skip
    run = tmp_path / "tuned"
    settings = config(
        audio_folder, preset="diffariff-tiny-frequency", steps=40, batch_size=4, lr=3e-3,
        warmup_steps=5, checkpoint_every=40, init=str(base), frozen=("encoder",),
    )  # fmt: skip
    tuned = train(settings, run, show_progress=False)
    before, after = weights(base, "ema.safetensors"), weights(tuned, "ema.safetensors")
    added = set(after) - set(before)
    assert added
    assert all(k.startswith("decoder.frequency_out") for k in added)
    for key in before:
        if key.startswith("encoder."):
            assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    wave = torch.randn(1, 1, 8 * 4096, generator=torch.Generator().manual_seed(0)) * 0.1
    old, new = from_pretrained(base), from_pretrained(tuned)
    with torch.no_grad():
        assert torch.equal(old.encode(wave), new.encode(wave))
        offsets = new.previews(new.encode(wave))[1]
    assert offsets is not None
    assert offsets.shape == (1, 1, 1024, 64)
    assert old.previews(old.encode(wave))[1] is None
    losses = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses
    # What cannot be fine-tuned is refused.
    with pytest.raises(ValueError, match="names no parameter"):
        train(
            config(audio_folder, init=str(base), frozen=("encoders",)),
            tmp_path / "x",
            show_progress=False,
        )
    with pytest.raises(ValueError, match="does not match"):
        train(
            config(audio_folder, preset="stereo-tiny", init=str(base)),
            tmp_path / "y",
            show_progress=False,
        )


def test_a_run_folder_with_other_settings_is_refused(audio_folder: Path, tmp_path: Path) -> None:
    train(config(audio_folder, steps=1), tmp_path / "run", show_progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train(config(audio_folder, steps=1, lr=5e-4), tmp_path / "run", show_progress=False)


def test_two_processes_match_one(audio_folder: Path, tmp_path: Path) -> None:
    single = train(
        config(audio_folder, steps=1, batch_size=4), tmp_path / "one", show_progress=False
    )
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "openriff.cae.cli", "train", "--data", str(audio_folder), "--out",
        str(tmp_path / "two"), "--steps", "1", "--batch-size", "4", "--crop-latents", "1",
        "--lr", "1e-3", "--warmup-steps", "2", "--checkpoint-every", "2", "--log-every", "1",
        "--seed", "3", "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = weights(single), weights(tmp_path / "two" / "final")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=2e-6)
    # The compared step did move the weights (a lr of 1e-3 moves them by about that much).
    init = train_init_weights(audio_folder)
    assert max((a[k] - init[k]).abs().max().item() for k in a) > 1e-4


def train_init_weights(data: Path) -> dict[str, torch.Tensor]:
    """Weights a run with the same settings starts from."""
    from openriff.cae.train import initial_model

    model = initial_model(config(data, steps=1, batch_size=4))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_learning_rate_schedule() -> None:
    c = TrainConfig(data="x", steps=100, warmup_steps=10, lr=1e-3, schedule="cosine", min_lr=1e-5)
    assert learning_rate(0, c) == pytest.approx(1e-4)
    assert learning_rate(9, c) == pytest.approx(1e-3)
    assert learning_rate(10, c) == pytest.approx(1e-3)
    assert learning_rate(100, c) == pytest.approx(1e-5)
    assert learning_rate(55, c) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert learning_rate(50, TrainConfig(data="x", warmup_steps=10)) == 1e-4
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(data="x", schedule="linear")


def test_crops_adapt_rate_and_channels(audio_folder: Path) -> None:
    crops = AudioCrops(audio_folder, 48_000, 1, 4096)
    assert len(crops.files) == 8
    drawn = crops.draw(16, torch.Generator().manual_seed(0))
    batch = crops.batch(drawn)
    assert batch.shape == (16, 1, 4096)
    assert bool(torch.isfinite(batch).all())
    assert drawn == crops.draw(16, torch.Generator().manual_seed(0))


def test_bad_training_data_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioError, match="no audio files"):
        AudioCrops(empty, 48_000, 1, 4096)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "noise.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioError, match=r"noise\.wav"):
        AudioCrops(broken, 48_000, 1, 4096)
