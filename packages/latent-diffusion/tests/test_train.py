"""The trainer: learning on the synthetic task, consistency training, resume, DDP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from openriff.latent_diffusion import (
    Conditioning,
    EDMLoss,
    cosine_sigmas,
    karras_sigmas,
    sample_consistency,
    sample_ddim,
    sample_heun,
)
from openriff.latent_diffusion.checkpoint import (
    ModelConfig,
    build,
    from_pretrained,
    load_config,
    save_pretrained,
)
from openriff.latent_diffusion.data import SyntheticTask, TensorLatents
from openriff.latent_diffusion.train import (
    TrainConfig,
    initial_model,
    learning_rate,
    make_loss,
    train,
)

TASK = SyntheticTask()


@pytest.fixture(scope="module")
def dataset() -> TensorLatents:
    return TASK.dataset(2048, 16, torch.Generator().manual_seed(0))


def config(backbone: str, objective: str = "edm", **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        model=ModelConfig(backbone=backbone, preset="tiny", objective=objective),
        steps=1000,
        batch_size=32,
        lr=3e-3,
        warmup_steps=20,
        ema_decay=0.99,
        checkpoint_every=10**6,
        log_every=50,
        seed=0,
    )
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def held_out_loss(model: torch.nn.Module) -> float:
    """EDM loss on fixed held-out examples, levels and noise."""
    g = torch.Generator().manual_seed(11)
    target, cond, _ = TASK.draw(512, 16, g)
    loss = EDMLoss()
    levels, noise = loss.draw(512, g), torch.randn(target.shape, generator=g)
    place = next(model.parameters()).device
    target, cond, noise = target.to(place), cond.to(place), noise.to(place)
    with torch.no_grad():
        return float(loss(model, target, cond, levels, noise).mean())


def sample_errors(model, length: int, sampler) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Mean squared error to the true targets of conditional and unconditional samples."""
    g = torch.Generator().manual_seed(12)
    target, cond, _ = TASK.draw(256, length, g)
    noise = torch.randn(target.shape, generator=g)
    place = next(model.parameters()).device
    target, cond, noise = target.to(place), cond.to(place), noise.to(place)
    conditional = sampler(model, noise, cond)
    unconditional = sampler(model, noise, cond.only(context=False, embedding=False))
    assert conditional.shape == target.shape
    assert torch.isfinite(conditional).all()
    return (
        float((conditional - target).square().mean()),
        float((unconditional - target).square().mean()),
    )


def heun(model, noise, cond):  # type: ignore[no-untyped-def]
    return sample_heun(model, noise, karras_sigmas(20, 0.002, 80.0), cond=cond)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["unet1d", "dit"])
def test_tiny_backbones_learn_the_conditional_task(
    backbone: str, dataset, tmp_path: Path, device
) -> None:  # type: ignore[no-untyped-def]
    cfg = config(backbone)
    before = held_out_loss(initial_model(cfg).eval())
    final = train(cfg, dataset, tmp_path / "run", device=device, show_progress=False)
    model = from_pretrained(final, device=device)
    after = held_out_loss(model)
    assert after < 0.8 * before, (before, after)
    for length in (16, 64):  # the training length and 4x
        conditional, unconditional = sample_errors(model, length, heun)
        assert conditional < 0.7 * unconditional, (length, conditional, unconditional)


@pytest.mark.slow
def test_v_objective_with_ddim_on_the_cosine_schedule(dataset, tmp_path: Path, device) -> None:  # type: ignore[no-untyped-def]
    cfg = config("dit", "v", steps=600)
    model = from_pretrained(
        train(cfg, dataset, tmp_path / "run", device=device, show_progress=False), device=device
    )

    def ddim(model, noise, cond):  # type: ignore[no-untyped-def]
        return sample_ddim(model, noise, cosine_sigmas(50), cond=cond)

    conditional, unconditional = sample_errors(model, 16, ddim)
    assert conditional < 0.7 * unconditional, (conditional, unconditional)


@pytest.mark.slow
def test_consistency_training_gives_few_step_samples(dataset, tmp_path: Path, device) -> None:  # type: ignore[no-untyped-def]
    cfg = config("dit", "consistency")

    def consistency(steps: int):  # type: ignore[no-untyped-def]
        def run(model, noise, cond):  # type: ignore[no-untyped-def]
            g = torch.Generator(noise.device).manual_seed(13)
            return sample_consistency(
                model, noise, karras_sigmas(steps, 0.002, 80.0), cond=cond, generator=g
            )

        return run

    untrained, _ = sample_errors(initial_model(cfg).to(device).eval(), 16, consistency(1))
    run = train(cfg, dataset, tmp_path / "run", device=device, show_progress=False)
    model = from_pretrained(run, device=device)
    for steps in range(1, 6):
        trained, unconditional = sample_errors(model, 16, consistency(steps))
        assert trained < 0.5 * untrained, (steps, trained, untrained)
        assert trained < unconditional


def small(**overrides: object) -> TrainConfig:
    base: dict[str, object] = dict(steps=4, batch_size=8, checkpoint_every=2, log_every=1, seed=3)
    base.update(overrides)
    return config("dit", **base)


def weights(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(folder / name))


