"""Latent controls with the exact denoiser of a Gaussian process over time."""

from __future__ import annotations

import pytest
import torch
from toys import ProcessDenoiser

from openriff.latent_diffusion import karras_sigmas, sample_ddim, sample_heun
from openriff.latent_diffusion.controls import (
    LoopDenoiser,
    StyleGrounding,
    inpaint,
    inpainting,
    plan_windows,
    sample_windowed,
    vary,
)
from openriff.latent_diffusion.stereo import sample_pseudo_stereo

B, D, T = 400, 2, 24
SIGMAS = karras_sigmas(24, 0.002, 80.0)


@pytest.fixture(scope="module")
def process() -> ProcessDenoiser:
    return ProcessDenoiser(scale=3.0)


def noise(seed: int) -> torch.Tensor:
    return torch.randn(B, D, T, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_inpainting_keeps_the_known_region_and_continues_it(process) -> None:  # type: ignore[no-untyped-def]
    known = sample_heun(process, noise(0), SIGMAS)
    mask = torch.zeros(1, 1, T, dtype=torch.bool)
    mask[..., : T // 2] = True  # keep the first half: outpainting the second
    g = torch.Generator().manual_seed(1)
    out = inpaint(sample_heun, process, noise(2), SIGMAS, known, mask, generator=g)
    assert torch.equal(out[..., : T // 2], known[..., : T // 2])
    edge = T // 2
    # The first generated frame continues the known one (prior correlation exp(-1/18)
    # = 0.95); a free sample is unrelated to it.
    free = sample_heun(process, noise(3), SIGMAS)
    assert corr(out[..., edge], known[..., edge - 1]) > 0.85
    assert abs(corr(free[..., edge], known[..., edge - 1])) < 0.15
    # Far from the boundary the process forgets: the generated region is new material.
    assert abs(corr(out[..., -1], known[..., -1])) < 0.15


def test_loops_wrap_around(process) -> None:  # type: ignore[no-untyped-def]
    looped = sample_heun(LoopDenoiser(process, margin=8), noise(4), SIGMAS)
    plain = sample_heun(process, noise(4), SIGMAS)
    adjacent = corr(looped[..., 1:], looped[..., :-1])
    assert adjacent > 0.9
    # The end continues into the start like any two neighbours; without looping they are
    # unrelated (23 frames apart).
    assert corr(looped[..., -1], looped[..., 0]) > adjacent - 0.1
    assert abs(corr(plain[..., -1], plain[..., 0])) < 0.15


def test_variations_stay_close_at_low_strength(process) -> None:  # type: ignore[no-untyped-def]
    source = sample_heun(process, noise(5), SIGMAS)
    g = torch.Generator().manual_seed(6)
    near = vary(sample_heun, process, source, SIGMAS, strength=0.3, generator=g)
    far = vary(sample_heun, process, source, SIGMAS, strength=1.0, generator=g)
    assert corr(near, source) > 0.9
    assert abs(corr(far, source)) < 0.15
    assert float(near.std()) == pytest.approx(float(source.std()), rel=0.1)


def test_style_grounding_moves_the_time_mean_to_the_reference(process) -> None:  # type: ignore[no-untyped-def]
    reference = torch.full((1, D, 40), 0.8, dtype=torch.float64)  # a time-mean of 0.8
    free = sample_heun(process, noise(7), SIGMAS)
    grounded = sample_heun(StyleGrounding(process, reference), noise(7), SIGMAS)
    gap_free = (free.mean(-1) - 0.8).abs().mean()
    gap_grounded = (grounded.mean(-1) - 0.8).abs().mean()
    assert gap_grounded < 0.5 * gap_free
    off = sample_heun(StyleGrounding(process, reference, strength=0.0), noise(7), SIGMAS)
    assert torch.allclose(off, free)


def test_pseudo_stereo(process) -> None:  # type: ignore[no-untyped-def]
    def run(width: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(8)
        # Ancestral sampling (eta = 1) is first order: 100 steps keep its bias small.
        sigmas = karras_sigmas(100, 0.002, 80.0)
        return sample_pseudo_stereo(
            sample_ddim, process, noise(9), sigmas, width, generator=g, eta=1.0
        )

    mono = run(0.0)
    assert mono.shape == (B, 2, D, T)
    assert torch.equal(mono[:, 0], mono[:, 1])
    narrow, wide = run(0.4), run(1.0)
    assert not torch.allclose(narrow[:, 0], narrow[:, 1])
    # Shared coarse trajectory: channels are strongly related at 0.4, unrelated at 1.
    assert corr(narrow[:, 0], narrow[:, 1]) > 0.5
    assert abs(corr(wide[:, 0], wide[:, 1])) < 0.15
    for out in (narrow, wide):  # each channel is still a sample of the process
        assert float(out.std()) == pytest.approx(1.0, abs=0.1)


def test_windows_cover_the_sequence_with_weights_summing_to_one() -> None:
    windows = plan_windows(60, 16)
    assert [(w.lo, w.hi) for w in windows] == [(0, 16), (12, 28), (24, 40), (36, 52), (44, 60)]
    total = torch.zeros(60)
    for w in windows:
        assert bool(((w.weight > 0) & (w.weight <= 1)).all())
        total[w.lo : w.hi] += w.weight
    torch.testing.assert_close(total, torch.ones(60))
    # The hand-over is the middle of each overlap (the last window overlaps by 8 frames).
    assert [w.seam for w in windows] == [None, 14.0, 26.0, 38.0, 48.0]
    assert len(plan_windows(16, 16)) == 1
    assert len(plan_windows(60, 16, loop=True)) == 1
    # Windows with every frame known are left out.
    mask = torch.zeros(60, dtype=torch.bool)
    mask[:30] = True
    assert [w.lo for w in plan_windows(60, 16, mask)] == [24, 36, 44]


def step_statistics(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame variance ``[T]`` and mean squared frame-to-frame step ``[T - 1]``."""
    return out.var(dim=(0, 1)), (out[..., 1:] - out[..., :-1]).square().mean(dim=(0, 1))


def test_windowed_sampling_has_no_seams(process) -> None:  # type: ignore[no-untyped-def]
    """With the exact denoiser of a stationary process, a sequence four windows long must
    look the same at the hand-overs as anywhere: the variance of every frame and the size
    of every step within sampling noise of the process's. Window after window by
    inpainting, the frames after each hand-over had 0.6 of the variance and steps 4.6x the
    typical one; the joint pass kept the variance at 0.91-1.16 and the largest step at
    1.15x the median."""
    frames, window = 60, 16
    g = torch.Generator().manual_seed(0)
    out = sample_windowed(
        sample_heun, process, (B, D, frames), SIGMAS, window=window, generator=g,
        dtype=torch.float64,
    )  # fmt: skip
    variance, steps = step_statistics(out)
    assert float(variance.min()) > 0.85
    assert float(variance.max()) < 1.2
    assert float(steps.max()) < 1.2 * float(steps.median())
    # For contrast, the sequential continuation this replaced: each window inpaints the
    # quarter it shares with the one before.
    seq = torch.zeros(B, D, frames, dtype=torch.float64)
    done = 0
    for w in plan_windows(frames, window):
        mask = torch.zeros(1, 1, w.hi - w.lo, dtype=torch.bool)
        mask[..., : max(0, done - w.lo)] = True
        sampler = inpainting(sample_heun, seq[..., w.lo : w.hi], mask) if done else sample_heun
        z = torch.randn(B, D, w.hi - w.lo, generator=g, dtype=torch.float64)
        seq[..., w.lo : w.hi] = sampler(process, z, SIGMAS, generator=g)
        done = w.hi
    variance, steps = step_statistics(seq)
    assert float(variance.min()) < 0.75
    assert float(steps.max()) > 2.5 * float(steps.median())


def test_windowed_inpainting_and_variations_keep_what_they_must(process) -> None:  # type: ignore[no-untyped-def]
    frames, window = 40, 16
    g = torch.Generator().manual_seed(3)
    known = sample_windowed(sample_heun, process, (B, D, frames), SIGMAS, window=window,
                            generator=g, dtype=torch.float64)  # fmt: skip
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[:10] = True
    mask[30:] = True
    out = sample_windowed(
        sample_heun, process, (B, D, frames), SIGMAS, window=window, generator=g,
        known=known, mask=mask, dtype=torch.float64,
    )  # fmt: skip
    torch.testing.assert_close(out[..., mask], known[..., mask], rtol=0, atol=0)
    assert corr(out[..., 15:25], known[..., 15:25]) < 0.3  # regenerated
    assert corr(out[..., 10], known[..., 9]) > 0.7  # continuing what is kept
    everything = torch.ones(frames, dtype=torch.bool)
    kept = sample_windowed(sample_heun, process, (B, D, frames), SIGMAS, window=window,
                           known=known, mask=everything, dtype=torch.float64)  # fmt: skip
    assert torch.equal(kept, known)
    varied = sample_windowed(
        sample_heun, process, (B, D, frames), SIGMAS, window=window, generator=g,
        init=known, strength=0.2, dtype=torch.float64,
    )  # fmt: skip
    assert corr(varied, known) > 0.9
    with pytest.raises(ValueError, match="mask needs the known"):
        sample_windowed(sample_heun, process, (1, D, frames), SIGMAS, mask=mask)
