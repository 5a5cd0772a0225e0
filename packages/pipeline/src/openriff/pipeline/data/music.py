"""The music of the synthetic songs: keys, scales, progressions, notes, chords, stems.

Everything an instrument renderer (:mod:`.instruments`) or a reader of ``song.json`` needs
to know about a song, and :func:`chord_timeline`, which draws a song's progression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
            "generator": "openriff.pipeline.data.synth",
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


def chord_timeline(
    rng: np.random.Generator, key: int, mode: str, bars: int, bar_s: float
) -> list[Chord]:
    """One chord per bar of a progression drawn with ``rng``, voiced in ``key``."""
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
