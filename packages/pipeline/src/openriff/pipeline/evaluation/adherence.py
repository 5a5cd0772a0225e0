"""Accompaniment adherence without CLAP, for music whose chords and tempo are known.

The synthetic songs (:mod:`openriff.pipeline.data.synth`) come with their chord timeline and
tempo, so how well a stem fits its context can be measured from the audio alone:

* **harmonic fit**: the share of a stem's voiced frames whose dominant pitch class (the
  strongest class of a chromagram, an estimate of the sounding pitch) belongs to the chord
  sounding at that moment;
* **rhythmic fit**: the share of a stem's onsets (spectral-flux peaks) that fall on the
  song's sixteenth-note grid, within ``tolerance`` of a grid period (0.125: a stem with
  onsets at random times scores 0.25 on average);
* :func:`pair_embedding`, a simple embedding of a (context, stem) mix for the APA of
  openriff-metrics: per 2 s window, the mix's mean chroma and its frame-by-frame chroma,
  each sorted in descending order (how concentrated its harmony is, whatever the key). A
  stem that clashes with its context's harmony spreads both.

These are plain signal processing (an STFT, chroma folding, peak picking): deterministic,
fast, and calibrated on the generator's own stems in the tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from openriff.pipeline.chroma import fold_matrix

# Frequencies folded into the chromagram: from below the lowest bass note to the
# harmonics that still carry the pitch.
CHROMA_FMIN = 30.0
CHROMA_FMAX = 4000.0


def _stft_magnitude(wave: NDArray[np.float32], n_fft: int, hop: int) -> NDArray[np.float64]:
    """``[frames, bins]`` magnitudes of a mono signal (frames centred on ``i * hop``)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    spec = torch.stft(
        x, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True
    )
    out: NDArray[np.float64] = spec.abs().T.double().numpy()
    return out


def as_mono(wave: ArrayLike) -> NDArray[np.float32]:
    """``[S]`` or ``[C, S]`` finite audio as mono ``[S]`` float32 (channels averaged)."""
    array = np.asarray(wave, dtype=np.float32)
    if array.ndim == 2:
        array = array.mean(0)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"expected audio shaped [S] or [C, S], got {np.shape(wave)}")
    if not np.isfinite(array).all():
        raise ValueError("audio contains NaN or infinite samples")
    return array


