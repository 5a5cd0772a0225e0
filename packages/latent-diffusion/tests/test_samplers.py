"""Samplers against the exact denoiser of a known Gaussian (no training involved)."""

from __future__ import annotations

import math

import pytest
import torch
from toys import GaussianDenoiser

from openriff.latent_diffusion import (
    ConsistencyPrecond,
    consistency_sigmas,
    cosine_sigmas,
    karras_sigmas,
    sample_consistency,
    sample_ddim,
    sample_euler,
    sample_heun,
)

DIM = 16
N = 10_000


@pytest.fixture(scope="module")
def gaussian() -> GaussianDenoiser:
    g = torch.Generator().manual_seed(0)
    # Means within [-1, 1]: starting at N(0, 80^2) rather than N(mu, s^2 + 80^2) shifts the
    # result by mu * s / 80 (< 1.3 % of s), which is the schedule's doing, not the sampler's.
    mu = torch.linspace(-1.0, 1.0, DIM)[torch.randperm(DIM, generator=g)]
    s = torch.linspace(0.3, 1.5, DIM)
    return GaussianDenoiser(mu, s)


def moments_error(samples: torch.Tensor, gaussian: GaussianDenoiser) -> tuple[float, float]:
    """Largest relative error of the per-dimension mean (relative to s) and std."""
    mean, std = samples.double().mean(0), samples.double().std(0)
    return (
        float(((mean - gaussian.mu).abs() / gaussian.s).max()),
        float(((std - gaussian.s).abs() / gaussian.s).max()),
    )


def standard_noise(g: torch.Generator) -> torch.Tensor:
    """``N x DIM`` normal draws standardised per dimension (exact sample mean 0, std 1).

    Monte-Carlo error of 10k draws (~1 % per moment, ~2.5 % at worst over 16 dimensions)
    would otherwise be as large as the tolerance; standardising the start leaves only the
    sampler's own error (plus, for stochastic samplers, that of their internal noise).
    """
    noise = torch.randn(N, DIM, generator=g, dtype=torch.float64)
    return (noise - noise.mean(0)) / noise.std(0)


def run(sampler, gaussian: GaussianDenoiser, steps: int, seed: int = 1, **opts) -> torch.Tensor:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    noise = standard_noise(g)
    sigmas = karras_sigmas(steps, 0.002, 80.0)
    return sampler(gaussian, noise, sigmas, generator=g, **opts)


@pytest.mark.parametrize(
    ("sampler", "steps", "opts"),
    [
        (sample_heun, 40, {}),
        (sample_euler, 200, {}),
        (sample_ddim, 200, {}),
        # Stochastic variants add first-order error of their own: more steps.
        (sample_heun, 160, {"s_churn": 5.0, "s_tmin": 0.05, "s_tmax": 50.0}),
        (sample_ddim, 800, {"eta": 1.0}),
    ],
)
def test_samples_have_the_moments_of_the_data(sampler, steps, opts, gaussian) -> None:  # type: ignore[no-untyped-def]
    samples = run(sampler, gaussian, steps, **opts)
    mean_err, std_err = moments_error(samples, gaussian)
    # 10k samples: the sampling error of a mean is ~1% of s, of a std ~0.7 %.
    assert mean_err < 0.03
    assert std_err < 0.03


@pytest.mark.parametrize(
    ("sampler", "coarse", "fine"),
    [(sample_heun, 4, 16), (sample_euler, 10, 80), (sample_ddim, 10, 80)],
)
def test_error_shrinks_with_more_steps(sampler, coarse, fine, gaussian) -> None:  # type: ignore[no-untyped-def]
    # Same noise for both runs, so the difference is the discretisation error alone: the
    # deterministic ODE maps noise to exactly N(mu, s^2); measure the std error.
    errors = [moments_error(run(sampler, gaussian, n), gaussian)[1] for n in (coarse, fine)]
    assert errors[1] < errors[0] / 2


