"""Measures of a stem against its own context, for any music: no chords or tempo needed.

What :mod:`.adherence` measures against a synthetic song's known chords and tempo, these
measure against the context's audio itself, so they run on any multitrack data:

* :func:`context_harmonic_fit`: the share of the stem's voiced frames whose dominant pitch
  class is among the ``top`` strongest pitch classes of the context in the same frame
  (random pitch classes score ``top / 12``, 0.25 by default);
* :func:`context_rhythmic_fit`: the share of the stem's onsets within ``tolerance`` seconds
  of an onset of the context (librosa's onset detector on both; 50 ms is the window of
  the MIREX onset evaluation);
* :func:`tuning_deviation`: the median distance, in semitones, of the stem's
  fundamental (YIN, librosa) from the nearest equal-tempered pitch (A4 = 440 Hz): 0 in
  tune, 0.25 for pitches at random;
* :func:`clipped_samples`: samples at or beyond full scale, and samples in flat-topped
  runs (the trace of a hard clip already in the audio);
* :func:`seam_discontinuity`: how much the sound changes across the given instants
  (sampling-window seams) relative to how much it changes across any instant inside
  the windows (1: a seam is unremarkable).

librosa is imported when a measure needs it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openriff.pipeline.evaluation.adherence import as_mono, chromagram

# YIN runs at 16 kHz: the bass and midrange fundamentals are far below 8 kHz and the
# autocorrelation is 9x cheaper than at 48 kHz.
PITCH_RATE = 16_000


def context_harmonic_fit(
    stem: ArrayLike,
    context: ArrayLike,
    sample_rate: int,
    *,
    top: int = 3,
    floor_db: float = -30.0,
) -> float:
    """Share of the stem's voiced frames whose dominant pitch class the context stresses.

    Both are folded into chromagrams with the same long window (340 ms at 48 kHz, which
    resolves semitones in the bass). A frame of the stem is voiced when it is within
    ``floor_db`` of the stem's loudest frame; it counts when the context is also sounding
    (within ``floor_db`` of its loudest) there.

    Args:
        stem: ``[S]`` or ``[C, S]``.
        context: the same length (the shorter is used).
        sample_rate: their rate.
        top: how many of the context's strongest pitch classes count as fitting.
        floor_db: voicing threshold for both.

    Returns:
        a share in [0, 1], or NaN when no frame is voiced in both.
    """
    if not 1 <= top < 12:
        raise ValueError(f"top must be in [1, 11], got {top}")
    a, b = as_mono(stem), as_mono(context)
    n = min(len(a), len(b))
    _, stem_chroma, stem_energy = chromagram(a[:n], sample_rate)  # (F, 12), (F,)
    _, context_chroma, context_energy = chromagram(b[:n], sample_rate)
    if stem_energy.max(initial=0.0) <= 0 or context_energy.max(initial=0.0) <= 0:
        return float("nan")
    ratio = 10 ** (floor_db / 10)
    voiced = (stem_energy > stem_energy.max() * ratio) & (
        context_energy > context_energy.max() * ratio
    )
    if not voiced.any():
        return float("nan")
    dominant = stem_chroma[voiced].argmax(1)  # (V,)
    stressed = np.argsort(context_chroma[voiced], axis=1)[:, -top:]  # (V, top)
    return float(np.mean((stressed == dominant[:, None]).any(1)))


def onset_times(wave: ArrayLike, sample_rate: int) -> NDArray[np.float64]:
    """Onset times in seconds (librosa's spectral-flux onset detector, default settings)."""
    import librosa

    mono = as_mono(wave)
    if not np.any(mono):
        return np.zeros(0)
    times = librosa.onset.onset_detect(y=mono, sr=sample_rate, units="time")
    return np.asarray(times, dtype=np.float64)


def context_rhythmic_fit(
    stem: ArrayLike, context: ArrayLike, sample_rate: int, *, tolerance: float = 0.05
) -> float:
    """Share of the stem's onsets within ``tolerance`` seconds of one of the context's.

    Returns:
        a share in [0, 1], or NaN when the stem or the context has no onset.
    """
    mine, theirs = onset_times(stem, sample_rate), onset_times(context, sample_rate)
    return onset_fit(mine, theirs, tolerance=tolerance)


def onset_fit(
    mine: NDArray[np.float64], theirs: NDArray[np.float64], *, tolerance: float = 0.05
) -> float:
    """Share of onset times ``mine`` within ``tolerance`` seconds of one of ``theirs``."""
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    if len(mine) == 0 or len(theirs) == 0:
        return float("nan")
    nearest = np.abs(mine[:, None] - theirs[None, :]).min(1)
    return float(np.mean(nearest <= tolerance))


def voiced_pitches(
    wave: ArrayLike,
    sample_rate: int,
    *,
    fmin: float = 30.0,
    fmax: float = 1000.0,
    floor_db: float = -20.0,
) -> NDArray[np.float64]:
    """Fractional MIDI pitches ``[V]`` of the fundamental in the frames that sound.

    The fundamental is YIN's (librosa, 128 ms frames at 16 kHz, 16 ms hop) in frames within
    ``floor_db`` (RMS) of the loudest; empty for silence.
    """
    import librosa
    import soxr

    mono = as_mono(wave)
    if not np.any(mono):
        return np.zeros(0)
    y = np.asarray(soxr.resample(mono, sample_rate, PITCH_RATE, quality="HQ"), np.float32)
    frame, hop = 2048, 256
    if len(y) < frame:
        return np.zeros(0)
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=PITCH_RATE, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)[0][: len(f0)]
    voiced = rms > rms.max() * 10 ** (floor_db / 20)
    return np.asarray(librosa.hz_to_midi(f0[: len(rms)][voiced]), dtype=np.float64)


