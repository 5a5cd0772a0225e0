"""The complex-spectrogram representation the CAE models see (Music2Latent family).

A waveform ``[B, C, S]`` becomes ``[B, 2C, F, T]``: for each audio channel the real and
imaginary parts of its STFT (Hann window ``n_fft``, hop ``hop_length``), with magnitudes
compressed invertibly as ``beta * |X|**alpha`` and phases kept (Diff-A-Riff 4.2.1;
Music2Latent). ``F = n_fft // 2`` bins are kept: the real FFT has ``n_fft // 2 + 1`` bins,
but the DC and Nyquist bins of a real signal are both real, so the Nyquist value is
stored in the (otherwise always zero) imaginary part of the DC bin. Nothing is lost and the
inverse is exact up to float rounding.

Framing: the waveform is padded by ``(n_fft - hop) / 2`` zeros on each side, so a signal
of ``S`` samples (``S`` a multiple of the hop) gives exactly ``S / hop`` frames, frame ``t``
centred on samples ``[t * hop, (t + 1) * hop)``. The inverse is a windowed overlap-add
normalised by the summed squared window, which is well conditioned everywhere inside the
signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class SpectrogramConfig:
    """Parameters of the compressed complex STFT.

    Attributes:
        n_fft: FFT size (Hann window length); ``n_fft // 2`` frequency bins are kept.
        hop_length: samples between frames; lengths are handled in multiples of it.
        alpha: magnitude compression exponent, ``beta * |X|**alpha``.
        beta: magnitude compression gain.
    """

    n_fft: int = 2048
    hop_length: int = 512
    alpha: float = 0.65
    beta: float = 0.34

    def __post_init__(self) -> None:
        if self.n_fft % self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise ValueError(
                f"n_fft ({self.n_fft}) must be a multiple of hop_length ({self.hop_length}) "
                "with an even difference"
            )
        if not 0.0 < self.alpha <= 1.0 or self.beta <= 0.0:
            raise ValueError(f"need 0 < alpha <= 1 and beta > 0, got {self.alpha}, {self.beta}")

    @property
    def bins(self) -> int:
        """Frequency bins kept (``F``)."""
        return self.n_fft // 2

    @property
    def pad(self) -> int:
        """Zeros added on each side so that ``S`` samples give ``S / hop`` frames."""
        return (self.n_fft - self.hop_length) // 2


def _window(config: SpectrogramConfig, like: Tensor) -> Tensor:
    return torch.hann_window(config.n_fft, periodic=True, dtype=like.dtype, device=like.device)


def compress(spec: Tensor, config: SpectrogramConfig) -> Tensor:
    """``beta * |X|**alpha * exp(i angle X)`` of a complex tensor."""
    magnitude = spec.abs()
    # Where |X| is 0 the angle is irrelevant; this keeps the gradient finite there.
    gain = config.beta * magnitude.clamp_min(1e-20).pow(config.alpha - 1.0)
    return spec * gain


def decompress(spec: Tensor, config: SpectrogramConfig) -> Tensor:
    """Inverse of :func:`compress`."""
    magnitude = spec.abs() / config.beta
    gain = magnitude.clamp_min(1e-20).pow(1.0 / config.alpha - 1.0) / config.beta
    return spec * gain


def to_spectrogram(wave: Tensor, config: SpectrogramConfig) -> Tensor:
    """Compressed complex STFT as real channels.

    Args:
        wave: audio ``[B, C, S]``; ``S`` must be a multiple of ``config.hop_length``.
        config: STFT parameters.

    Returns:
        ``[B, 2C, F, S / hop]``; channel ``2c`` is the real part and ``2c + 1`` the
        imaginary part of audio channel ``c``.
    """
    batch, channels, length = wave.shape
    packed = compress(packed_stft(wave.reshape(batch * channels, length), config), config)
    out = torch.stack((packed.real, packed.imag), dim=1)  # (B*C, 2, F, T)
    return out.reshape(batch, 2 * channels, config.bins, -1)


def from_spectrogram(spec: Tensor, config: SpectrogramConfig) -> Tensor:
    """Waveform of a representation made by :func:`to_spectrogram`.

    Args:
        spec: ``[B, 2C, F, T]``.
        config: STFT parameters.

    Returns:
        audio ``[B, C, T * hop]``.
    """
    batch, two_c, bins, frames = spec.shape
    if two_c % 2 or bins != config.bins:
        raise ValueError(f"expected [B, 2C, {config.bins}, T], got {list(spec.shape)}")
    x = spec.reshape(batch * two_c // 2, 2, bins, frames)
    packed = decompress(torch.complex(x[:, 0].float(), x[:, 1].float()), config)
    return packed_istft(packed, config).reshape(batch, two_c // 2, -1)


def packed_stft(wave: Tensor, config: SpectrogramConfig) -> Tensor:
    """Uncompressed STFT ``[N, F, S / hop]`` (complex, Nyquist packed into DC) of ``[N, S]``."""
    length = wave.shape[-1]
    if length % config.hop_length:
        raise ValueError(f"length {length} is not a multiple of hop {config.hop_length}")
    x = F.pad(wave, (config.pad, config.pad))
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=_window(config, x),
        center=False,
        return_complex=True,
    )  # (N, F+1, T)
    # Nyquist (real) into the imaginary part of DC (real): F bins hold everything.
    packed = spec[:, : config.bins].clone()
    packed[:, 0] = torch.complex(spec[:, 0].real, spec[:, config.bins].real)
    return packed


def packed_istft(packed: Tensor, config: SpectrogramConfig) -> Tensor:
    """Audio ``[N, T * hop]`` of an uncompressed packed STFT ``[N, F, T]`` (complex)."""
    count, bins, frames = packed.shape
    full = torch.zeros(count, bins + 1, frames, dtype=packed.dtype, device=packed.device)
    full[:, 1:bins] = packed[:, 1:]
    full[:, 0] = packed[:, 0].real.to(packed.dtype)
    full[:, bins] = packed[:, 0].imag.to(packed.dtype)
    frames_time = torch.fft.irfft(full, n=config.n_fft, dim=1)  # (N, n_fft, T)
    window = _window(config, frames_time)
    signal = overlap_add(frames_time * window[:, None], config.hop_length)  # (N, total)
    norm = overlap_add(window.square()[None, :, None].expand(1, -1, frames), config.hop_length)
    signal = signal / norm.clamp_min(1e-8)
    return signal[:, config.pad : config.pad + frames * config.hop_length]


def overlap_add(frames: Tensor, hop: int) -> Tensor:
    """Frames ``[N, L, T]`` laid ``hop`` samples apart and summed: ``[N, (T - 1) hop + L]``.

    When ``hop`` divides ``L`` (every OpenRiff STFT: ``n_fft = 4 hop``), frame ``t``'s
    ``j``-th hop-long piece lands at ``(t + j) hop``, so the sum is ``L / hop`` shifted
    additions of contiguous pieces: several times faster on a CPU than the general
    ``fold`` (col2im), which the other framings use.
    """
    count, size, steps = frames.shape
    total = (steps - 1) * hop + size
    if size % hop:
        fold = F.fold(frames, output_size=(1, total), kernel_size=(1, size), stride=(1, hop))
        return fold.reshape(count, total)
    pieces = frames.reshape(count, size // hop, hop, steps).transpose(2, 3)  # (N, L/hop, T, hop)
    out = frames.new_zeros(count, total)
    for j in range(size // hop):
        out[:, j * hop : (j + steps) * hop] += pieces[:, j].reshape(count, steps * hop)
    return out


def magnitude(spec: Tensor) -> Tensor:
    """Compressed magnitudes ``[B, C, F, T]`` of a representation ``[B, 2C, F, T]``."""
    return (spec[:, 0::2].float().square() + spec[:, 1::2].float().square() + 1e-12).sqrt()


def instantaneous_frequency(spec: Tensor, config: SpectrogramConfig) -> Tensor:
    """Each bin's frequency, in bins from its own centre, from the phase advance ``[B, C, F, T]``.

    A sinusoid of frequency ``k + d`` bins advances the phase of the bins near ``k`` by
    ``2 pi (k + d) hop / n_fft`` from frame to frame; ``d`` is the wrapped difference from
    bin ``k``'s own advance, scaled back to bins. With ``hop = n_fft / 4`` it is unambiguous
    for ``|d| < 2``, the width of a Hann window's main lobe, so every bin of a partial's
    lobe reads the partial's frequency. This is the phase information a magnitude decoder
    lacks (GANSynth's instantaneous frequency, Engel et al. 2019). Frame 0, having no
    predecessor, takes frame 1's value; bin 0 (DC, which stores the Nyquist value) reads 0.

    Args:
        spec: a representation ``[B, 2C, F, T]`` of :func:`to_spectrogram`.
        config: its STFT parameters.
    """
    phase = torch.atan2(spec[:, 1::2].float(), spec[:, 0::2].float())  # (B, C, F, T)
    if phase.shape[-1] < 2:
        return torch.zeros_like(phase)
    scale = 2 * torch.pi * config.hop_length / config.n_fft  # radians per frame per bin
    k = torch.arange(config.bins, device=spec.device, dtype=phase.dtype)[:, None]
    advance = phase[..., 1:] - phase[..., :-1] - scale * k  # (B, C, F, T - 1)
    wrapped = torch.remainder(advance + torch.pi, 2 * torch.pi) - torch.pi
    offset = torch.cat((wrapped[..., :1], wrapped), dim=-1) / scale
    offset[:, :, 0] = 0.0
    return offset


def locked_phases(
    magnitudes: Tensor,
    config: SpectrogramConfig,
    generator: torch.Generator | None = None,
    frequencies: Tensor | None = None,
) -> Tensor:
    """Phases ``[B, C, F, T]`` for compressed magnitudes: sinusoids continued in time.

    Phase-vocoder phases with identity phase locking (Laroche & Dolson 1999): in each frame
    every spectral peak gets a frequency, from ``frequencies`` (bin offsets as
    :func:`instantaneous_frequency` gives them, e.g. a decoder's estimate) where given, else
    from its neighbours' magnitudes (Grandke); its phase advances from the nearest peak of
    the previous frame by that frequency times the hop, and every bin of its region (up to
    the lowest point between peaks) takes the phase a stationary sinusoid gives it under
    this module's framing (alternating by almost pi from bin to bin). A magnitude-only
    decoder started from random phases finds partials slightly off their frequency in the
    bass (tens of cents at ``n_fft`` 2048, 48 kHz); started from these, it keeps them where
    the magnitudes put them. Bins more than 60 dB below their frame's peak get random phases
    (``generator``).
    """
    batch, channels, bins, frames = magnitudes.shape
    n = config.n_fft
    linear = (magnitudes.double().clamp_min(0.0) / config.beta) ** (1.0 / config.alpha)
    # The frame loop is sequential (each frame continues the last one's peaks): it runs in
    # NumPy, whose per-call cost on these small vectors is a fraction of torch's.
    flat = linear.reshape(-1, bins, frames).cpu().numpy()  # (B*C, F, T)
    offsets = None
    if frequencies is not None:
        offsets = frequencies.double().reshape(-1, bins, frames).cpu().numpy()
    k = np.arange(bins, dtype=np.float64)
    lobe = np.pi * k * (n - 1) / n  # a bin's phase offset within a sinusoid's lobe
    out = (
        (
            2
            * torch.pi
            * torch.rand(
                flat.shape, generator=generator, device=magnitudes.device, dtype=torch.float64
            )
        )
        .cpu()
        .numpy()
    )
    empty = k[:0]
    for row in range(flat.shape[0]):
        prev_bins, prev_phase = empty, empty  # the previous frame's peaks and phases
        for t in range(frames):
            m = flat[row, :, t]
            top = float(m.max())
            if top <= 0:
                prev_bins, prev_phase = empty, empty
                continue
            inner = (m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:]) & (m[1:-1] > top * 1e-3)
            peaks = np.flatnonzero(inner) + 1  # bins of the peaks
            if peaks.size == 0:
                prev_bins, prev_phase = empty, empty
                continue
            if offsets is not None:
                delta = np.clip(offsets[row, peaks, t], -1.0, 1.0)
            else:
                # Grandke's interpolation, exact for one sinusoid under a Hann window.
                a, b, c = m[peaks - 1], m[peaks], m[peaks + 1]
                right = (2 * c - b) / (b + c)
                left = -(2 * a - b) / (a + b)
                delta = np.clip(np.where(c > a, right, left), -0.5, 0.5)
            omega = 2 * np.pi * (peaks + delta) / n  # radians per sample
            if prev_bins.size:
                nearest = np.abs(prev_bins[None, :] - (peaks + delta)[:, None]).argmin(1)
                near = np.abs(prev_bins[nearest] - (peaks + delta)) < 2.0
                phase = np.where(near, prev_phase[nearest] + omega * config.hop_length, 0.0)
            else:
                phase = np.zeros_like(omega)
            # Regions: each bin goes with the peak it is nearest to: the boundaries are the
            # midpoints between consecutive peaks.
            owner = np.searchsorted((peaks[1:] + peaks[:-1]) / 2.0, k, side="left")
            region = phase[owner] - lobe + lobe[peaks][owner]
            keep = m > top * 1e-3
            out[row, :, t] = np.where(keep, region, out[row, :, t])
            prev_bins, prev_phase = (peaks + delta), phase
    phases = torch.from_numpy(out).to(magnitudes.device)
    return phases.reshape(batch, channels, bins, frames).to(magnitudes.dtype)


def griffin_lim(
    magnitudes: Tensor,
    config: SpectrogramConfig,
    *,
    iterations: int = 64,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
    init: str = "random",
    frequencies: Tensor | None = None,
) -> Tensor:
    """A waveform whose representation has the given compressed magnitudes.

    :func:`griffin_lim_phases`, then the inverse transform of the magnitudes with them.

    Returns:
        audio ``[B, C, T * hop]``.
    """
    phases = griffin_lim_phases(
        magnitudes, config, iterations=iterations, momentum=momentum, generator=generator,
        init=init, frequencies=frequencies,
    )  # fmt: skip
    return from_polar(magnitudes, phases, config)


def from_polar(magnitudes: Tensor, phases: Tensor, config: SpectrogramConfig) -> Tensor:
    """Audio ``[B, C, T * hop]`` of compressed magnitudes and phases ``[B, C, F, T]``."""
    return from_spectrogram(_channels(torch.polar(magnitudes.float(), phases.float())), config)


def _channels(spec: Tensor) -> Tensor:  # complex (B, C, F, T) -> real (B, 2C, F, T)
    return torch.stack((spec.real, spec.imag), dim=2).flatten(1, 2)


def griffin_lim_phases(
    magnitudes: Tensor,
    config: SpectrogramConfig,
    *,
    iterations: int = 64,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
    init: str = "random",
    frequencies: Tensor | None = None,
    fixed: Tensor | None = None,
) -> Tensor:
    """Phases ``[B, C, F, T]`` that make the given compressed magnitudes a real signal's.

    Fast Griffin-Lim (Perraudin et al. 2013): start from random phases, then alternate
    between keeping the wanted magnitudes and projecting onto the spectrograms of real
    signals (inverse then forward transform), extrapolating each projection by
    ``momentum``. It runs over this module's own framing, so frame ``t`` of the input is
    frame ``t`` of :func:`to_spectrogram` (torchaudio's version centres frames differently).

    Args:
        magnitudes: ``[B, C, F, T]`` compressed magnitudes (``beta * |X|**alpha``), >= 0.
        config: STFT parameters.
        iterations: projections; 0 returns the starting phases.
        momentum: extrapolation of each projection (0 is plain Griffin-Lim).
        generator: randomness of the starting phases; same seed, same phases.
        init: ``"random"`` (uniform phases, the classic start) or ``"locked"`` (start
            from :func:`locked_phases`: partials keep their frequency; what the codecs'
            magnitude decoding uses).
        frequencies: ``[B, C, F, T]`` bin offsets of the partials for the ``"locked"``
            start (:func:`locked_phases`); None reads them off the magnitudes.
        fixed: ``[B, C, F, K]`` phases of the first ``K`` frames, kept through every
            iteration (a block continuing an earlier one: RTISI-style committed frames).
    """
    if magnitudes.ndim != 4 or magnitudes.shape[2] != config.bins:
        raise ValueError(
            f"expected magnitudes [B, C, {config.bins}, T], got {list(magnitudes.shape)}"
        )
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    magnitudes = magnitudes.float()
    if init == "locked":
        angle = locked_phases(magnitudes, config, generator, frequencies)
    elif init == "random":
        angle = 2.0 * torch.pi * torch.rand(
            magnitudes.shape, generator=generator, device=magnitudes.device,
            dtype=magnitudes.dtype,
        )  # fmt: skip
    else:
        raise ValueError(f"init must be 'locked' or 'random', got {init!r}")
    keep = 0 if fixed is None else fixed.shape[-1]
    if fixed is not None:
        angle[..., :keep] = fixed.to(angle)
    if not iterations:
        return angle
    # The projections run on the uncompressed STFT: compression keeps phases, so the
    # fixed point is the same, and each projection saves a compression and its inverse.
    shape = magnitudes.shape
    linear = (magnitudes.clamp_min(0.0) / config.beta).pow(1.0 / config.alpha).flatten(0, 1)
    spec = torch.polar(linear, angle.flatten(0, 1))  # (B*C, F, T)
    committed = None if fixed is None else spec[..., :keep].clone()
    previous: Tensor | None = None
    for _ in range(iterations):
        projected = packed_stft(packed_istft(spec, config), config)
        step = projected if previous is None else projected + momentum * (projected - previous)
        previous = projected
        spec = linear * torch.sgn(step)
        if committed is not None:
            spec[..., :keep] = committed
    return torch.angle(spec).reshape(shape)
