"""The instruments of the synthetic songs, rendered from a song's chords at 48 kHz.

Each renderer (:func:`drums`, :func:`bass`, :func:`keys`, :func:`guitar`, :func:`lead`)
draws its own timbre from ``rng`` (waveform, filter, envelope, drum sounds), so a stem type
is a family of sounds rather than one preset, and returns the stem's audio and notes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from openriff.pipeline.data.music import MAJOR, MINOR, SAMPLE_RATE, Note, Stem, SynthSong, midi_hz


def _envelope(n: int, attack: float, release: float, decay: float) -> NDArray[np.float64]:
    t = np.arange(n) / SAMPLE_RATE
    env = np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t * decay)
    tail = min(n, int(release * SAMPLE_RATE))
    if tail > 0:
        env[n - tail :] *= np.linspace(1.0, 0.0, tail)
    return env


def _lowpass(x: NDArray[np.float64], cutoff: float) -> NDArray[np.float64]:
    """One-pole low-pass (cheap, smooth; enough to vary brightness)."""
    a = math.exp(-2 * math.pi * min(cutoff, 0.45 * SAMPLE_RATE) / SAMPLE_RATE)
    out: NDArray[np.float64] = lfilter([1 - a], [1, -a], x)
    return out


def _oscillator(kind: str, freq: float, n: int, phase: float = 0.0) -> NDArray[np.float64]:
    t = np.arange(n) / SAMPLE_RATE
    cycles = freq * t + phase
    if kind == "sine":
        return np.sin(2 * np.pi * cycles)
    if kind == "square":
        # A few odd harmonics: band-limited enough at these pitches.
        return sum(
            (np.sin(2 * np.pi * k * cycles) / k for k in range(1, 12, 2) if k * freq < 18_000),
            np.zeros(n),
        )
    # saw
    return sum(
        (np.sin(2 * np.pi * k * cycles) / k for k in range(1, 16) if k * freq < 18_000),
        np.zeros(n),
    )


def _add(buffer: NDArray[np.float64], start: float, signal: NDArray[np.float64]) -> None:
    i = int(start * SAMPLE_RATE)
    if i >= buffer.shape[0]:
        return
    j = min(buffer.shape[0], i + signal.shape[0])
    buffer[i:j] += signal[: j - i]


def _pluck(freq: float, n: int, rng: np.random.Generator, damping: float) -> NDArray[np.float64]:
    """Karplus-Strong string: y[t] = x[t] + d/2 (y[t-N] + y[t-N-1])."""
    period = max(2, round(SAMPLE_RATE / freq))
    burst = np.zeros(n)
    burst[:period] = rng.uniform(-1, 1, min(period, n))
    a = np.zeros(period + 2)
    a[0] = 1.0
    a[period] = a[period + 1] = -damping / 2
    out: NDArray[np.float64] = lfilter([1.0], a, burst)
    return out


def _normalise(x: NDArray[np.float64], peak: float) -> NDArray[np.float32]:
    top = float(np.abs(x).max())
    return (x * (peak / top) if top > 0 else x).astype(np.float32)


def drums(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
    """Kick, snare and hi-hats on a drawn pattern; the kit's sounds are drawn too."""
    out = np.zeros(total)
    kick_pitch = rng.uniform(45, 70)
    snare_tone = rng.uniform(160, 260)
    hat_cut = rng.uniform(6000, 12000)
    pattern = rng.integers(0, 3)
    notes = []
    for bar in range(song.bars):
        for step in range(8):  # eighth notes
            t = (bar * 4 + step / 2) * beat_s
            n = int(0.3 * SAMPLE_RATE)
            if step in (0, 4) or (pattern == 1 and step == 5) or (pattern == 2 and step == 3):
                sweep = kick_pitch * (1 + 3 * np.exp(-np.arange(n) / SAMPLE_RATE * 40))
                kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * _envelope(
                    n, 0.001, 0.02, 12
                )
                _add(out, t, 0.9 * kick)
                notes.append(Note(t, t + 0.3, 36, 0.9))
            if step in (2, 6):
                noise = rng.standard_normal(n) * _envelope(n, 0.001, 0.02, 25)
                tone = np.sin(2 * np.pi * snare_tone * np.arange(n) / SAMPLE_RATE) * _envelope(
                    n, 0.001, 0.02, 30
                )
                _add(out, t, 0.5 * noise + 0.4 * tone)
                notes.append(Note(t, t + 0.3, 38, 0.8))
            hat_n = int(0.08 * SAMPLE_RATE)
            hat = rng.standard_normal(hat_n)
            hat = hat - _lowpass(hat, hat_cut)  # what is left above the cutoff
            velocity = 0.35 if step % 2 else 0.5
            _add(out, t, velocity * hat * _envelope(hat_n, 0.0005, 0.01, 60))
            notes.append(Note(t, t + 0.08, 42, velocity))
    return Stem(
        "drums",
        ["drums", "beat", str(rng.choice(["tight", "punchy", "loose"]))],
        False,
        notes,
        _normalise(out, 0.8),
    )


