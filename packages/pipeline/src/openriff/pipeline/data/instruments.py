"""The instruments of the synthetic songs, rendered from a song's chords at 48 kHz.

Each renderer (:func:`drums`, :func:`bass`, :func:`keys`, :func:`guitar`, :func:`lead`)
draws its own timbre from ``rng`` (waveform, filter, envelope, drum sounds), so a stem type
is a family of sounds rather than one preset, and returns the stem's audio and notes. All
follow the song's metre and its :class:`.music.Dynamics` (a loudness per two-bar section, accents
on the beats); the stem's peak level is drawn from the style's spread.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from openriff.pipeline.data.bassline import bass_notes
from openriff.pipeline.data.music import (
    MODES,
    SAMPLE_RATE,
    Dynamics,
    Note,
    Stem,
    SynthSong,
    SynthStyle,
    midi_hz,
)


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


def _normalise(
    x: NDArray[np.float64], peak: float, rng: np.random.Generator, style: SynthStyle
) -> NDArray[np.float32]:
    """``x`` peaking at ``peak`` lowered by a level drawn from ``style.level_db``."""
    top = float(np.abs(x).max())
    peak *= 10 ** (rng.uniform(*style.level_db) / 20)
    return (x * (peak / top) if top > 0 else x).astype(np.float32)


def _quarter_s(song: SynthSong) -> float:
    return 60.0 / song.tempo


def drums(
    rng: np.random.Generator,
    song: SynthSong,
    style: SynthStyle,
    dynamics: Dynamics,
    playing: list[bool],
    total: int,
) -> Stem:
    """Kick, snare and hi-hats on a pattern of the metre; the kit's sounds are drawn too.

    ``playing`` says, per two-bar section, whether the drums play in it.
    """
    out = np.zeros(total)
    kick_pitch = rng.uniform(45, 70)
    snare_tone = rng.uniform(160, 260)
    hat_cut = rng.uniform(6000, 12000)
    extra = bool(rng.integers(0, 2))
    meter = str(song.meter)
    # Eighth-note steps of a bar: kicks and snares by metre, an extra kick for some kits.
    kicks, snares = {
        "4/4": ({0, 4} | ({5} if extra else set()), {2, 6}),
        "3/4": ({0} | ({3} if extra else set()), {2, 4}),
        "6/8": ({0} | ({5} if extra else set()), {3}),
    }[meter]
    steps = round(song.meter.quarters * 2)
    eighth = _quarter_s(song) / 2
    notes = []
    for bar in range(song.bars):
        if not playing[bar // 2]:
            continue
        for step in range(steps):
            t = bar * song.bar_seconds + step * eighth
            velocity = dynamics.velocity(t, rng)
            n = int(0.3 * SAMPLE_RATE)
            if step in kicks:
                sweep = kick_pitch * (1 + 3 * np.exp(-np.arange(n) / SAMPLE_RATE * 40))
                kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * _envelope(
                    n, 0.001, 0.02, 12
                )
                _add(out, t, 0.9 * velocity * kick)
                notes.append(Note(t, t + 0.3, 36, 0.9 * velocity))
            if step in snares:
                noise = rng.standard_normal(n) * _envelope(n, 0.001, 0.02, 25)
                tone = np.sin(2 * np.pi * snare_tone * np.arange(n) / SAMPLE_RATE) * _envelope(
                    n, 0.001, 0.02, 30
                )
                _add(out, t, velocity * (0.5 * noise + 0.4 * tone))
                notes.append(Note(t, t + 0.3, 38, 0.8 * velocity))
            hat_n = int(0.08 * SAMPLE_RATE)
            hat = rng.standard_normal(hat_n)
            hat = hat - _lowpass(hat, hat_cut)  # what is left above the cutoff
            hat_velocity = 0.5 * velocity
            _add(out, t, hat_velocity * hat * _envelope(hat_n, 0.0005, 0.01, 60))
            notes.append(Note(t, t + 0.08, 42, hat_velocity))
    return Stem(
        "drums",
        ["drums", "beat", str(rng.choice(["tight", "punchy", "loose"]))],
        False,
        notes,
        _normalise(out, 0.8, rng, style),
    )


def bass(
    rng: np.random.Generator, song: SynthSong, style: SynthStyle, dynamics: Dynamics, total: int
) -> Stem:
    """A bass line (:func:`bass_notes`) through a drawn oscillator and filter."""
    out = np.zeros(total)
    wave = str(rng.choice(["saw", "square", "sine"]))
    cutoff = rng.uniform(300, 1500)
    figure = str(rng.choice(list(style.bass_figures)))
    low = int(rng.integers(style.bass_low[0], style.bass_low[1] + 1))
    notes = bass_notes(rng, song, style, dynamics, low, figure)
    for note in notes:
        n = int((note.end - note.start) * SAMPLE_RATE)
        tone = _oscillator(wave, midi_hz(note.pitch), n) * _envelope(n, 0.005, 0.03, 2.0)
        _add(out, note.start, note.velocity * _lowpass(tone, cutoff))
    brightness = "bright" if cutoff > 900 else "warm"
    return Stem(
        "bass", ["bass", wave, brightness, figure], False, notes, _normalise(out, 0.8, rng, style)
    )


def keys(
    rng: np.random.Generator, song: SynthSong, style: SynthStyle, dynamics: Dynamics, total: int
) -> Stem:
    """The chords as stabs (every half bar, or every bar in 3/4) or one detuned pad."""
    out = np.zeros(total)
    pad = bool(rng.integers(0, 2))
    wave = "saw" if pad else str(rng.choice(["sine", "square"]))
    cutoff = rng.uniform(1200, 4000)
    beats = song.meter.beats
    stab = song.bar_seconds / 2 if beats % 2 == 0 else song.bar_seconds
    notes = []
    for chord in song.chords:
        span = chord.end - chord.start
        hits = [chord.start] if pad else list(np.arange(chord.start, chord.end - 1e-6, stab))
        length = span if pad else min(stab, span) * 0.95
        for t in hits:
            n = int(length * SAMPLE_RATE)
            velocity = dynamics.velocity(float(t), rng)
            for pitch in chord.pitches:
                detune = rng.uniform(-0.08, 0.08) if pad else 0.0
                tone = _oscillator(wave, midi_hz(pitch + detune), n, rng.uniform())
                env = _envelope(n, 0.3 if pad else 0.005, 0.2, 0.3 if pad else 1.5)
                _add(out, float(t), velocity * _lowpass(tone * env, cutoff))
                notes.append(Note(float(t), float(t) + length, pitch, 0.6 * velocity))
    instrument = "pad" if pad else "keys"
    return Stem(
        instrument,
        [instrument, "chords", "soft" if pad else "electric"],
        False,
        notes,
        _normalise(out, 0.7, rng, style),
    )


def guitar(
    rng: np.random.Generator, song: SynthSong, style: SynthStyle, dynamics: Dynamics, total: int
) -> Stem:
    """The chords an octave up, plucked (Karplus-Strong) and strummed on every felt beat."""
    out = np.zeros(total)
    damping = rng.uniform(0.990, 0.998)
    beat_s = song.meter.beat_quarters * _quarter_s(song)
    notes = []
    for chord in song.chords:
        for t0 in np.arange(chord.start, chord.end - 1e-6, beat_s):
            velocity = dynamics.velocity(float(t0), rng)
            for k, pitch in enumerate((*chord.pitches, chord.pitches[0] + 12)):
                t = float(t0) + k * 0.012  # a quick strum
                n = int(beat_s * SAMPLE_RATE)
                _add(out, t, velocity * 0.5 * _pluck(midi_hz(pitch + 12), n, rng, damping))
                notes.append(Note(t, t + beat_s, pitch + 12, 0.7 * velocity))
    return Stem(
        "guitar",
        ["guitar", "plucked", "acoustic", "strummed"],
        False,
        notes,
        _normalise(out, 0.7, rng, style),
    )


def lead(
    rng: np.random.Generator,
    song: SynthSong,
    style: SynthStyle,
    dynamics: Dynamics,
    total: int,
    vocal: bool,
) -> Stem:
    """A melody on the scale: a synth arpeggio, or a sung-like line with vibrato (``vocal``)."""
    out = np.zeros(total)
    scale = MODES[song.mode]
    quarter = _quarter_s(song)
    notes = []
    if vocal:
        # A sung-like line: long notes, vibrato, vowel-like formant weighting.
        formants = rng.choice([[700, 1200], [300, 2300], [500, 900]])
        position = 4
        per_bar = 2 if song.meter.numerator == 4 else 1
        length = song.bar_seconds / per_bar * 0.95
        for bar in range(song.bars):
            for part in range(per_bar):
                t = bar * song.bar_seconds + part * song.bar_seconds / per_bar
                position = int(np.clip(position + rng.integers(-2, 3), 0, 9))
                pitch = 60 + song.key + scale[position % 7] + 12 * (position // 7)
                n = int(length * SAMPLE_RATE)
                time = np.arange(n) / SAMPLE_RATE
                f0 = midi_hz(pitch) * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * time))
                phase = np.cumsum(f0) / SAMPLE_RATE
                voice = np.zeros(n)
                for k in range(1, 20):
                    freq = k * midi_hz(pitch)
                    gain = sum(math.exp(-(((freq - f) / 150.0) ** 2)) for f in formants) + 0.05
                    voice += gain / k**0.5 * np.sin(2 * np.pi * k * phase)
                velocity = dynamics.velocity(t, rng)
                _add(out, t, velocity * voice * _envelope(n, 0.06, 0.15, 0.2))
                notes.append(Note(t, t + length, pitch, 0.7 * velocity))
        return Stem(
            "vocals", ["vocals", "singing", "melody"], True, notes, _normalise(out, 0.7, rng, style)
        )
    wave = str(rng.choice(["square", "saw", "sine"]))
    # Sixteenths in simple metre, eighths (in threes) in compound metre.
    step = quarter / 2 if song.meter.denominator == 8 else quarter / 4
    for chord in song.chords:
        tones = [*sorted(chord.pitches), chord.pitches[0] + 12]
        for i, t in enumerate(np.arange(chord.start, chord.end - 1e-6, step)):
            pitch = tones[i % len(tones)] + 12
            n = int(step * 0.9 * SAMPLE_RATE)
            tone = _oscillator(wave, midi_hz(pitch), n) * _envelope(n, 0.002, 0.02, 6)
            velocity = dynamics.velocity(float(t), rng)
            _add(out, float(t), velocity * tone)
            notes.append(Note(float(t), float(t) + step * 0.9, pitch, 0.6 * velocity))
    return Stem(
        "lead", ["lead", "arpeggio", "synth", wave], False, notes, _normalise(out, 0.6, rng, style)
    )