def test_heun_is_second_order(gaussian) -> None:  # type: ignore[no-untyped-def]
    # For a Gaussian the probability-flow ODE is solvable: x(sigma) = mu + sqrt(s^2 +
    # sigma^2) w with w constant, so a start at 80 z ends at mu + s (80 z - mu) / sqrt(s^2
    # + 80^2). Compare each sampler's end point with it.
    g = torch.Generator().manual_seed(2)
    z = torch.randn(256, DIM, generator=g, dtype=torch.float64)
    exact = (
        gaussian.mu + gaussian.s * (80.0 * z - gaussian.mu) / (gaussian.s.square() + 80.0**2).sqrt()
    )

    def err(sampler, n: int) -> float:  # type: ignore[no-untyped-def]
        return float((sampler(gaussian, z, karras_sigmas(n, 0.002, 80.0)) - exact).abs().max())

    e_euler = [err(sample_euler, n) for n in (40, 80)]
    e_heun = [err(sample_heun, n) for n in (40, 80)]
    assert e_heun[1] < e_euler[1] / 10
    assert 1.7 < e_euler[0] / e_euler[1] < 2.3  # first order: 2x per doubling
    assert e_heun[0] / e_heun[1] > 3.5  # second order: 4x per doubling


def test_consistency_sampler_with_the_exact_consistency_function(gaussian) -> None:  # type: ignore[no-untyped-def]
    # The exact consistency function of a Gaussian maps x at sigma to the ODE's end point:
    # mu + s (x - mu) / sqrt(s^2 + sigma^2).
    class Exact:
        sigma_min, sigma_max, sigma_data = 0.002, 80.0, 1.0

        def __call__(self, x, sigma, cond=None):  # type: ignore[no-untyped-def]
            sigma = sigma.double()[:, None]
            return (
                gaussian.mu
                + gaussian.s * (x - gaussian.mu) / (gaussian.s.square() + sigma.square()).sqrt()
            )

    for steps in (1, 3, 5):
        g = torch.Generator().manual_seed(3)
        noise = standard_noise(g)
        samples = sample_consistency(Exact(), noise, karras_sigmas(steps, 0.002, 80.0), generator=g)
        mean_err, std_err = moments_error(samples, gaussian)
        assert mean_err < 0.03, steps
        assert std_err < 0.03, steps


def test_consistency_schedule_keeps_every_intermediate_level_above_sigma_min() -> None:
    for steps in (1, 2, 3, 5, 8):
        sigmas = consistency_sigmas(steps, 0.002, 80.0)
        assert sigmas.dtype == torch.float64
        assert sigmas.shape == (steps + 1,)
        assert sigmas[0] == 80.0
        assert sigmas[-1] == 0.0
        assert bool((sigmas[:-1] > 0.002).all()), steps
        assert bool((sigmas[1:] < sigmas[:-1]).all()), steps


