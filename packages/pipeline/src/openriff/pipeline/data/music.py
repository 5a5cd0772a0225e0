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
# The seven diatonic modes, as semitones above the tonic.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
MAJOR = MODES["major"]
MINOR = MODES["minor"]
# Progressions as scale degrees (0 = tonic), one chord per harmonic step.
PROGRESSIONS = (
    (0, 4, 5, 3),  # I V vi IV
    (0, 5, 3, 4),  # I vi IV V
    (5, 3, 0, 4),  # vi IV I V
    (0, 3, 4, 3),  # I IV V IV
    (1, 4, 0, 0),  # ii V I I
    (0, 6, 5, 4),  # i VII VI V (minor feel)
    (0, 1, 0, 6),  # i ii i VII (dorian, phrygian vamps)
    (0, 3, 1, 4),  # I IV ii V
    (0, 2, 5, 1, 4, 0),  # I iii vi ii V I
)
# Triad qualities by (third, fifth) above the root.
QUALITIES = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}


@dataclass(frozen=True)
class Meter:
    """A time signature. Tempi count quarter notes, as MIDI files do.

    Attributes:
        numerator: notes per bar.
        denominator: their value (4: quarters, 8: eighths).
    """

    numerator: int
    denominator: int

    @property
    def quarters(self) -> float:
        """Bar length in quarter notes."""
        return self.numerator * 4 / self.denominator

    @property
    def beat_quarters(self) -> float:
        """Length of the felt beat in quarter notes (a dotted quarter in compound metre)."""
        compound = self.denominator == 8 and self.numerator % 3 == 0
        return 1.5 if compound else 4 / self.denominator

    @property
    def beats(self) -> int:
        """Felt beats per bar."""
        return round(self.quarters / self.beat_quarters)

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


METERS = {str(m): m for m in (Meter(4, 4), Meter(3, 4), Meter(6, 8))}


@dataclass(frozen=True)
class Note:
    """A note of a stem: times in seconds, MIDI pitch, velocity in (0, 1]."""

    start: float
    end: float
    pitch: int
    velocity: float


