"""Magnitude decoding block by block, with one phase for every channel.

The magnitude decoding (:mod:`openriff.cae.codec`) reads magnitudes off the decoder's
preview head and recovers their phases by Griffin-Lim. Run over a whole signal at once,
its memory grew with the length (the issue-28 audit: a 3-minute generation took 2.53 GB,
a 10-minute one 5.86 GB).
Here the signal goes block by block: a block's magnitudes are read through the codec's
own windows (with their context, so they equal the whole signal's), its first frames keep
the phases the previous block ended with (committed frames, as in RTISI; Zhu et al. 2007),
and consecutive blocks are cross-faded over those frames. Memory is bounded by the block,
plus the output itself.

Channels decoded together (the pseudo-stereo channels of a mono codec) share one phase:
it is recovered from the channels' mean magnitudes and given to each channel's own, so the
channels differ only where their magnitudes do, and their mono fold-down loses nothing to
cancellation (with independent phases it lost 2.5-3 dB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from openriff.cae.spectral import SpectrogramConfig, from_polar, griffin_lim_phases

BLOCK_LATENTS = 256  # latent frames per block (21.8 s at 48 kHz, hop 4096)
OVERLAP_LATENTS = 8  # frames two blocks share: committed phases, then the cross-fade
# Griffin-Lim projections per block. From the locked start, the default model's decoded
# bass (issue 25) reaches a spectral convergence of 0.061 after 8 projections, 0.056 after
# 16, 0.052 after 32 and 0.051 after 64, its tuning unchanged (0.114-0.119 semitones); on a
# gliding test tone the worst frame (a note change) is 0.36 off after 16 and 0.12 after
# both 32 and 64. Each projection costs the same, so 32 halves the time of 64.
GRIFFIN_LIM_ITERATIONS = 32
# Floor added to compressed magnitudes before the log of the preview head (about -40 dB).
PREVIEW_FLOOR = 0.01
Progress = Callable[[int, int], None]  # (blocks done, blocks in all)


class MagnitudeDecoder(Protocol):
    """What block-wise decoding needs of a CAE (:class:`~openriff.cae.codec.SpectrogramCodec`)."""

    channels: int
    spectrogram: SpectrogramConfig
    frames_per_latent: int
    chunk_latents: int
    overlap_latents: int

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        ...

    def previews(self, latents: Tensor) -> tuple[Tensor, Tensor | None]:
        """Log compressed magnitudes and bin offsets ``[B, C, F, T * frames_per_latent]``."""
        ...


def windows(total: int, chunk: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split ``[0, total)`` into ``(lo, hi, keep_lo, keep_hi)``: context and kept parts."""
    out = []
    for start in range(0, total, chunk):
        stop = min(total, start + chunk)
        out.append((max(0, start - overlap), min(total, stop + overlap), start, stop))
    return out


def read_magnitudes(
    codec: MagnitudeDecoder, latents: Tensor, lo: int, hi: int, batched: bool | None = None
) -> tuple[Tensor, Tensor | None]:
    """Compressed magnitudes (and bin offsets) of latent frames ``[lo, hi)``.

    Read through the codec's windows over the whole sequence, so a block's magnitudes
    equal the same frames of the whole signal's. ``batched``: the windows through the
    decoder in one batch (True) or one by one (False); None: batched on a GPU only (on a
    CPU one by one was faster: 47 ms per window alone, 64 ms in fours and 84 ms in
    sixteens for the default model's codec on 2 cores, as larger batches leave the caches).

    Returns:
        ``[B, C, F, (hi - lo) * frames_per_latent]`` magnitudes, and offsets like them or
        None for a codec without a frequency head.
    """
    fpl = codec.frames_per_latent
    needed = []  # (window, kept frames of it)
    for w_lo, w_hi, keep_lo, keep_hi in windows(
        latents.shape[-1], codec.chunk_latents, codec.overlap_latents
    ):
        a, b = max(keep_lo, lo), min(keep_hi, hi)
        if a < b:
            needed.append(((w_lo, w_hi), slice((a - w_lo) * fpl, (b - w_lo) * fpl)))
    # Windows of one width go through the decoder as one batch (its norms are per sample).
    read: dict[tuple[int, int], tuple[Tensor, Tensor | None]] = {}
    for width in sorted({w_hi - w_lo for (w_lo, w_hi), _ in needed}):
        group = [w for w, _ in needed if w[1] - w[0] == width]
        stacked = torch.cat([latents[..., w_lo:w_hi] for w_lo, w_hi in group])  # (n * B, D, w)
        if batched is None:
            batched = latents.device.type != "cpu"
        log_magnitudes, frequencies = _previews(codec, stacked, batched)
        for i, window in enumerate(zip(torch.split(log_magnitudes, latents.shape[0]),
                                       _split(frequencies, latents.shape[0], len(group)),
                                       strict=True)):  # fmt: skip
            read[group[i]] = window
    parts = [read[w][0][..., kept] for w, kept in needed]
    offsets = [f[..., kept] for w, kept in needed if (f := read[w][1]) is not None]
    magnitudes = (torch.cat(parts, dim=-1).float().exp() - PREVIEW_FLOOR).clamp_min(0.0)
    return magnitudes, torch.cat(offsets, dim=-1).float() if offsets else None


