"""Consistency decoding of any length: windows in batches, cross-faded over the overlaps."""

from __future__ import annotations

from collections.abc import Sequence
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
        window_batch: windows per batch.
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
    for same in by_length.values():
        for first in range(0, len(same), window_batch):
            group = same[first : first + window_batch]
            stacked = torch.cat(
                [z[..., spans[i][0] : spans[i][1]] for i in group for z in channels]
            )  # (G * n * B, D, hi - lo): window-major, then sequence
            noise = WindowStreams([seeds[i] for i in group], device, stacked.dtype, repeat=n)
            spec = codec.decode_spectrogram(stacked, steps=steps, noise=noise)
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