@dataclass(frozen=True)
class Chord:
    """A chord of the timeline.

    Its root pitch class, quality, the MIDI notes voiced (root position) and the chord tone
    in the bass (0 root, 1 third, 2 fifth).
    """

    start: float
    end: float
    root: int
    quality: str
    pitches: tuple[int, ...]
    inversion: int = 0

    @property
    def bass(self) -> int:
        """Pitch class of the bass note."""
        return self.pitches[self.inversion] % 12


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
    meter: Meter = METERS["4/4"]
    style: str = "wide"

    @property
    def bar_seconds(self) -> float:
        """Length of a bar in seconds (``tempo`` counts quarter notes)."""
        return self.meter.quarters * 60.0 / self.tempo

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.bars * self.bar_seconds

    def metadata(self) -> dict[str, Any]:
        """``song.json`` content."""
        return {
            "title": f"synthetic song {self.seed}",
            "generator": "openriff.pipeline.data.synth",
            "style": self.style,
            "seed": self.seed,
            "sample_rate": self.sample_rate,
            "key": NOTE_NAMES[self.key],
            "mode": self.mode,
            "tempo": self.tempo,
            "bars": self.bars,
            # Quarter notes per bar: a bar lasts beats_per_bar * 60 / tempo seconds.
            "beats_per_bar": _number(self.meter.quarters),
            "time_signature": str(self.meter),
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


@dataclass(frozen=True)
class SynthStyle:
    """What the generator draws songs from (:data:`STYLES` names them).

    Attributes:
        tempo: lowest and highest tempo, quarter notes per minute.
        meters: (time signature of :data:`METERS`, weight) pairs.
        modes: (mode of :data:`MODES`, weight) pairs.
        two_chords: chance of two chords per bar in 4/4.
        random_walk: chance of a progression that wanders the scale (else a looped one).
        inversion: share of chords with their third or fifth in the bass.
        passing: share of chord changes the bass approaches by a scale step.
        rest: share of the bass's notes (other than a chord's first) left out.
        no_drums: share of songs without drums.
        drum_break: share of two-bar sections in which the drums rest.
        dynamics_db: range of the sections' loudness (one level per two bars).
        level_db: range of each stem's peak level relative to its instrument's usual one.
        bass_low: range of the bass's lowest note (MIDI); it plays within an octave of it.
        bass_figures: the bass's rhythmic figures to draw from (see ``bassline.FIGURES``).
    """

    tempo: tuple[int, int] = (60, 200)
    meters: tuple[tuple[str, float], ...] = (("4/4", 0.6), ("3/4", 0.2), ("6/8", 0.2))
    modes: tuple[tuple[str, float], ...] = (
        ("major", 0.3), ("minor", 0.3), ("dorian", 0.1), ("mixolydian", 0.1),
        ("phrygian", 0.07), ("lydian", 0.07), ("locrian", 0.06),
    )  # fmt: skip
    two_chords: float = 0.2
    random_walk: float = 0.25
    inversion: float = 0.2
    passing: float = 0.3
    rest: float = 0.1
    no_drums: float = 0.15
    drum_break: float = 0.15
    dynamics_db: float = 9.0
    level_db: tuple[float, float] = (-12.0, 0.0)
    bass_low: tuple[int, int] = (28, 36)
    bass_figures: tuple[str, ...] = (
        "pulse", "eighths", "root-fifth", "octaves", "held", "syncopated",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if not 20 <= self.tempo[0] <= self.tempo[1] <= 400:
            raise ValueError(f"tempo range must lie in [20, 400] bpm, got {self.tempo}")
        for name, table, known in (("meters", self.meters, METERS), ("modes", self.modes, MODES)):
            unknown = [k for k, _ in table if k not in known]
            if unknown or not table or any(w < 0 for _, w in table) or not sum(w for _, w in table):
                raise ValueError(f"{name} must weigh known names ({', '.join(known)}): {table}")
        shares = ("two_chords", "random_walk", "inversion", "passing", "rest", "no_drums",
                  "drum_break")  # fmt: skip
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share in [0, 1], got {getattr(self, name)}")
        if not 24 <= self.bass_low[0] <= self.bass_low[1] <= 48 or not self.bass_figures:
            raise ValueError("bass_low must be a range in [24, 48] and bass_figures not empty")
        if self.dynamics_db < 0 or self.level_db[0] > self.level_db[1] or self.level_db[1] > 0:
            raise ValueError("dynamics_db must be >= 0 and level_db a range at or below 0 dB")


STYLES: dict[str, SynthStyle] = {
    # Tempi 60-200, three metres, seven modes, inversions, passing notes, rests, songs and
    # sections without drums, dynamics and stems at different levels.
    "wide": SynthStyle(),
    # The generator's first world (the default model up to 0.4 learned from it): 4/4 at
    # 80-140 bpm, major or minor, a looped progression, the bass on the roots, always
    # drums, every stem at its usual level.
    "classic": SynthStyle(
        tempo=(80, 140),
        meters=(("4/4", 1.0),),
        modes=(("major", 0.6), ("minor", 0.4)),
        two_chords=0.0,
        random_walk=0.0,
        inversion=0.0,
        passing=0.0,
        rest=0.0,
        no_drums=0.0,
        drum_break=0.0,
        dynamics_db=0.0,
        level_db=(0.0, 0.0),
        bass_low=(36, 36),
        bass_figures=("pulse", "eighths"),
    ),
}


class Dynamics:
    """A song's loudness: one level per two-bar section, and accents on the beats."""

    def __init__(self, rng: np.random.Generator, song: SynthSong, range_db: float) -> None:
        sections = (song.bars + 1) // 2
        self.levels = 10 ** (-rng.uniform(0.0, range_db, sections) / 20)
        self.section_s = 2 * song.bar_seconds
        self.bar_s = song.bar_seconds
        self.beat_s = song.meter.beat_quarters * 60.0 / song.tempo

    def velocity(self, t: float, rng: np.random.Generator) -> float:
        """Velocity in (0, 1] of a note at ``t`` seconds: section level x accent x jitter."""
        level = self.levels[min(len(self.levels) - 1, int(t / self.section_s + 1e-9))]
        phase = t % self.bar_s
        on_beat = min(phase % self.beat_s, self.beat_s - phase % self.beat_s) < 1e-3
        accent = 1.0 if phase < 1e-3 or self.bar_s - phase < 1e-3 else 0.9 if on_beat else 0.8
        return float(level * accent * rng.uniform(0.85, 1.0))


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def midi_hz(pitch: float) -> float:
    """Frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


def chord_timeline(
    rng: np.random.Generator,
    key: int,
    mode: str,
    bars: int,
    bar_s: float,
    *,
    per_bar: int = 1,
    inversion: float = 0.0,
    random_walk: float = 0.0,
) -> list[Chord]:
    """A progression of diatonic triads of ``key`` and ``mode`` drawn with ``rng``.

    Args:
        rng: the song's random generator.
        key: tonic pitch class.
        mode: a name of :data:`MODES`.
        bars: bars of the song.
        bar_s: seconds per bar.
        per_bar: chords per bar.
        inversion: share of chords with their third or fifth in the bass.
        random_walk: chance that the song wanders the scale's degrees instead of looping
            one of :data:`PROGRESSIONS`.
    """
    scale = MODES[mode]
    if rng.random() < random_walk:
        degrees = [0]
        for _ in range(bars * per_bar - 1):
            degrees.append(int((degrees[-1] + rng.choice([1, 2, 3, 4, 5, 6])) % 7))
        progression: tuple[int, ...] = tuple(degrees)
    else:
        progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    step_s = bar_s / per_bar
    chords = []
    for i in range(bars * per_bar):
        degree = progression[i % len(progression)]
        tones = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        shape = ((tones[1] - tones[0]) % 12, (tones[2] - tones[0]) % 12)
        inverted = int(rng.integers(1, 3)) if rng.random() < inversion else 0
        base = 48 + key  # voicing around C3-C4
        chords.append(
            Chord(
                start=i * step_s,
                end=(i + 1) * step_s,
                root=(key + tones[0]) % 12,
                quality=QUALITIES[shape],
                pitches=tuple(base + t for t in tones),
                inversion=inverted,
            )
        )
    return chords
