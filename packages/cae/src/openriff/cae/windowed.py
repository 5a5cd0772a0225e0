"""Consistency decoding of any length: windows in batches, cross-faded over the overlaps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from openriff.cae.noise import Noise, WindowStreams
from openriff.cae.spectral import SpectrogramConfig, from_spectrogram
from openriff.cae.streaming import windows


class WindowDecoder(Protocol):
    """What windowed decoding needs of a CAE (:class:`~openriff.cae.codec.SpectrogramCodec`)."""

    channels: int
    spectrogram: SpectrogramConfig
    chunk_latents: int
    overlap_latents: int

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        ...

    def decode_spectrogram(self, latents: Tensor, *, steps: int, noise: Noise) -> Tensor:
        """Latents ``[B, D, T]`` -> spectrogram ``[B, 2C, F, T * frames_per_latent]``."""
        ...


MEMORY_SHARE = 0.7
"""Share of the free GPU memory a batch of windows may take."""


class MemoryBudget:
    """How many windows fit in a device's free memory, from one window's measured peak.

    Args:
        free: free bytes.
        measure: runs a decoding and gives its result and the peak bytes it allocated
            (:func:`cuda_peak` on a GPU).
    """

    def __init__(self, free: int, measure: Callable[[Callable[[], Tensor]], tuple[Tensor, int]]):
        self.free = free
        self.measure = measure

    @classmethod
    def cuda(cls, device: torch.device) -> MemoryBudget:
        """The free memory of a CUDA device, measured with :func:`cuda_peak`."""
        free = int(torch.cuda.mem_get_info(device)[0])
        return cls(free, lambda run: cuda_peak(run, device))

    def windows(self, per_window: float) -> int:
        """Windows of ``per_window`` bytes each within :data:`MEMORY_SHARE` of the free memory."""
        return max(1, int(MEMORY_SHARE * self.free // max(per_window, 1.0)))


def cuda_peak(run: Callable[[], Tensor], device: torch.device) -> tuple[Tensor, int]:
    """``run()`` and the peak CUDA memory it allocated above what was allocated before."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    out = run()
    torch.cuda.synchronize(device)
    return out, int(torch.cuda.max_memory_allocated(device) - base)


def fade_weights(lo: int, hi: int, keep_lo: int, keep_hi: int, total: int, hop: int) -> Tensor:
    """Cross-fade weights in samples for a decoded window ``[lo, hi)`` (latent frames).

    Weights ramp up linearly from a window edge shared with a neighbour, over twice that
    side's context, and are 1 elsewhere (also at the outer edges of the signal). Two
    unclipped neighbours' ramps sum to 1 across their shared region; the decoder divides by
    the summed weights anyway, so clipped windows at the end blend just as smoothly.
    """
    n = (hi - lo) * hop
    position = torch.arange(n, dtype=torch.float64) + 0.5
    weight = torch.ones(n, dtype=torch.float64)
    if lo > 0:
        weight = torch.minimum(weight, position / (2 * (keep_lo - lo) * hop))
    if hi < total:
        weight = torch.minimum(weight, (n - position) / (2 * (hi - keep_hi) * hop))
    return weight


def decode_windows(
    codec: WindowDecoder,
    channels: Sequence[Tensor],
    steps: int,
    seeds: Sequence[int],
    window_batch: int,
    budget: MemoryBudget | None = None,
) -> Tensor:
    """Latent sequences ``[B, D, T]`` decoded as one recording's channels ``[B, n * C, T * hop]``.

    The codec's windows (:func:`~openriff.cae.streaming.windows`) decode with the noise of
    their seeds (the same for every sequence); windows of equal length go through the
    model ``window_batch`` at a time, each with all ``n`` sequences, and are cross-faded
    over the overlaps (:func:`fade_weights`).

    Args:
        codec: the CAE.
        channels: ``n`` latent sequences of one shape.
        steps: consistency steps.
        seeds: one per window.
        window_batch: windows per batch (the most, with a ``budget``).
        budget: where memory limits the batch (a GPU): the first window is decoded alone
            and measured, and later batches hold as many windows as fit in the budget.
    """
    hop, n, c = codec.hop_length, len(channels), codec.channels
    batch, total = channels[0].shape[0], channels[0].shape[-1]
    device = channels[0].device
    out = torch.zeros(batch, n * c, total * hop, device=device)
    norm = torch.zeros(total * hop, dtype=torch.float64)
    spans = windows(total, codec.chunk_latents, codec.overlap_latents)

    by_length: dict[int, list[int]] = {}
    for i, (lo, hi, _, _) in enumerate(spans):
        by_length.setdefault(hi - lo, []).append(i)
    per_frame: float | None = None  # measured bytes per latent frame of one sequence
    for length, same in by_length.items():
        first = 0
        while first < len(same):
            size = window_batch
            if budget is not None:
                size = 1 if per_frame is None else budget.windows(per_frame * n * length)
                size = min(size, window_batch)
            group = same[first : first + size]
            first += size
            stacked = torch.cat(
                [z[..., spans[i][0] : spans[i][1]] for i in group for z in channels]
            )  # (G * n * B, D, hi - lo): window-major, then sequence
            noise = WindowStreams([seeds[i] for i in group], device, stacked.dtype, repeat=n)

            def run(stacked: Tensor = stacked, noise: Noise = noise) -> Tensor:
                return codec.decode_spectrogram(stacked, steps=steps, noise=noise)

            if budget is not None and per_frame is None:
                spec, used = budget.measure(run)
                per_frame = used / (n * stacked.shape[-1])
            else:
                spec = run()
            waves = from_spectrogram(spec.float(), codec.spectrogram)  # (G * n * B, C, L)
            for j, i in enumerate(group):
                lo, hi, keep_lo, keep_hi = spans[i]
                weight = fade_weights(lo, hi, keep_lo, keep_hi, total, hop)
                wave = waves[j * n * batch : (j + 1) * n * batch]  # (n * B, C, L)
                wave = wave.reshape(n, batch, c, -1).transpose(0, 1).reshape(batch, n * c, -1)
                # At most two windows overlap anywhere, so the sum is the same in any order.
                out[..., lo * hop : hi * hop] += wave * weight.to(wave)
                norm[lo * hop : hi * hop] += weight
    return out / norm.to(out)