def _previews(
    codec: MagnitudeDecoder, latents: Tensor, batched: bool
) -> tuple[Tensor, Tensor | None]:
    """:meth:`MagnitudeDecoder.previews` of ``[N, D, w]``: in one call, or row by row."""
    if batched:
        return codec.previews(latents)
    rows = [codec.previews(row) for row in torch.split(latents, 1)]
    frequencies = [f for _, f in rows if f is not None]
    return torch.cat([m for m, _ in rows]), torch.cat(frequencies) if frequencies else None


def _split(values: Tensor | None, size: int, count: int) -> list[Tensor | None]:
    return [None] * count if values is None else list(torch.split(values, size))


def block_starts(total: int, block: int, overlap: int) -> list[int]:
    """First latent frame of each block; consecutive blocks share ``overlap`` frames."""
    if not 0 <= overlap < block:
        raise ValueError(f"need 0 <= overlap < block, got {overlap}, {block}")
    starts = [0]
    while starts[-1] + block < total:
        starts.append(starts[-1] + block - overlap)
    return starts


def decode_magnitudes(
    codec: MagnitudeDecoder,
    channels: Sequence[Tensor],
    generator: torch.Generator | None = None,
    *,
    block: int = BLOCK_LATENTS,
    overlap: int = OVERLAP_LATENTS,
    iterations: int = GRIFFIN_LIM_ITERATIONS,
    on_block: Progress | None = None,
) -> Tensor:
    """Audio of latent sequences sharing one phase, decoded block by block.

    Args:
        codec: the CAE whose magnitude head reads the latents.
        channels: ``[B, D, T]`` latents per output channel group (equal shapes).
        generator: randomness of the starting phases; same seed, same audio.
        block: latent frames per block.
        overlap: latent frames consecutive blocks share.
        iterations: Griffin-Lim projections per block (unused with decoded frequencies).
        on_block: called after each block with ``(done, total)`` (progress bars).

    Returns:
        ``[B, len(channels) * C, T * hop_length]``.
    """
    if not channels or any(z.shape != channels[0].shape for z in channels):
        raise ValueError("give one or more latent sequences of one shape")
    total, fpl = channels[0].shape[-1], codec.frames_per_latent
    hop, config = codec.hop_length, codec.spectrogram
    out = torch.zeros(channels[0].shape[0], len(channels) * codec.channels, total * hop,
                      device=channels[0].device)  # fmt: skip
    starts = block_starts(total, block, overlap)
    carried: Tensor | None = None  # the phases of the frames the next block starts with
    for i, start in enumerate(starts):
        stop = min(total, start + block)
        # Every channel in one batch: (n * B, ...), split back per channel.
        batch = channels[0].shape[0]
        both, frequencies = read_magnitudes(codec, torch.cat(list(channels)), start, stop)
        magnitudes = list(torch.split(both, batch))
        offsets = [] if frequencies is None else list(torch.split(frequencies, batch))
        # With decoded frequencies the locked start is the answer: Griffin-Lim iterations
        # would pull partials back towards the pitch the magnitudes imply (codec.py).
        phases = griffin_lim_phases(
            torch.stack(magnitudes).mean(0), config, generator=generator, init="locked",
            iterations=0 if offsets else iterations,
            frequencies=torch.stack(offsets).mean(0) if offsets else None, fixed=carried,
        )  # fmt: skip
        wave = torch.cat(
            [from_polar(m, phases, config) for m in magnitudes], dim=1
        )  # (B, n * C, (stop - start) * hop)
        if i > 0:  # cross-fade over the shared frames, whose phases are the same
            shared = overlap * hop
            fade = (torch.arange(shared, device=out.device, dtype=out.dtype) + 0.5) / shared
            out[..., start * hop : start * hop + shared] *= 1.0 - fade
            wave[..., :shared] *= fade
            out[..., start * hop : start * hop + shared] += wave[..., :shared]
            out[..., start * hop + shared : stop * hop] = wave[..., shared:]
        else:
            out[..., : stop * hop] = wave
        carried = phases[..., (stop - start - overlap) * fpl :] if stop < total else None
        if on_block is not None:
            on_block(i + 1, len(starts))
    return out