def test_two_consistency_steps_differ_from_one_step_at_the_boundary() -> None:
    # Over karras_sigmas(2) the second level is sigma_min, where the boundary condition
    # returns the re-noised (by 0) first estimate: 2 steps were exactly 1 step.
    class Backbone(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(4, 4, 1)

        def forward(self, x, c_noise, cond):  # type: ignore[no-untyped-def]
            return torch.tanh(self.conv(x) + c_noise[:, None, None])

    torch.manual_seed(0)
    denoiser = ConsistencyPrecond(Backbone(), 0.002, 80.0, 0.5)

    def sample(sigmas: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        noise = torch.randn(2, 4, 8, generator=g)
        return sample_consistency(denoiser, noise, sigmas, generator=g)

    one = sample(consistency_sigmas(1, 0.002, 80.0))
    assert torch.equal(sample(karras_sigmas(2, 0.002, 80.0)), one)  # the defect
    assert (sample(consistency_sigmas(2, 0.002, 80.0)) - one).abs().max() > 1e-3


def test_more_consistency_steps_beat_one_step_with_an_imperfect_consistency_function() -> None:
    # Data at +-1 (equal weights). Its posterior mean tanh(x / sigma^2) is a poor
    # consistency function: from sigma_max it returns ~0, the data's mean. Re-noising to
    # lower levels (Algorithm 1) lets later steps pick a side.
    class PosteriorMean:
        sigma_min, sigma_max, sigma_data = 0.002, 80.0, 1.0

        def __call__(self, x, sigma, cond=None):  # type: ignore[no-untyped-def]
            return torch.tanh(x / sigma.double()[:, None] ** 2)

    def error(steps: int) -> float:
        g = torch.Generator().manual_seed(5)
        noise = torch.randn(N, 1, generator=g, dtype=torch.float64)
        sigmas = consistency_sigmas(steps, 0.002, 80.0)
        x = sample_consistency(PosteriorMean(), noise, sigmas, generator=g)
        return float((1.0 - x.abs()).mean())  # distance to the nearest data point

    errors = {steps: error(steps) for steps in (1, 2, 3, 5)}
    assert errors[1] > 0.95
    assert errors[2] < errors[1] - 0.05
    assert errors[3] < errors[2], errors
    assert errors[5] < 0.05, errors


def test_any_rank_float64_schedules_and_a_callback(gaussian) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(4)
    noise = torch.randn(3, 2, DIM, generator=g)  # rank 3 with a float32 state
    flat = GaussianDenoiser(gaussian.mu, gaussian.s)
    seen: list[dict] = []
    out = sample_heun(flat, noise, karras_sigmas(5, 0.002, 80.0), callback=seen.append)
    assert out.shape == noise.shape
    assert out.dtype == torch.float32
    assert [info["i"] for info in seen] == list(range(5))
    assert seen[-1]["sigma_next"] == 0.0
    assert karras_sigmas(5, 0.002, 80.0).dtype == torch.float64
    assert cosine_sigmas(5).dtype == torch.float64
    assert flat.calls == 2 * 5 - 1  # Heun: two evaluations per step except the last


def test_a_generator_reproduces_stochastic_sampling(gaussian) -> None:  # type: ignore[no-untyped-def]
    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(4, DIM, generator=g)
        return sample_euler(
            gaussian, noise, karras_sigmas(8, 0.002, 80.0), generator=g, s_churn=20.0
        )

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_schedules() -> None:
    k = karras_sigmas(10, 0.002, 80.0)
    assert k.shape == (11,)
    assert k[0] == pytest.approx(80.0)
    assert k[-2] == pytest.approx(0.002)
    assert k[-1] == 0
    assert bool((k[1:] < k[:-1]).all())
    c = cosine_sigmas(10, 1e-3, 1e3)
    assert c[0] == pytest.approx(1e3, rel=1e-9)
    assert c[-2] == pytest.approx(1e-3, rel=1e-6)
    t = torch.atan(c[:-1]) * 2 / math.pi  # uniform in time
    assert torch.allclose(t[:-1] - t[1:], (t[0] - t[1]).expand(9), atol=1e-12)


@pytest.mark.parametrize(
    "bad",
    [torch.tensor([1.0]), torch.tensor([1.0, 2.0, 0.0]), torch.tensor([1.0, float("nan"), 0.0])],
)
def test_bad_schedules_are_refused(bad, gaussian) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="sigmas"):
        sample_euler(gaussian, torch.zeros(2, DIM), bad.double())


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun, sample_ddim, sample_consistency])
def test_sampling_on_a_device_never_waits_for_it(sampler, gaussian, device) -> None:  # type: ignore[no-untyped-def]
    # The loop reads levels as Python numbers; from a schedule on the device each read
    # would be a host sync per step. The schedule given on the device is read on the CPU;
    # on CUDA the whole loop runs with synchronising calls turned into errors.
    flat = GaussianDenoiser(gaussian.mu.to(device), gaussian.s.to(device))
    seen: list[torch.Tensor] = []

    def spy(x: torch.Tensor, sigma: torch.Tensor, cond: object = None) -> torch.Tensor:
        seen.append(sigma)
        return flat(x, sigma)

    spy.sigma_min, spy.sigma_max, spy.sigma_data = 0.002, 80.0, 1.0  # type: ignore[attr-defined]
    noise = torch.randn(4, DIM, generator=torch.Generator().manual_seed(5)).to(device)
    schedule = consistency_sigmas if sampler is sample_consistency else karras_sigmas
    sigmas = schedule(4, 0.002, 80.0).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        out = sampler(spy, noise, sigmas, generator=generator)
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    assert out.device.type == device.type
    assert all(s.device.type == device.type and s.shape == (4,) for s in seen)
    assert torch.isfinite(out.cpu()).all()