def chromagram(
    wave: ArrayLike, sample_rate: int, *, n_fft: int = 16384, hop: int = 4096
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Frame times ``[F]``, chroma energies ``[F, 12]`` (C = 0) and frame energies ``[F]``.

    A long window (340 ms at 48 kHz) resolves semitones down to the bass register.
    """
    mono = as_mono(wave)
    power = _stft_magnitude(mono, n_fft, hop) ** 2  # (F, K)
    fold = fold_matrix(sample_rate, n_fft, CHROMA_FMIN, CHROMA_FMAX)  # (K, 12)
    chroma = power @ fold  # (F, 12)
    times = np.arange(power.shape[0]) * hop / sample_rate
    return times, chroma, chroma.sum(1)


def harmonic_fit(
    wave: ArrayLike, sample_rate: int, chords: Sequence[dict[str, Any]], *, floor_db: float = -30.0
) -> float:
    """Share of voiced frames whose dominant pitch class is a tone of the sounding chord.

    Args:
        wave: the stem, ``[S]`` or ``[C, S]``.
        sample_rate: its rate.
        chords: the chord timeline, dicts with ``start``, ``end`` (seconds) and ``pitches``
            (MIDI notes), as in a synthetic song's ``song.json``.
        floor_db: frames quieter than this relative to the loudest are unvoiced.

    Returns:
        a share in [0, 1], or NaN when no frame is voiced (silence).
    """
    times, chroma, energy = chromagram(wave, sample_rate)
    if energy.max(initial=0.0) <= 0:
        return float("nan")
    voiced = energy > energy.max() * 10 ** (floor_db / 10)
    hits = total = 0
    for t, row, is_voiced in zip(times, chroma, voiced, strict=True):
        chord = next((c for c in chords if c["start"] <= t < c["end"]), None)
        if chord is None or not is_voiced:
            continue
        total += 1
        hits += int(int(np.argmax(row)) in {int(p) % 12 for p in chord["pitches"]})
    return hits / total if total else float("nan")


def onset_strength(
    wave: ArrayLike, sample_rate: int, *, n_fft: int = 1024, hop: int = 256, bands: int = 40
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Frame times ``[F]`` and spectral flux ``[F]``.

    The flux is the half-wave rectified rise of log magnitudes pooled in ``bands``
    log-spaced bands (30 Hz-16 kHz): pooling keeps the beating of a tone's partials inside
    one FFT window from reading as onsets.
    """
    mono = as_mono(wave)
    magnitude = _stft_magnitude(mono, n_fft, hop)  # (F, K)
    freqs = np.arange(magnitude.shape[1]) * sample_rate / n_fft
    edges = np.geomspace(30.0, min(16000.0, sample_rate / 2), bands + 1)
    pooled = np.stack(
        [magnitude[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in itertools.pairwise(edges)],
        axis=1,
    )  # (F, bands)
    # Bands 60 dB below the frame's loudest count as silent: the spectral splatter of a
    # note's release would otherwise rise from near-silence and read as an onset.
    floor = 1e-3 * pooled.max(axis=1, keepdims=True) + 1e-12
    log_mag = np.log(np.maximum(pooled, floor))
    flux = np.maximum(np.diff(log_mag, axis=0, prepend=log_mag[:1]), 0.0).sum(1)
    return np.arange(len(flux)) * hop / sample_rate, flux


def onsets(wave: ArrayLike, sample_rate: int, *, min_gap: float = 0.05) -> NDArray[np.float64]:
    """Onset times in seconds: peaks of the spectral flux that stand out.

    A peak must exceed the local median (0.2 s) by a fifth of the largest flux and rise a
    third of it above its surroundings (prominence), at least ``min_gap`` apart.
    """
    from scipy.ndimage import median_filter
    from scipy.signal import find_peaks

    times, flux = onset_strength(wave, sample_rate)
    top = float(flux.max(initial=0.0))
    if top <= 0:
        return np.zeros(0)
    hop_s = float(times[1] - times[0]) if len(times) > 1 else 1.0
    local = median_filter(flux, size=max(3, round(0.2 / hop_s)), mode="nearest")
    peaks, _ = find_peaks(
        flux, height=local + 0.2 * top, prominence=0.3 * top,
        distance=max(1, round(min_gap / hop_s)),
    )  # fmt: skip
    return np.asarray(times[peaks], dtype=np.float64)


def rhythmic_fit(
    wave: ArrayLike,
    sample_rate: int,
    tempo: float,
    *,
    subdivision: int = 4,
    tolerance: float = 0.125,
    offset: float = 0.0,
) -> float:
    """Share of the stem's onsets within ``tolerance`` grid periods of the beat grid.

    Args:
        wave: the stem.
        sample_rate: its rate.
        tempo: beats per minute of the context.
        subdivision: grid points per beat (4: sixteenth notes).
        tolerance: allowed distance as a share of the grid period (random onsets score
            ``2 * tolerance`` on average).
        offset: time of the first beat in seconds.

    Returns:
        a share in [0, 1], or NaN when the stem has no onsets.
    """
    if not tempo > 0:
        raise ValueError(f"tempo must be > 0, got {tempo}")
    times = onsets(wave, sample_rate)
    if len(times) == 0:
        return float("nan")
    period = 60.0 / tempo / subdivision
    phase = ((times - offset) / period) % 1.0
    distance = np.minimum(phase, 1.0 - phase)  # in grid periods
    return float(np.mean(distance <= tolerance))


def pair_embedding(
    context: ArrayLike, stem: ArrayLike, sample_rate: int, *, window: float = 2.0
) -> NDArray[np.float64]:
    """Embeddings ``[W, 24]`` of the mix of a context and a stem, one per window.

    The stem is scaled to the context's RMS before mixing (as APA's loudness-matched pairs).
    Each window's vector: its mean chroma (normalised to sum 1) sorted in descending order,
    then the per-frame chroma (each frame normalised, sorted) averaged over the window.
    Sorting makes both invariant to key; normalising, to loudness. A stem in the context's
    harmony keeps the mix's energy in few pitch classes, frame by frame; a stem from
    another song spreads it. (Rhythm is left to :func:`rhythmic_fit`: onset statistics of
    a few windows proved too noisy for a Fréchet distance.)
    """
    a, b = as_mono(context), as_mono(stem)
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    # Loudness-matched, as APA's pairs are: a quiet stem must not hide behind its context.
    rms_a, rms_b = float(np.sqrt(np.mean(a**2))), float(np.sqrt(np.mean(b**2)))
    if rms_a > 0 and rms_b > 0:
        b = b * (rms_a / rms_b)
    mix = (a + b).astype(np.float32)
    size = round(window * sample_rate)
    if n < size:
        raise ValueError(f"the pair is {n / sample_rate:.2f} s, shorter than one {window} s window")
    rows = []
    for lo in range(0, n - size + 1, size):
        _, chroma, _ = chromagram(mix[lo : lo + size], sample_rate, n_fft=8192, hop=2048)
        profile = chroma.sum(0)
        profile = np.sort(profile / max(float(profile.sum()), 1e-12))[::-1]
        frames = chroma / np.maximum(chroma.sum(1, keepdims=True), 1e-12)
        frames = np.sort(frames, axis=1)[:, ::-1].mean(0)
        rows.append(np.concatenate([profile, frames]))
    return np.stack(rows)
