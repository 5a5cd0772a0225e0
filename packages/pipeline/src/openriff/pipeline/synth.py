"""The synthetic multitrack generator: OpenRiff's embedded data set.

Procedural songs with a key, a tempo, a chord progression and up to six stems rendered
at 48 kHz: drums, bass, keys (or a pad), a plucked guitar, a lead/arpeggio line and,
sometimes, a sung-like melody marked as vocals. Every song draws its own timbres
(waveforms, filters, envelopes, drum sounds), so a stem type is a family of sounds rather
than one preset. Everything comes from ``numpy.random.default_rng(seed)``: the same seed
gives the same song, sample for sample.

Each song is written in the generic layout (:mod:`openriff.pipeline.layout`): one folder,
one WAV per stem, and ``song.json`` with the key, tempo, chord timeline and, for every
stem, its instrument, tags, vocal flag and notes (start and end in seconds, MIDI pitch,
velocity). The bass plays chord roots, which the tests check from the metadata.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from openriff.latent_diffusion.files import writer_lock

SAMPLE_RATE = 48_000
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions as scale degrees (0 = tonic), one chord per bar.
PROGRESSIONS = (
    (0, 4, 5, 3),  # I V vi IV
    (0, 5, 3, 4),  # I vi IV V
    (5, 3, 0, 4),  # vi IV I V
    (0, 3, 4, 3),  # I IV V IV
    (1, 4, 0, 0),  # ii V I I
    (0, 6, 5, 4),  # i VII VI V (minor feel)
)


@dataclass(frozen=True)
class Note:
    """A note of a stem: times in seconds, MIDI pitch, velocity in (0, 1]."""

    start: float
    end: float
    pitch: int
    velocity: float


@dataclass(frozen=True)
class Chord:
    """A chord of the timeline: root pitch class, quality, and the MIDI notes voiced."""

    start: float
    end: float
    root: int
    quality: str
    pitches: tuple[int, ...]


@dataclass
class Stem:
    """One rendered stem and its metadata."""

    instrument: str
    tags: list[str]
    vocal: bool
    notes: list[Note] = field(default_factory=list)
    audio: NDArray[np.float32] | None = None


@dataclass
class SynthSong:
    """A generated song: metadata and stems."""

    seed: int
    key: int
    mode: str
    tempo: float
    bars: int
    chords: list[Chord]
    stems: dict[str, Stem]
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.bars * 4 * 60.0 / self.tempo

    def metadata(self) -> dict[str, Any]:
        """``song.json`` content."""
        return {
            "title": f"synthetic song {self.seed}",
            "generator": "openriff.pipeline.synth",
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "key": NOTE_NAMES[self.key],
            "mode": self.mode,
            "tempo": self.tempo,
            "bars": self.bars,
            "beats_per_bar": 4,
            "chords": [asdict(c) for c in self.chords],
            "stems": {
                f"{name}.wav": {
                    "instrument": stem.instrument,
                    "tags": stem.tags,
                    "vocal": stem.vocal,
                    "notes": [asdict(n) for n in stem.notes],
                }
                for name, stem in self.stems.items()
            },
        }


def midi_hz(pitch: float) -> float:
    """Frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


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


def _chords(rng: np.random.Generator, key: int, mode: str, bars: int, bar_s: float) -> list[Chord]:
    scale = MAJOR if mode == "major" else MINOR
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    chords = []
    for bar in range(bars):
        degree = progression[bar % len(progression)]
        tones = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        third = (tones[1] - tones[0]) % 12
        root = (key + tones[0]) % 12
        base = 48 + key  # voicing around C3-C4
        chords.append(
            Chord(
                start=bar * bar_s,
                end=(bar + 1) * bar_s,
                root=root,
                quality="maj" if third == 4 else "min",
                pitches=tuple(base + t for t in tones),
            )
        )
    return chords


def _drums(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
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


def _bass(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
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


def _keys(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
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


def _guitar(rng: np.random.Generator, song: SynthSong, beat_s: float, total: int) -> Stem:
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


def _lead(
    rng: np.random.Generator, song: SynthSong, beat_s: float, total: int, vocal: bool
) -> Stem:
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


def synth_song(seed: int, *, bars: int = 8, vocals: bool | None = None) -> SynthSong:
    """Generate one song (deterministic for ``seed``).

    Args:
        seed: the song's seed.
        bars: length in 4/4 bars.
        vocals: force a sung-like stem on or off (None: half of the songs have one).
    """
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    rng = np.random.default_rng(seed)
    key = int(rng.integers(12))
    mode = "major" if rng.random() < 0.6 else "minor"
    tempo = float(rng.integers(80, 141))
    beat_s = 60.0 / tempo
    song = SynthSong(seed, key, mode, tempo, bars, _chords(rng, key, mode, bars, 4 * beat_s), {})
    total = round(song.seconds * SAMPLE_RATE)
    with_vocals = bool(rng.random() < 0.5) if vocals is None else vocals
    song.stems["drums"] = _drums(rng, song, beat_s, total)
    song.stems["bass"] = _bass(rng, song, beat_s, total)
    song.stems["keys"] = _keys(rng, song, beat_s, total)
    song.stems["guitar"] = _guitar(rng, song, beat_s, total)
    song.stems["lead"] = _lead(rng, song, beat_s, total, vocal=False)
    if with_vocals:
        song.stems["vocals"] = _lead(rng, song, beat_s, total, vocal=True)
    return song


def write_song(song: SynthSong, folder: str | os.PathLike[str]) -> Path:
    """Write a song in the generic layout (WAVs + ``song.json``), atomically per song."""
    import soundfile as sf

    from openriff.latent_diffusion.files import atomic_directory

    target = Path(folder)
    if target.exists():
        raise FileExistsError(f"{target} exists")
    with atomic_directory(target, overwrite=False) as tmp:
        for name, stem in song.stems.items():
            assert stem.audio is not None
            sf.write(tmp / f"{name}.wav", stem.audio, song.sample_rate, subtype="PCM_16")
        (tmp / "song.json").write_text(json.dumps(song.metadata(), indent=1) + "\n")
    return target


def _write_one(job: tuple[int, int, Path]) -> None:
    seed, bars, folder = job
    write_song(synth_song(seed, bars=bars), folder)


def synth_dataset(
    out: str | os.PathLike[str], songs: int, *, seed: int = 0, bars: int = 8, workers: int = 1
) -> list[Path]:
    """Write ``songs`` songs as ``out/song_XXXX/`` (seeds ``seed``, ``seed + 1``, ...).

    Songs already present are kept (an interrupted run resumes where it stopped). Each song
    depends only on its seed, so ``workers`` processes give the same files as one.
    """
    if workers < 1 or songs < 1:
        raise ValueError(f"songs and workers must be >= 1, got {songs}, {workers}")
    root = Path(out)
    # One writer per data folder: a second run into it is refused, not interleaved.
    with writer_lock(root):
        return _synth_into(root, songs, seed, bars, workers)


def _synth_into(root: Path, songs: int, seed: int, bars: int, workers: int) -> list[Path]:
    folders = [root / f"song_{seed + i:04d}" for i in range(songs)]
    jobs = [
        (seed + i, bars, folder)
        for i, folder in enumerate(folders)
        if not (folder / "song.json").is_file()
    ]
    if workers == 1 or len(jobs) < 2:
        for job in jobs:
            _write_one(job)
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_write_one, jobs):
                pass
    return folders