def tuning_deviation(wave: ArrayLike, sample_rate: int, **pitch: float) -> float:
    """Median distance in semitones of the fundamental from equal temperament (A4 = 440 Hz).

    Octave errors of the pitch tracker do not matter here: octaves of an in-tune pitch are
    in tune.

    Args:
        wave: the audio.
        sample_rate: its rate.
        **pitch: ``fmin``, ``fmax``, ``floor_db`` of :func:`voiced_pitches`.

    Returns:
        semitones in [0, 0.5], or NaN when no frame is loud enough.
    """
    midi = voiced_pitches(wave, sample_rate, **pitch)
    if midi.size == 0:
        return float("nan")
    return float(np.median(np.abs(midi - np.round(midi))))


def clipped_samples(wave: ArrayLike, *, run: int = 3) -> int:
    """Samples at or beyond full scale, plus samples in flat-topped runs near the peak.

    A run is ``run`` or more consecutive equal samples within 1 % of the channel's peak
    (magnitude): what hard clipping leaves even after the audio was scaled down.
    """
    array = np.asarray(wave, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    over = int(np.count_nonzero(np.abs(array) >= 1.0))
    flat = 0
    for row in array:
        peak = float(np.abs(row).max(initial=0.0))
        if peak == 0:
            continue
        high = np.abs(row) >= 0.99 * peak
        same = np.concatenate([[False], row[1:] == row[:-1]]) & high
        # Lengths of runs of repeated high samples (each run's first sample included).
        edges = np.diff(np.concatenate([[0], same.astype(np.int8), [0]]))
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1) + 1
        flat += int(lengths[lengths >= run].sum())
    return over + flat


def seam_discontinuity(
    wave: ArrayLike, sample_rate: int, seams: Sequence[float], *, span: float = 0.25
) -> float:
    """How much the sound changes across the seams, relative to any instant inside.

    The change across an instant ``t`` is the mean absolute difference (dB) between the
    mean log-mel spectra of ``[t - span, t)`` and ``[t, t + span)``: it rises with a jump
    of timbre, level or pitch at ``t``, and with a note starting there (bins more than
    30 dB below the loudest are raised to that floor). Averaged over the
    seams and divided by its average over every instant at least ``span`` away from a
    seam and from the ends, it is 1 when the seams change the sound no more than the
    music inside the windows does, and grows with audible seams.

    Args:
        wave: the audio.
        sample_rate: its rate.
        seams: the instants in seconds (e.g. where a new sampling window starts).
        span: seconds on each side of an instant.

    Returns:
        the ratio, or NaN when no seam or no other instant lies ``span`` inside the audio.
    """
    import librosa

    mono = as_mono(wave)
    hop = round(0.01 * sample_rate)
    mel = librosa.feature.melspectrogram(
        y=mono, sr=sample_rate, n_fft=2048, hop_length=hop, n_mels=64
    )  # (64, F)
    # Bins 30 dB below the loudest count as that: the dips between a tone's partials
    # would otherwise swing by tens of dB at every change of note and hide the seams.
    log_mel = 10 * np.log10(np.maximum(mel, mel.max(initial=0.0) * 1e-3 + 1e-20))
    width = max(1, round(span * sample_rate / hop))
    frames = log_mel.shape[1]
    cumulative = np.concatenate([np.zeros((64, 1)), np.cumsum(log_mel, axis=1)], axis=1)

    def change(t: int) -> float:
        before = (cumulative[:, t] - cumulative[:, t - width]) / width
        after = (cumulative[:, t + width] - cumulative[:, t]) / width
        return float(np.mean(np.abs(after - before)))

    inside = range(width, frames - width + 1)
    seam_frames = [round(s * sample_rate / hop) for s in seams]
    seam_frames = [t for t in seam_frames if t in inside]
    others = [t for t in inside if all(abs(t - s) >= width for s in seam_frames)]
    if not seam_frames or not others:
        return float("nan")
    interior = float(np.mean([change(t) for t in others]))
    return float(np.mean([change(t) for t in seam_frames])) / max(interior, 1e-12)
