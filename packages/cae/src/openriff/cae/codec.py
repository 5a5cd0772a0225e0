"""Any-length encoding and decoding shared by the CAE models (the LatentCodec contract).

``encode(wave[B, C, S]) -> latents[B, D, ceil(S / hop)]`` and
``decode(latents, steps=1, generator=None, length=None) -> wave[B, C, length]``, where
``hop`` is ``hop_length`` audio samples per latent frame. Long inputs are processed in
windows of ``chunk_latents`` frames with ``overlap_latents`` frames of context on each side,
so memory is bounded by the window, not by the input. Encoded windows keep only their
centres; decoded windows are cross-faded over the overlaps, so there is no seam. Each
window's decoding noise comes from its own stream, seeded from the given
``torch.Generator`` (:mod:`openriff.cae.noise`): a generator seeded the same way reproduces
the output exactly, and windows of equal length decode as one batch on a GPU with the same
result as one by one.

A subclass provides ``encode_spectrogram``, ``decode_spectrogram`` and
``preview_spectrogram`` for one window.

Two decodings (the model config's ``decoding``, or ``decode(..., decoding=...)``):
``"consistency"`` runs the consistency model (the papers' decoder, DiT follow-up 3.3);
``"magnitude"`` takes the decoder's magnitude preview, the deterministic head that reads
log magnitudes straight off the latents, and recovers phases by Griffin-Lim, block by
block with committed phases between blocks (:mod:`openriff.cae.streaming`). A small
model trained briefly learns the preview long before the consistency model learns to turn
phases: its one-step decodings of bass notes all come out as the frame-rate buzz (94 Hz),
while the preview already holds the pitch. :meth:`SpectrogramCodec.decode_channels`
decodes several sequences as one recording's channels (shared phases, or shared noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from openriff.cae.consistency import ConsistencyConfig, consistency_weight
from openriff.cae.contract import SampleReader, adapt_channels, check_wave
from openriff.cae.evaluation import multiresolution_stft_distance
from openriff.cae.noise import Noise, window_seeds
from openriff.cae.spectral import (
    SpectrogramConfig,
    from_spectrogram,
    instantaneous_frequency,
    magnitude,
    to_spectrogram,
)
from openriff.cae.streaming import (
    GRIFFIN_LIM_ITERATIONS,
    PREVIEW_FLOOR,
    Progress,
    decode_magnitudes,
    windows,
)
from openriff.cae.windowed import MemoryBudget, decode_windows

DECODINGS = ("consistency", "magnitude")

WINDOW_BATCH = 16
"""Windows per batch of the consistency decoding on a GPU (5.5 s of audio each at 48 kHz:
the 16 inner windows of 95 s in one batch)."""


def _checked_decoding(decoding: str) -> str:
    if decoding not in DECODINGS:
        raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}; got {decoding!r}")
    return decoding


class SpectrogramCodec(nn.Module):
    """Base of the CAE models: the any-length LatentCodec over per-window networks.

    The codec attributes come from the model's config, which must have ``sample_rate``,
    ``channels``, ``latent_dim``, ``spectrogram``, ``consistency``, ``frames_per_latent``,
    ``chunk_latents``, ``overlap_latents`` and ``decoding`` (one of ``DECODINGS``).
    Subclasses implement :meth:`encode_spectrogram`, :meth:`decode_spectrogram` and
    :meth:`preview_spectrogram`; their ``forward`` returns the training loss of a batch of
    spectrograms.

    Args:
        config: the model's frozen config.
    """

    config: Any
    consistency: ConsistencyConfig
    sample_rate: int
    channels: int
    latent_dim: int
    spectrogram: SpectrogramConfig
    frames_per_latent: int
    chunk_latents: int
    overlap_latents: int
    decoding: str
    cpu_window_batch: int = 1
    """Windows per batch of the consistency decoding on a CPU (one by one was faster for
    the conv codec: 30 s of ``diffariff`` in 91 s alone, 104 s in fours, on 2 cores)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.channels = config.channels
        self.latent_dim = config.latent_dim
        self.spectrogram = config.spectrogram
        self.consistency = config.consistency
        self.frames_per_latent = config.frames_per_latent
        self.chunk_latents = config.chunk_latents
        self.overlap_latents = config.overlap_latents
        self.decoding = _checked_decoding(config.decoding)

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        return self.spectrogram.hop_length * self.frames_per_latent

    @property
    def latent_bound(self) -> float:
        """1: both encoders end in ``tanh`` (:meth:`encode` keeps parts of their windows)."""
        return 1.0

    @property
    def training_latents(self) -> int:
        """Default training crop in latent frames."""
        return 4

    def encode_spectrogram(self, spec: Tensor) -> Tensor:
        """``[B, 2C, F, T * frames_per_latent]`` -> latents ``[B, D, T]`` in (-1, 1)."""
        raise NotImplementedError

    def decode_spectrogram(self, latents: Tensor, *, steps: int, noise: Noise) -> Tensor:
        """Latents ``[B, D, T]`` -> spectrogram ``[B, 2C, F, T * frames_per_latent]``.

        ``noise`` draws every noise tensor of the decoding (batch first); for a batch of
        windows it gives each window its own stream (:class:`~openriff.cae.noise.WindowStreams`).
        """
        raise NotImplementedError

    def preview_spectrogram(self, latents: Tensor) -> Tensor:
        """Latents ``[B, D, T]`` -> log compressed magnitudes ``[B, C, F, T * frames_per_latent]``.

        The decoder's deterministic magnitude head, trained on ``log(|X| + PREVIEW_FLOOR)``.
        """
        raise NotImplementedError

    def previews(self, latents: Tensor) -> tuple[Tensor, Tensor | None]:
        """The decoder's deterministic heads, from one decoder pass.

        Returns:
            :meth:`preview_spectrogram`'s log compressed magnitudes
            ``[B, C, F, T * frames_per_latent]``, and the bin offsets of each bin's partial
            from the bin's centre (:func:`~openriff.cae.spectral.instantaneous_frequency`),
            like it, or None for a model without a frequency head.
        """
        return self.preview_spectrogram(latents), None

    def objective(
        self,
        ct: Tensor,
        student: Tensor,
        target: Tensor,
        progress: float,
        preview: Tensor | None = None,
        frequencies: Tensor | None = None,
    ) -> Tensor:
        """Training loss (batch mean) from the per-example consistency loss ``ct``.

        The terms:

        * the consistency term, ramped in by ``consistency_warmup``;
        * ``spectral_weight`` times the multi-resolution STFT distance between the
          waveforms of the student's estimate and of the target. A tone's phase is barely
          determined by the latents, so a regression to the complex spectrogram drifts to
          silence, and a magnitude-only term lets the phase stay constant over time (a
          click train once inverted); judging the inverted waveform at several
          resolutions asks for the right spectrum *and* phases that overlap-add coherently;
        * ``preview_weight`` times the L1 distance between ``preview`` (log magnitudes the
          decoder reads straight off the latents, ``[B, C, F, T]``) and the target's log
          magnitudes: a deterministic, low-variance signal that teaches the encoder and
          decoder to carry the spectrum while the consistency model's own gradients are
          still noise (see ``feature_gradient``);
        * ``preview_convergence_weight`` times the spectral convergence of the preview's
          magnitudes, which weighs the loud bins (a tone's harmonics) that the log-L1 term
          drowns among near-silent ones.

        Args:
            ct: ``[B]`` consistency losses.
            student: ``[B, 2C, F, T]`` the student's clean estimate.
            target: ``[B, 2C, F, T]`` clean spectrograms.
            progress: share of training done.
            preview: ``[B, C, F, T]`` decoder preview, or None for no preview term.
            frequencies: ``[B, C, F, T]`` frequency head output, or None.
        """
        config = self.consistency
        loss = consistency_weight(progress, config) * ct
        if config.spectral_weight:
            estimate = from_spectrogram(student.float(), self.spectrogram)
            reference = from_spectrogram(target.float(), self.spectrogram)
            spectral = multiresolution_stft_distance(estimate, reference)
            loss = loss + config.spectral_weight * spectral
        if preview is not None:
            loss = loss + self.preview_loss(preview, target, frequencies)
        return loss.mean()

    def preview_loss(
        self, preview: Tensor, target: Tensor, frequencies: Tensor | None = None
    ) -> Tensor:
        """The preview terms of :meth:`objective`, per example ``[B]``.

        Args:
            preview: ``[B, C, F, T]`` decoder preview (log compressed magnitudes).
            target: ``[B, 2C, F, T]`` clean spectrograms.
            frequencies: ``[B, C, F, T]`` frequency head output, or None (no frequency term).
        """
        config = self.consistency
        loss = torch.zeros(preview.shape[0], device=preview.device)
        if config.preview_weight:
            log_target = (magnitude(target) + PREVIEW_FLOOR).log()
            error = (preview.float() - log_target).abs().flatten(1).mean(1)
            loss = loss + config.preview_weight * error
        if config.preview_convergence_weight:
            floored = (magnitude(target) + PREVIEW_FLOOR).flatten(1)
            # Clamped: an early, untrained preview must not overflow the exponential.
            estimate = preview.float().clamp(max=10.0).exp().flatten(1)
            difference = (estimate - floored).norm(dim=1)
            convergence = difference / floored.norm(dim=1)
            loss = loss + config.preview_convergence_weight * convergence
        if frequencies is not None and config.frequency_weight:
            weight = magnitude(target).square().flatten(1)
            wanted = instantaneous_frequency(target, self.spectrogram).flatten(1)
            error = (frequencies.float().flatten(1) - wanted).abs()
            frequency = (weight * error).sum(1) / weight.sum(1).clamp_min(1e-8)
            loss = loss + config.frequency_weight * frequency
        return loss

    def conditioning(self, features: Tensor) -> Tensor:
        """Decoder features as the consistency model sees them.

        The value is unchanged; the gradient flowing back through it is scaled by
        ``feature_gradient``.
        """
        scale = self.consistency.feature_gradient
        if scale == 1.0:
            return features
        return features * scale + features.detach() * (1.0 - scale)

    def _param(self) -> Tensor:
        return next(self.parameters())

    @torch.no_grad()
    def encode(self, wave: Tensor) -> Tensor:
        """Encode audio of any length.

        Args:
            wave: ``[B, C, S]`` float audio at ``sample_rate``; channels are adapted with
                :func:`adapt_channels`.

        Returns:
            latents ``[B, latent_dim, ceil(S / hop_length)]`` in (-1, 1).
        """
        check_wave(wave)

        def read(lo: int, hi: int) -> Tensor:  # zeros past the end, as encode_from wants
            part = wave[..., lo:hi]
            return nn.functional.pad(part, (0, hi - lo - part.shape[-1]))

        return self.encode_from(read, wave.shape[-1])

    @torch.no_grad()
    def encode_from(self, read: SampleReader, samples: int) -> Tensor:
        """Encode a recording read window by window: any length in the memory of a window.

        Equal to :meth:`encode` of the whole recording (the same windows read the same
        samples), for audio that is not in memory (a long file, read as it is needed).

        Args:
            read: ``read(lo, hi)`` gives samples ``[lo, hi)`` as ``[B, C, hi - lo]`` float
                audio (zeros past the end), called with ascending ``lo``.
            samples: the recording's length ``S``.

        Returns:
            latents ``[B, latent_dim, ceil(S / hop_length)]`` in (-1, 1).
        """
        if samples < 1:
            raise ValueError(f"audio is empty: {samples} samples")
        param = self._param()
        hop = self.hop_length
        parts = []
        for lo, hi, keep_lo, keep_hi in windows(
            math.ceil(samples / hop), self.chunk_latents, self.overlap_latents
        ):
            wave = adapt_channels(read(lo * hop, hi * hop).to(param.device, param.dtype),
                                  self.channels)  # fmt: skip
            latents = self.encode_spectrogram(to_spectrogram(wave, self.spectrogram))
            parts.append(latents[..., keep_lo - lo : keep_hi - lo])  # (B, D, kept)
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def decode(
        self,
        latents: Tensor,
        *,
        steps: int = 1,
        generator: torch.Generator | None = None,
        length: int | None = None,
        decoding: str | None = None,
        phase_iterations: int = GRIFFIN_LIM_ITERATIONS,
        window_batch: int | None = None,
    ) -> Tensor:
        """Decode latents of any length.

        Args:
            latents: ``[B, latent_dim, T]``.
            steps: consistency steps (1 is one-step decoding; more refine); unused by the
                magnitude decoding.
            generator: randomness of the decoding noise (or of Griffin-Lim's starting
                phases); same seed, same audio.
            length: output samples (default ``T * hop_length``); shorter trims, longer
                pads with zeros. Pass the original length to undo :meth:`encode`'s padding.
            decoding: ``"consistency"`` or ``"magnitude"`` (see the module docstring);
                default: the model config's.
            phase_iterations: Griffin-Lim projections per block of the magnitude
                decoding (more: slower, slightly more consistent phases).
            window_batch: windows of the consistency decoding run through the model
                together (each with its own noise stream, so the audio is the same for any
                batch); None: on a GPU up to :data:`WINDOW_BATCH`, as many as fit in 70 % of
                its free memory (the first window decoded alone is measured), on a CPU
                :attr:`cpu_window_batch`.

        Returns:
            audio ``[B, channels, length]``.
        """
        return self.decode_channels(
            [latents], steps=steps, generator=generator, length=length, decoding=decoding,
            phase_iterations=phase_iterations, window_batch=window_batch,
        )  # fmt: skip

    @torch.no_grad()
    def decode_channels(
        self,
        channels: Sequence[Tensor],
        *,
        steps: int = 1,
        generator: torch.Generator | None = None,
        length: int | None = None,
        decoding: str | None = None,
        on_block: Progress | None = None,
        phase_iterations: int = GRIFFIN_LIM_ITERATIONS,
        window_batch: int | None = None,
    ) -> Tensor:
        """Latent sequences decoded as the channels of one recording ``[B, n * C, length]``.

        For a mono codec's pseudo-stereo. The magnitude decoding gives every sequence the
        same phases, recovered from their mean magnitudes, block by block with bounded
        memory (:func:`~openriff.cae.streaming.decode_magnitudes`); the consistency
        decoding gives each the same decoding noise. Equal sequences give equal channels.

        Args:
            channels: ``[B, latent_dim, T]`` each, all of one shape.
            steps: as :meth:`decode`.
            generator: as :meth:`decode`.
            length: as :meth:`decode`.
            decoding: as :meth:`decode`.
            on_block: progress of the magnitude decoding, called with ``(done, total)``
                blocks.
            phase_iterations: as :meth:`decode`.
            window_batch: as :meth:`decode`.
        """
        for latents in channels:
            if latents.ndim != 3 or latents.shape[1] != self.latent_dim:
                raise ValueError(
                    f"expected latents shaped [B, {self.latent_dim}, T], got {list(latents.shape)}"
                )
            if latents.shape[0] == 0 or latents.shape[2] == 0:
                raise ValueError(f"latents are empty: shape {list(latents.shape)}")
            if not torch.isfinite(latents).all():
                raise ValueError("latents contain NaN or infinite values")
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if window_batch is not None and window_batch < 1:
            raise ValueError(f"window_batch must be >= 1, got {window_batch}")
        decoding = self.decoding if decoding is None else _checked_decoding(decoding)
        param = self._param()
        channels = [z.to(param.device, param.dtype) for z in channels]
        if decoding == "magnitude":
            out = decode_magnitudes(
                self, channels, generator, iterations=phase_iterations, on_block=on_block
            )
        else:
            total = channels[0].shape[-1]
            spans = windows(total, self.chunk_latents, self.overlap_latents)
            seeds = window_seeds(len(spans), generator)  # the same decoding noise for each
            budget = None
            if window_batch is None and param.device.type == "cuda":
                window_batch = WINDOW_BATCH
                budget = MemoryBudget.cuda(param.device)  # as many windows as fit
            out = decode_windows(
                self, channels, steps, seeds, window_batch or self.cpu_window_batch, budget
            )
        if length is not None and length > out.shape[-1]:
            out = nn.functional.pad(out, (0, length - out.shape[-1]))
        return out if length is None else out[..., :length]  # a view: no copy of a long stem
