"""The longest sampling pass that fits in a GPU's memory.

A backbone that extrapolates in length (the U-Net's dynamic position bias, a rotary DiT)
can denoise a whole context in one pass, without windows or seams; how long a pass can be
is set by memory. :func:`longest_pass` measures the denoiser's peak memory above what is
already allocated at three probe lengths, fits ``peak(T) = a + b T + c T^2`` (activations
grow linearly with fused attention, quadratically where attention scores or a position
bias are materialised) and returns the longest length whose predicted peak stays within a
share of the free memory. On a CPU memory is not what limits a pass (it is the RAM, and
time runs out first), so nothing is measured there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.samplers import Denoiser

MEMORY_SHARE = 0.7
"""Share of the free GPU memory a pass may take (the rest: the sampler's state, the
decoder, the allocator's fragmentation)."""

PROBES = (1, 2, 4)
"""Probe lengths, in multiples of the shortest pass."""

Fit = tuple[float, float, float]


def fit_peak(lengths: Sequence[int], peaks: Sequence[float]) -> Fit:
    """``(a, b, c)`` of ``a + b T + c T^2`` through three measured ``(T, peak)`` points.

    Never optimistic: a negative curvature (allocator rounding on a linear backbone) is
    taken as zero with the steepest measured slope.
    """
    if len(lengths) != 3 or len(peaks) != 3 or len(set(lengths)) != 3:
        raise ValueError(f"need peaks at three distinct lengths, got {list(lengths)}")
    (t1, p1), (t2, p2), (t3, p3) = sorted(zip(lengths, peaks, strict=True))
    s12, s23 = (p2 - p1) / (t2 - t1), (p3 - p2) / (t3 - t2)
    c = (s23 - s12) / (t3 - t1)
    if c <= 0.0:
        b = max(s12, s23, 0.0)
        return p3 - b * t3, b, 0.0
    b = s12 - c * (t1 + t2)
    return p1 - b * t1 - c * t1 * t1, b, c


def longest_within(fit: Fit, budget: float, low: int, high: int) -> int:
    """The longest ``T`` in ``[low, high]`` whose predicted peak is within ``budget``.

    ``low`` if none is (the shortest pass is taken anyway: it is what the model was
    trained on, and windows of it are the fallback).
    """
    a, b, c = fit

    def fits(t: int) -> bool:
        return a + b * t + c * t * t <= budget

    if fits(high):  # the peak grows with T (b, c >= 0 past the probes)
        return high
    lo, hi = low, high  # fits(lo) or lo == low; not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def peak_bytes(run: Callable[[], object], device: torch.device) -> int:
    """Peak CUDA memory that ``run()`` allocates above what was allocated before it."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def longest_pass(
    denoiser: Denoiser,
    shape: tuple[int, int, int],
    cond: Conditioning | None,
    low: int,
    high: int,
    *,
    device: torch.device,
    dtype: torch.dtype,
    measure: Callable[[Callable[[], object], torch.device], int] = peak_bytes,
    free: int | None = None,
) -> int:
    """The longest pass in ``[low, high]`` frames that fits in ``device``'s free memory.

    Args:
        denoiser: the denoiser as sampling calls it (with its guidance batch); an eager
            one (a compiled one would compile each probe length).
        shape: ``(B, D, T)`` of the latents to sample; ``cond`` covers the ``T`` frames.
        cond: the conditioning, cropped to each probe length.
        low: the shortest pass (the training window): the fallback.
        high: the longest pass wanted (the declared one-pass length, or ``T``).
        device: where sampling runs; a non-CUDA device gives ``high``.
        dtype: of the latents.
        measure: peak bytes of a call (:func:`peak_bytes`; tests pass their own).
        free: free bytes (default: ``torch.cuda.mem_get_info``).

    Returns:
        a length in ``[low, high]``.
    """
    if high <= low or (device.type != "cuda" and free is None):
        return max(low, high)
    batch, dim, frames = shape
    lengths = [min(frames, low * k) for k in PROBES]
    if len(set(lengths)) < 3:  # the whole sequence is barely longer than a window
        return high
    peaks = []
    for length in lengths:
        x = torch.randn(batch, dim, length, device=device, dtype=dtype)
        sigma = torch.full((batch,), float(denoiser.sigma_max), device=device, dtype=dtype)
        part = None if cond is None else cond.crop(0, length)

        def run(x: Tensor = x, sigma: Tensor = sigma, part: Conditioning | None = part) -> None:
            with torch.no_grad():
                denoiser(x, sigma, part)

        peaks.append(float(measure(run, device)))
    if free is None:
        free = int(torch.cuda.mem_get_info(device)[0])
    return longest_within(fit_peak(lengths, peaks), MEMORY_SHARE * free, low, high)
