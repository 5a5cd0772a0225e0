"""``openriff prepare`` and ``openriff train ldm`` from the command line, on synthetic songs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import prepare_args, synth_songs, torchrun

from openriff.latent_diffusion.checkpoint import from_pretrained, load_config
from openriff.pipeline.bundle import AccompanimentModel
from openriff.pipeline.cli import main


def test_prepare_then_train_ldm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    songs, prepared, run = tmp_path / "songs", tmp_path / "prepared", tmp_path / "run"
    synth_songs(songs, 3)
    assert main(prepare_args(songs, prepared)) == 0
    assert "3 songs" in capsys.readouterr().out
    assert len(list((prepared / "train").glob("*.safetensors"))) == 3
    (tmp_path / "train.json").write_text(
        json.dumps({"warmup_steps": 1, "checkpoint_every": 2, "log_every": 1})
    )
    train = ["train", "ldm", "--data", str(prepared), "--out", str(run), "--preset", "tiny-unet"]
    extra = [
        "--config",
        str(tmp_path / "train.json"),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--quiet",
    ]
    assert main([*train, *extra]) == 0
    config = load_config(run / "final")
    overrides = dict(config.overrides)
    assert overrides == {"channels": 64, "context_channels": 64, "embedding_dim": 0}  # CLAP-free
    denoiser = from_pretrained(run / "final")
    x = torch.randn(2, 64, 8)
    assert denoiser(x, torch.full((2,), 1.0), None).shape == x.shape
    assert len((run / "log.jsonl").read_text().splitlines()) == 3
    # Training wrote the bundle that inference loads.
    model = AccompanimentModel.load(run / "bundle")
    assert model.codec.latent_dim == 64
    assert model.bridge is None
    assert model.clap_checkpoint is None
    assert model.info["provenance"]["model_preset"] == "tiny-unet"
    assert model.info["codec"] == {"preset": "diffariff-tiny", "seed": 0}
    # The bundle's codec is the one that encoded the shards (same seeded weights).
    from openriff.cae import from_preset

    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = from_preset("diffariff-tiny")
    for name, value in reference.state_dict().items():
        assert torch.equal(model.codec.state_dict()[name], value), name
    state = model.denoiser.state_dict()
    for name, value in denoiser.state_dict().items():
        assert torch.equal(state[name], value), name
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stepz": 3}))
    assert (
        main(
            [
                *train[:-2],
                "--preset",
                "tiny-unet",
                "--config",
                str(bad),
                "--out",
                str(tmp_path / "r2"),
            ]
        )
        == 2
    )
    assert "unknown training settings ['stepz']" in capsys.readouterr().err


def test_tiny_consistency_and_v_models_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openriff.pipeline.cli.train import MODEL_PRESET_NAMES
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline
    from openriff.pipeline.train.models import MODEL_PRESETS

    assert tuple(MODEL_PRESETS) == MODEL_PRESET_NAMES
    songs, prepared = tmp_path / "songs", tmp_path / "prepared"
    synth_songs(songs, 2)
    assert main(prepare_args(songs, prepared)) == 0
    quick = ["--steps", "2", "--batch-size", "2", "--quiet"]
    for name, args, objective in [
        ("c", ["--preset", "tiny-consistency-dit"], "consistency"),
        ("v", ["--preset", "tiny-unet", "--objective", "v"], "v"),
    ]:
        run = tmp_path / name
        train = ["train", "ldm", "--data", str(prepared), "--out", str(run)]
        assert main([*train, *args, *quick]) == 0
        assert load_config(run / "final").objective == objective
        pipeline = AccompanimentPipeline.from_pretrained(run / "bundle")
        out = pipeline.generate(duration=0.5, seed=0, stereo_width=0.0)
        assert np.isfinite(out.audio).all()
        # A consistency model samples with the consistency sampler, 5 steps (DiT paper 4.2).
        expected = ("consistency", 5) if objective == "consistency" else ("heun", 30)
        assert (out.settings["sampler"], out.settings["steps"]) == expected
    bad = ["train", "ldm", "--data", str(prepared), "--out", str(tmp_path / "x"), "--objective"]
    capsys.readouterr()
    assert main([*bad, "flow"]) == 2  # one line, before anything is created
    assert "argument --objective: invalid choice: 'flow'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_bundle_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"bundle\.json is missing"):
        AccompanimentModel.load(tmp_path)
    (tmp_path / "bundle.json").write_text(
        json.dumps({"format": "openriff-accompaniment", "version": 99})
    )
    with pytest.raises(ValueError, match="upgrade"):
        AccompanimentModel.load(tmp_path)


def test_train_ldm_with_torchrun_two_processes(tmp_path: Path) -> None:
    import subprocess

    songs, prepared = synth_songs(tmp_path / "songs", 2), tmp_path / "prepared"
    assert main(prepare_args(songs, prepared)) == 0
    command = [
        *torchrun(2), "train", "ldm", "--data", str(prepared), "--out", str(tmp_path / "ddp"),
        "--steps", "2", "--batch-size", "4", "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained denoiser" in done.stdout
    log = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 2
    assert AccompanimentModel.load(tmp_path / "ddp" / "bundle").config.backbone == "unet1d"


def test_train_bridge_from_clap_shards_into_the_bundle(
    tmp_path: Path, clap_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    songs, prepared = synth_songs(tmp_path / "songs", 2), tmp_path / "prepared"
    clap = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    assert main(prepare_args(songs, prepared, *clap)) == 0
    ldm = ["train", "ldm", "--data", str(prepared), "--out", str(tmp_path / "ldm"), "--steps", "1"]
    assert main([*ldm, "--batch-size", "2", "--quiet"]) == 0
    bundle = tmp_path / "ldm" / "bundle"
    before = AccompanimentModel.load(bundle)
    assert before.bridge is None
    assert before.clap_checkpoint == str(clap_checkpoint.resolve())
    assert dict(before.config.overrides)["embedding_dim"] == 512
    bridge = ["train", "bridge", "--data", str(prepared), "--out", str(tmp_path / "bridge")]
    # The CLAP checkpoint comes from the preparation's record (only its amodel is given).
    extra = ["--amodel", "HTSAT-tiny", "--preset", "tiny", "--steps", "2", "--batch-size", "4"]
    assert main([*bridge, *extra, "--bundle", str(bundle), "--quiet"]) == 0
    after = AccompanimentModel.load(bundle)
    assert after.bridge is not None
    assert (after.bridge.dim, after.bridge.text_dim) == (512, 512)
    samples = after.bridge.sample(torch.randn(2, 512), 3, steps=2)
    assert samples.shape == (2, 3, 512)
    capsys.readouterr()
    free = tmp_path / "free"
    assert main(prepare_args(songs, free)) == 0
    args = ["train", "bridge", "--data", str(free), "--out", str(tmp_path / "b2"), *clap]
    assert main(args) == 2
    assert "prepared without CLAP" in capsys.readouterr().err


def test_prepare_with_torchrun_matches_one_process(tmp_path: Path) -> None:
    import subprocess

    from safetensors.torch import load_file

    songs = synth_songs(tmp_path / "songs", 3)
    assert main(prepare_args(songs, tmp_path / "one")) == 0
    command = [*torchrun(2), *prepare_args(songs, tmp_path / "two")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    one = sorted(p.name for p in (tmp_path / "one" / "train").glob("*.safetensors"))
    two = sorted(p.name for p in (tmp_path / "two" / "train").glob("*.safetensors"))
    assert one == two
    assert len(one) == 3
    for name in one:
        a = load_file(str(tmp_path / "one" / "train" / name))
        b = load_file(str(tmp_path / "two" / "train" / name))
        for key in a:
            torch.testing.assert_close(
                a[key], b[key], rtol=0, atol=1e-6
            )  # same pairs, same latents
