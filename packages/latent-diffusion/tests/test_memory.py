"""The longest pass that fits in memory: the fit, the search, the probes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from test_backbones import inputs, randomize_outputs
from torch import Tensor

from openriff.latent_diffusion import Conditioning, EDMPrecond, create_backbone
from openriff.latent_diffusion.guidance import MultiConditionGuidance
from openriff.latent_diffusion.memory import (
    MEMORY_SHARE,
    fit_peak,
    longest_pass,
    longest_within,
    peak_bytes,
)


def test_the_fit_goes_through_a_quadratic_and_is_never_optimistic() -> None:
    def peak(t: int) -> float:
        return 5e6 + 3e4 * t + 7.5 * t * t

    a, b, c = fit_peak([120, 240, 480], [peak(120), peak(240), peak(480)])
    assert (a, b, c) == pytest.approx((5e6, 3e4, 7.5), rel=1e-9)
    # A linear backbone measured with allocator rounding: slightly concave points.
    a, b, c = fit_peak([100, 200, 400], [1000.0, 2100.0, 4000.0])
    assert c == 0.0
    assert b == pytest.approx(11.0)  # the steepest slope, through the last point
    assert a + b * 400 == pytest.approx(4000.0)
    with pytest.raises(ValueError, match="three distinct lengths"):
        fit_peak([1, 1, 2], [1.0, 2.0, 3.0])


def test_the_search_finds_the_longest_length_within_the_budget() -> None:
    fit = (1e6, 2e3, 0.5)
    for budget in (2e6, 5e7, 3e8):
        want = max(t for t in range(120, 20_001) if fit[0] + fit[1] * t + fit[2] * t * t <= budget)
        assert longest_within(fit, budget, 120, 20_000) == want
    assert longest_within(fit, 1e12, 120, 20_000) == 20_000
    assert longest_within(fit, 1.0, 120, 20_000) == 120  # nothing fits: the training window


class Recording:
    """A denoiser that records the lengths and conditions it is called with."""

    sigma_min, sigma_max, sigma_data = 0.002, 80.0, 0.5

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        ctx = None if cond is None or cond.context is None else cond.context.shape[-1]
        self.calls.append((x.shape[-1], ctx))
        return x


def test_probes_at_three_lengths_with_the_conditions_cropped() -> None:
    denoiser = Recording()
    lengths: list[int] = []

    def measure(run: Callable[[], object], device: torch.device) -> int:
        run()
        t = denoiser.calls[-1][0]
        lengths.append(t)
        return 4_000 * t + 2 * t * t  # bytes

    cond = Conditioning(context=torch.zeros(1, 8, 5000))
    free = 10**8
    got = longest_pass(
        denoiser, (2, 4, 5000), cond, 100, 5000,
        device=torch.device("cpu"), dtype=torch.float32, measure=measure, free=free,
    )  # fmt: skip
    assert lengths == [100, 200, 400]
    assert denoiser.calls == [(100, 100), (200, 200), (400, 400)]
    budget = MEMORY_SHARE * free
    assert 4_000 * got + 2 * got * got <= budget < 4_000 * (got + 1) + 2 * (got + 1) ** 2
    # No memory to measure on a CPU, and nothing longer than the training window wanted.
    plain = Recording()
    args = ((2, 4, 5000), cond, 100)
    assert longest_pass(plain, *args, 3000, device=torch.device("cpu"), dtype=torch.float32) == 3000
    assert longest_pass(plain, *args, 100, device=torch.device("cpu"), dtype=torch.float32) == 100
    assert plain.calls == []


def test_a_real_pass_fits_its_measured_budget(device: torch.device) -> None:
    """On CUDA the predicted longest pass of a guided DiT fits; a third longer does not."""
    torch.manual_seed(0)
    model = randomize_outputs(create_backbone("dit", "tiny"), 3).to(device).eval()
    guided = MultiConditionGuidance(EDMPrecond(model), 1.5, 1.5)
    _, _, cond = inputs(model.config, 1, 8192)
    cond = Conditioning(cond.context.to(device), cond.embedding.to(device))
    shape = (1, model.config.channels, 8192)
    if device.type != "cuda":  # nothing is measured on a CPU: the declared length is taken
        got = longest_pass(guided, shape, cond, 64, 8192, device=device, dtype=torch.float32)
        assert got == 8192
        return
    probe = 64 * 4
    x = torch.randn(*shape[:2], probe, device=device)
    sigma = torch.ones(1, device=device)
    with torch.no_grad():
        small = peak_bytes(lambda: guided(x, sigma, cond.crop(0, probe)), device)
    free = int(small * 20 / MEMORY_SHARE)  # room for about 20 probes' worth
    got = longest_pass(guided, shape, cond, 64, 8192, device=device, dtype=torch.float32, free=free)
    assert 64 * 4 < got < 8192

    def actual(length: int) -> int:
        x = torch.randn(*shape[:2], length, device=device)
        with torch.no_grad():
            return peak_bytes(lambda: guided(x, sigma, cond.crop(0, length)), device)

    assert actual(got) <= 1.05 * MEMORY_SHARE * free
    assert actual(int(got * 1.33)) > MEMORY_SHARE * free