def bass(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
    """The chord roots (C2-B2) in quarters or eighths, through a drawn oscillator and filter."""
    out = np.zeros(total)
    wave = str(rng.choice(["saw", "square", "sine"]))
    cutoff = rng.uniform(300, 1500)
    eighths = bool(rng.integers(0, 2))
    notes = []
    for chord in song.chords:
        pitch = 36 + (chord.root - 36) % 12  # the root, between C2 and B2
        step = beat_s / 2 if eighths else beat_s
        t = chord.start
        while t < chord.end - 1e-9:
            length = step * 0.9
            n = int(length * SAMPLE_RATE)
            tone = _oscillator(wave, midi_hz(pitch), n) * _envelope(n, 0.005, 0.03, 2.0)
            _add(out, t, _lowpass(tone, cutoff))
            notes.append(Note(t, t + length, pitch, 0.8))
            t += step
    brightness = "bright" if cutoff > 900 else "warm"
    return Stem(
        "bass",
        ["bass", wave, brightness, "eighths" if eighths else "quarters"],
        False,
        notes,
        _normalise(out, 0.8),
    )


def keys(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
    """The chords as two stabs per bar or one detuned pad, with a drawn waveform and filter."""
    out = np.zeros(total)
    pad = bool(rng.integers(0, 2))
    wave = "saw" if pad else str(rng.choice(["sine", "square"]))
    cutoff = rng.uniform(1200, 4000)
    notes = []
    for chord in song.chords:
        hits = [chord.start] if pad else [chord.start + b * beat_s for b in (0, 2)]
        length = (chord.end - chord.start) if pad else 2 * beat_s * 0.95
        for t in hits:
            n = int(length * SAMPLE_RATE)
            for pitch in chord.pitches:
                detune = rng.uniform(-0.08, 0.08) if pad else 0.0
                tone = _oscillator(wave, midi_hz(pitch + detune), n, rng.uniform())
                env = _envelope(n, 0.3 if pad else 0.005, 0.2, 0.3 if pad else 1.5)
                _add(out, t, _lowpass(tone * env, cutoff))
                notes.append(Note(t, t + length, pitch, 0.6))
    instrument = "pad" if pad else "keys"
    return Stem(
        instrument,
        [instrument, "chords", "soft" if pad else "electric"],
        False,
        notes,
        _normalise(out, 0.7),
    )


def guitar(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
    """The chords an octave up, plucked (Karplus-Strong) and strummed on every beat."""
    out = np.zeros(total)
    damping = rng.uniform(0.990, 0.998)
    notes = []
    for chord in song.chords:
        for beat in range(4):
            t0 = chord.start + beat * beat_s
            for k, pitch in enumerate((*chord.pitches, chord.pitches[0] + 12)):
                t = t0 + k * 0.012  # a quick strum
                n = int(beat_s * SAMPLE_RATE)
                _add(out, t, _pluck(midi_hz(pitch + 12), n, rng, damping) * 0.5)
                notes.append(Note(t, t + beat_s, pitch + 12, 0.7))
    return Stem(
        "guitar", ["guitar", "plucked", "acoustic", "strummed"], False, notes, _normalise(out, 0.7)
    )


def lead(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int, vocal: bool) -> Stem:
    """A melody on the scale: a synth arpeggio, or a sung-like line with vibrato (``vocal``)."""
    out = np.zeros(total)
    scale = MAJOR if song.mode == "major" else MINOR
    notes = []
    if vocal:
        # A sung-like line: slow notes, vibrato, vowel-like formant weighting.
        formants = rng.choice([[700, 1200], [300, 2300], [500, 900]])
        position = 4
        for bar in range(song.bars):
            for half in range(2):
                t = (bar * 4 + half * 2) * beat_s
                position = int(np.clip(position + rng.integers(-2, 3), 0, 9))
                pitch = 60 + song.key + scale[position % 7] + 12 * (position // 7)
                length = 2 * beat_s * 0.95
                n = int(length * SAMPLE_RATE)
                time = np.arange(n) / SAMPLE_RATE
                f0 = midi_hz(pitch) * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * time))
                phase = np.cumsum(f0) / SAMPLE_RATE
                voice = np.zeros(n)
                for k in range(1, 20):
                    freq = k * midi_hz(pitch)
                    gain = sum(math.exp(-(((freq - f) / 150.0) ** 2)) for f in formants) + 0.05
                    voice += gain / k**0.5 * np.sin(2 * np.pi * k * phase)
                _add(out, t, voice * _envelope(n, 0.06, 0.15, 0.2))
                notes.append(Note(t, t + length, pitch, 0.7))
        return Stem("vocals", ["vocals", "singing", "melody"], True, notes, _normalise(out, 0.7))
    wave = str(rng.choice(["square", "saw", "sine"]))
    for chord in song.chords:
        tones = [*sorted(chord.pitches), chord.pitches[0] + 12]
        for i in range(16):  # sixteenth-note arpeggio
            t = chord.start + i * beat_s / 4
            pitch = tones[i % len(tones)] + 12
            n = int(beat_s / 4 * 0.9 * SAMPLE_RATE)
            tone = _oscillator(wave, midi_hz(pitch), n) * _envelope(n, 0.002, 0.02, 6)
            _add(out, t, tone)
            notes.append(Note(t, t + beat_s / 4 * 0.9, pitch, 0.6))
    return Stem("lead", ["lead", "arpeggio", "synth", wave], False, notes, _normalise(out, 0.6))
