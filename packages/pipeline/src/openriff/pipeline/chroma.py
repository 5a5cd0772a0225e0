"""Chromagrams: pitch-class energies of audio, for conditioning and for evaluation.

Two users share the folding of STFT bins into the 12 pitch classes:

* :func:`context_chroma`, an optional second view of a context for the denoiser: one
  chroma vector per latent frame, centred on that frame, each scaled to a maximum of 1.
  A codec small enough to train on a CPU keeps a mix's harmony only faintly in its
  latents (a probe classifier finds the sounding chord's root from OpenRiff's CPU-trained
  codec's context latents in about a quarter of frames), while a chromagram states it
  outright; with ``openriff prepare --context-chroma`` the shards' context becomes
  ``[D + 12, T]``, latents then chroma, and a bundle built on them appends the same
  chroma when it generates.
* :func:`openriff.pipeline.evaluation.adherence.chromagram`, the pitch estimate of the adherence
  evaluation.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

CHROMA_BINS = 12
# The context view's window: 170 ms at 48 kHz resolves semitones from C3 (131 Hz) up,
# where chords are voiced; bins below FMIN (a bass note's fundamental would need a longer
# window) are left out.
CONTEXT_N_FFT = 8192
CONTEXT_FMIN = 65.0
CONTEXT_FMAX = 4000.0
# Frames quieter than this (RMS, dB re full scale) carry no harmony: all-zero rows.
CONTEXT_FLOOR_DB = -70.0
_FRAMES_PER_CALL = 256  # bounds memory: [256, 8192] samples per FFT call


def fold_matrix(sample_rate: int, n_fft: int, fmin: float, fmax: float) -> NDArray[np.float64]:
    """``[n_fft // 2 + 1, 12]`` 0/1 matrix: which pitch class (C = 0) each rfft bin feeds.

    Bins outside ``[fmin, fmax]`` feed none.
    """
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    matrix = np.zeros((len(freqs), CHROMA_BINS))
    band = np.flatnonzero((freqs >= fmin) & (freqs <= fmax) & (freqs > 0))
    classes = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % CHROMA_BINS
    matrix[band, classes] = 1.0
    return matrix


def context_chroma(wave: Tensor, hop: float, frames: int, sample_rate: int = 48_000) -> Tensor:
    """Chroma ``[12, frames]`` of ``wave``, one column per latent frame.

    Column ``k`` is the pitch-class power of a Hann window of :data:`CONTEXT_N_FFT` samples
    centred on ``(k + 0.5) * hop`` (the middle of latent frame ``k``), divided by its
    largest class; frames quieter than :data:`CONTEXT_FLOOR_DB` give zeros. Audio past the
    end counts as silence.

    Args:
        wave: audio ``[S]`` or ``[C, S]`` (channels are averaged).
        hop: samples per latent frame (a codec's ``hop_length``; need not be whole).
        frames: how many columns.
        sample_rate: the audio's rate.

    Returns:
        float32 ``[12, frames]`` on ``wave``'s device, values in [0, 1].
    """
    if wave.ndim not in (1, 2) or wave.shape[-1] == 0:
        raise ValueError(f"expected audio shaped [S] or [C, S], got {list(wave.shape)}")
    if not hop > 0 or frames < 0:
        raise ValueError(f"hop must be > 0 and frames >= 0, got {hop} and {frames}")
    mono = (wave.mean(0) if wave.ndim == 2 else wave).float()
    if not bool(torch.isfinite(mono).all()):
        raise ValueError("audio contains NaN or infinite samples")
    half = CONTEXT_N_FFT // 2
    centres = torch.round((torch.arange(frames, dtype=torch.float64) + 0.5) * hop).long()
    reach = int(centres.max()) + half if frames else 0
    padded = torch.nn.functional.pad(mono, (half, max(0, reach - mono.shape[-1])))
    window = torch.hann_window(CONTEXT_N_FFT, device=mono.device)
    fold = torch.from_numpy(fold_matrix(sample_rate, CONTEXT_N_FFT, CONTEXT_FMIN, CONTEXT_FMAX)).to(
        mono.device, torch.float32
    )
    offsets = torch.arange(CONTEXT_N_FFT, device=mono.device)
    floor = CONTEXT_N_FFT * 10 ** (CONTEXT_FLOOR_DB / 10)  # sum of squares at the floor RMS
    columns = []
    for lo in range(0, frames, _FRAMES_PER_CALL):
        # Centre k sits at padded index centres[k] (the pad shifted everything by half).
        starts = centres[lo : lo + _FRAMES_PER_CALL].to(mono.device)
        segments = padded[starts[:, None] + offsets]  # (F, N)
        power = torch.fft.rfft(segments * window).abs() ** 2  # (F, K)
        chroma = power @ fold  # (F, 12)
        top = chroma.amax(dim=1, keepdim=True)
        voiced = (segments**2).sum(1, keepdim=True) > floor
        columns.append(torch.where(voiced & (top > 0), chroma / top.clamp_min(1e-30), 0.0))
    if not columns:
        return mono.new_zeros(CHROMA_BINS, 0)
    return torch.cat(columns).T.contiguous()  # (12, frames)


def append_context_chroma(
    latents: Tensor, wave: Tensor, hop: float, sample_rate: int = 48_000
) -> Tensor:
    """Context latents ``[B, D, T]`` with the chroma of their audio appended.

    Args:
        latents: the contexts' latents ``[B, D, T]``.
        wave: the contexts' mono audio ``[B, S]``.
        hop: samples per latent frame.
        sample_rate: the audio's rate.

    Returns:
        ``[B, D + 12, T]``: latents, then :func:`context_chroma` rows.
    """
    if wave.ndim != 2 or wave.shape[0] != latents.shape[0]:
        raise ValueError(
            f"expected one mono context [B, S] per latent row, got {list(wave.shape)} for "
            f"{list(latents.shape)} latents"
        )
    frames = latents.shape[-1]
    chroma = torch.stack([context_chroma(w, hop, frames, sample_rate) for w in wave])
    return torch.cat([latents, chroma.to(latents)], dim=1)  # (B, D + 12, T)
