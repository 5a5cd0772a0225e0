"""The chord-free measures against hand-made stems and contexts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openriff.pipeline.evaluation.measures import (
    clipped_samples,
    context_harmonic_fit,
    context_rhythmic_fit,
    seam_discontinuity,
    tuning_deviation,
)

SR = 48_000
# I - IV - V - vi in C, a chord a second, as MIDI triads in the middle register.
CHORDS = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (69, 72, 76)] * 3


def note(midi: float, seconds: float, *, decay: float = 0.0, partials: int = 5) -> np.ndarray:
    """A harmonic tone (1/k partials) with 5 ms fades, optionally decaying exponentially."""
    t = np.arange(round(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, partials + 1))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)
    envelope = np.exp(-decay * t) if decay else 1.0
    return (0.2 * wave * fade * envelope).astype(np.float32)


def chord_context() -> np.ndarray:
    return np.concatenate([sum(note(p, 1.0) for p in chord) for chord in CHORDS])


def bass(shift: float = 0.0, *, tones: tuple[int, ...] = (0,)) -> np.ndarray:
    """Two half-second bass notes per chord on its tones (root two octaves down), shifted."""
    parts = []
    for chord in CHORDS:
        for i in range(2):
            parts.append(note(chord[tones[i % len(tones)]] - 24 + shift, 0.5))
    return np.concatenate(parts)


def test_harmonic_fit_is_high_on_chord_tones_and_low_a_tritone_away() -> None:
    context = chord_context()
    on_tones = context_harmonic_fit(bass(tones=(0, 1)), context, SR)
    tritone = context_harmonic_fit(bass(6, tones=(0, 1)), context, SR)
    assert on_tones > 0.85
    assert tritone < 0.25
    # Silence has nothing to measure.
    assert np.isnan(context_harmonic_fit(np.zeros_like(context), context, SR))


def plucks(times: list[float], seconds: float, midi: float) -> np.ndarray:
    out = np.zeros(round(seconds * SR), np.float32)
    # Decayed 50 dB by its end, so that its end reads as no onset.
    pluck = note(midi, 0.55, decay=10.5)
    for t in times:
        start = round(t * SR)
        out[start : start + len(pluck)] += pluck[: len(out) - start]
    return out


def test_rhythmic_fit_is_high_on_the_contexts_beat_and_low_half_a_beat_off() -> None:
    beat = 60.0 / 100  # 100 bpm
    beats = [0.3 + i * beat for i in range(16)]
    seconds = beats[-1] + 1.0
    context = plucks(beats, seconds, 64)
    on_beat = context_rhythmic_fit(plucks(beats, seconds, 40), context, SR)
    off_beat = context_rhythmic_fit(plucks([t + beat / 2 for t in beats], seconds, 40), context, SR)
    assert on_beat > 0.9
    assert off_beat < 0.1


def test_tuning_deviation_of_in_tune_and_detuned_notes() -> None:
    in_tune = tuning_deviation(bass(tones=(0, 1, 2)), SR)
    detuned = tuning_deviation(bass(0.3, tones=(0, 1, 2)), SR)
    assert in_tune < 0.02
    assert detuned == pytest.approx(0.3, abs=0.03)
    assert np.isnan(tuning_deviation(np.zeros(SR, np.float32), SR))


def test_clipped_samples_counts_overs_and_flat_tops() -> None:
    t = np.arange(SR) / SR
    sine = np.sin(2 * np.pi * 110 * t).astype(np.float32)
    assert clipped_samples(0.5 * sine) == 0
    # Over full scale: every sample at or above 1 counts.
    assert clipped_samples(2 * sine) == int(np.count_nonzero(np.abs(2 * sine) >= 1.0))
    # Hard-clipped at 0.8, then scaled down: no over, but the flat tops remain.
    squashed = 0.5 * np.clip(sine, -0.8, 0.8)
    flat = int(np.count_nonzero(np.abs(sine) >= 0.8))
    assert clipped_samples(squashed) == pytest.approx(flat, rel=0.02)
    assert clipped_samples(np.stack([0.5 * sine, squashed])) == clipped_samples(squashed)


def test_seam_discontinuity_is_about_one_for_seamless_audio_and_large_for_a_jump() -> None:
    music = np.concatenate([bass(tones=(0, 1, 2)), bass(tones=(2, 0, 1))])  # 24 s
    seams = [4.1, 8.2, 12.3, 16.4, 20.5]
    seamless = seam_discontinuity(music, SR, seams)
    assert 0.5 < seamless < 1.5
    # The same music, but every window louder and brighter than the one before.
    jumpy = music.copy()
    edges = [0, *[round(s * SR) for s in seams], len(music)]
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        segment = jumpy[lo:hi]
        bright = np.diff(segment, prepend=segment[:1]) * 20
        jumpy[lo:hi] = (segment + (i % 2) * bright) * (2.0 if i % 2 else 1.0)
    assert seam_discontinuity(jumpy, SR, seams) > 1.5 * seamless
    assert np.isnan(seam_discontinuity(music, SR, []))