def test_resume_after_a_crash_is_exact(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = small(schedule="plateau", plateau_patience=1, warmup_steps=1)
    straight = train(cfg, dataset, tmp_path / "a", show_progress=False)
    run = tmp_path / "b"
    train(cfg, dataset, run, show_progress=False)
    for late in [run / "final", run / "checkpoints" / "step-00000004"]:
        shutil.rmtree(late)
    resumed = train(cfg, dataset, run, show_progress=False)
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = weights(straight, name), weights(resumed, name)
        for key in a:
            assert torch.equal(a[key], b[key]), key
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    first = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [x["lr"] for x in lines] == [x["lr"] for x in first]  # plateau state resumed too


def test_other_settings_are_refused(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train(small(steps=1), dataset, tmp_path / "run", show_progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train(small(steps=1, lr=1e-4), dataset, tmp_path / "run", show_progress=False)


@pytest.mark.parametrize("objective", ["edm", "consistency"])
def test_noise_level_draw_follows_p_mean_and_p_std(objective: str) -> None:
    model = ModelConfig(backbone="dit", preset="tiny", objective=objective)
    g = torch.Generator().manual_seed(0)

    def student_levels(p_mean: float | None = None, p_std: float | None = None) -> torch.Tensor:
        levels = make_loss(model, p_mean, p_std).draw(20000, g, progress=1.0)
        return (levels[:, 0] if levels.ndim == 2 else levels).log()  # consistency: [B, 2]

    default, shifted = student_levels(), student_levels(0.5, 0.8)
    expected = {"edm": (-1.2, 1.2), "consistency": (-1.1, 2.0)}[objective]
    # The consistency draw is clipped to [sigma_min, sigma_max]: compare medians there.
    assert float(default.median()) == pytest.approx(expected[0], abs=0.05)
    assert float(shifted.median()) == pytest.approx(0.5, abs=0.05)
    spread = (shifted.quantile(0.8413) - shifted.quantile(0.1587)) / 2
    assert float(spread) == pytest.approx(0.8, abs=0.05)


def test_bad_noise_level_draws_are_refused() -> None:
    with pytest.raises(ValueError, match="p_std"):
        small(p_std=0.0)
    with pytest.raises(ValueError, match="v-objective"):
        config("dit", "v", p_mean=0.0)


def test_a_run_stored_before_p_mean_existed_resumes(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    cfg = small()
    train(cfg, dataset, run, show_progress=False)
    stored = json.loads((run / "train.json").read_text())
    del stored["p_mean"], stored["p_std"]
    (run / "train.json").write_text(json.dumps(stored))
    for late in [run / "final", run / "checkpoints" / "step-00000004"]:
        shutil.rmtree(late)
    train(cfg, dataset, run, show_progress=False)
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]


def test_gradient_accumulation_matches_one_big_batch(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one = train(small(steps=1), dataset, tmp_path / "one", show_progress=False)
    four = train(small(steps=1, accumulation=4), dataset, tmp_path / "four", show_progress=False)
    a, b = weights(one), weights(four)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_learning_rate_schedules() -> None:
    cfg = config("dit", steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-6)
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(99, cfg) == pytest.approx(1e-6, abs=1e-6)
    plateau = config("dit", steps=100, warmup_steps=10, schedule="plateau", min_lr=1e-5, lr=1e-3)
    assert learning_rate(50, plateau, 0.25) == pytest.approx(2.5e-4)
    assert learning_rate(50, plateau, 1e-6) == pytest.approx(1e-5)


def test_two_processes_match_one(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "run.py"
    script.write_text(
        "import sys, torch\n"
        "from openriff.latent_diffusion.checkpoint import ModelConfig\n"
        "from openriff.latent_diffusion.data import SyntheticTask\n"
        "from openriff.latent_diffusion.train import TrainConfig, train\n"
        "data = SyntheticTask().dataset(64, 16, torch.Generator().manual_seed(0))\n"
        "cfg = TrainConfig(model=ModelConfig(backbone='dit', preset='tiny'), steps=2,\n"
        "                  batch_size=8, accumulation=2, warmup_steps=1, lr=1e-3,\n"
        "                  checkpoint_every=10, log_every=1, seed=3)\n"
        "train(cfg, data, sys.argv[1], show_progress=False)\n"
    )
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path / "two"),
    ]
    double = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert double.returncode == 0, double.stderr[-3000:]
    a, b = weights(tmp_path / "one" / "final"), weights(tmp_path / "two" / "final")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    config = ModelConfig(
        backbone="unet1d", preset="tiny", overrides=(("multipliers", (1, 2, 2, 4)),), objective="v"
    )
    torch.manual_seed(0)
    model = build(config)
    save_pretrained(model, config, tmp_path / "ckpt")
    assert load_config(tmp_path / "ckpt") == config
    loaded = from_pretrained(tmp_path / "ckpt")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 12, generator=g)
    cond = Conditioning(context=torch.randn(2, 8, 12, generator=g))
    for p in model.parameters():  # random everywhere, so every weight matters
        if p.ndim > 1:
            torch.nn.init.normal_(p, std=0.05, generator=g)
    save_pretrained(model, config, tmp_path / "ckpt", overwrite=True)
    loaded = from_pretrained(tmp_path / "ckpt")
    sigma = torch.tensor([0.5, 3.0])
    assert torch.equal(model.eval()(x, sigma, cond), loaded(x, sigma, cond))
    with pytest.raises(FileExistsError):
        save_pretrained(model, config, tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        from_pretrained(tmp_path / "nothing")


@pytest.mark.slow
def test_compiled_training_matches_eager(dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    logs = []
    for compiled in (False, True):
        run = tmp_path / str(compiled)
        train(small(steps=3, compile=compiled), dataset, run, show_progress=False)
        logs.append([json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()])
    assert logs[1] == pytest.approx(logs[0], rel=1e-4)
    assert logs[0][2] != logs[0][0]  # training moved
