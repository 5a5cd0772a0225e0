"""The synthetic songs' bass lines: rhythmic figures on each chord, passing notes, rests.

:func:`bass_notes` writes the notes; :func:`.instruments.bass` renders them.
"""

from __future__ import annotations

import math

import numpy as np

from openriff.pipeline.data.music import MODES, Chord, Dynamics, Note, SynthSong, SynthStyle

# The bass's rhythmic figures: (onset, length, tone) per bar in quarter notes, by metre.
# Tones: "bass" (the chord's bass note), "fifth" (the chord tone nearest a fifth above it),
# "octave" (the bass note an octave up).
Figure = tuple[tuple[float, float, str], ...]
FIGURES: dict[str, dict[str, Figure]] = {
    "pulse": {
        "4/4": tuple((b, 0.9, "bass") for b in (0.0, 1.0, 2.0, 3.0)),
        "3/4": tuple((b, 0.9, "bass") for b in (0.0, 1.0, 2.0)),
        "6/8": ((0.0, 1.35, "bass"), (1.5, 1.35, "bass")),
    },
    "eighths": {
        "4/4": tuple((i / 2, 0.45, "bass") for i in range(8)),
        "3/4": tuple((i / 2, 0.45, "bass") for i in range(6)),
        "6/8": tuple((i / 2, 0.45, "bass") for i in range(6)),
    },
    "root-fifth": {
        "4/4": ((0.0, 0.9, "bass"), (1.0, 0.9, "fifth"), (2.0, 0.9, "bass"), (3.0, 0.9, "fifth")),
        "3/4": ((0.0, 0.9, "bass"), (1.0, 0.9, "fifth"), (2.0, 0.9, "fifth")),
        "6/8": ((0.0, 1.35, "bass"), (1.5, 1.35, "fifth")),
    },
    "octaves": {
        "4/4": tuple((i / 2, 0.45, "octave" if i % 2 else "bass") for i in range(8)),
        "3/4": tuple((i / 2, 0.45, "octave" if i % 2 else "bass") for i in range(6)),
        "6/8": tuple((i / 2, 0.45, "octave" if i % 3 == 2 else "bass") for i in range(6)),
    },
    "held": {
        "4/4": ((0.0, 3.8, "bass"),),
        "3/4": ((0.0, 2.85, "bass"),),
        "6/8": ((0.0, 2.85, "bass"),),
    },
    "syncopated": {
        "4/4": ((0.0, 1.4, "bass"), (1.5, 0.9, "bass"), (2.5, 0.45, "fifth"), (3.0, 0.9, "bass")),
        "3/4": ((0.0, 1.4, "bass"), (1.5, 1.4, "fifth")),
        "6/8": (
            (0.0, 0.9, "bass"),
            (1.0, 0.45, "fifth"),
            (1.5, 0.9, "bass"),
            (2.5, 0.45, "octave"),
        ),
    },
}


def _upper_tone(chord: Chord) -> int:
    """Semitones above the chord's bass note of the chord tone nearest a fifth."""
    above = [(p - chord.pitches[chord.inversion]) % 12 for p in chord.pitches]
    return min((a for a in above if a), key=lambda a: abs(a - 7))


def bass_notes(
    rng: np.random.Generator,
    song: SynthSong,
    style: SynthStyle,
    dynamics: Dynamics,
    low: int,
    figure: str,
) -> list[Note]:
    """The bass line: the figure on each chord's bass note, passing notes, rests.

    Every chord starts with its bass note (within the octave above ``low``); a chord change
    is approached by a scale step with probability ``style.passing``; other notes are left
    out with probability ``style.rest``.
    """
    quarter = 60.0 / song.tempo  # seconds
    scale = {(song.key + i) % 12 for i in MODES[song.mode]}
    pattern = FIGURES[figure][str(song.meter)]

    def pitch_of(chord: Chord, tone: str) -> int:
        bass = low + (chord.bass - low) % 12
        return bass + {"bass": 0, "octave": 12, "fifth": _upper_tone(chord)}[tone]

    notes: list[Note] = []
    for i, chord in enumerate(song.chords):
        events: list[tuple[float, float, int]] = []  # (start, end, pitch) within the chord
        bars = range(
            int(chord.start / song.bar_seconds + 1e-9),
            math.ceil(chord.end / song.bar_seconds - 1e-9),
        )
        for bar in bars:
            for onset, length, tone in pattern:
                t = bar * song.bar_seconds + onset * quarter
                if chord.start - 1e-9 <= t < chord.end - 1e-9:
                    events.append((t, min(t + length * quarter, chord.end), pitch_of(chord, tone)))
        if not events or events[0][0] > chord.start + 1e-9:
            # A chord change between the figure's onsets (two chords per bar) starts a note.
            end = events[0][0] if events else chord.end
            events.insert(0, (chord.start, chord.start + 0.95 * (end - chord.start),
                              pitch_of(chord, "bass")))  # fmt: skip
        following = song.chords[i + 1] if i + 1 < len(song.chords) else None
        if following is not None and rng.random() < style.passing:
            events = _approach(events, chord.end, pitch_of(following, "bass"), scale, quarter / 2)
        first, *rest = events
        kept = [first, *(e for e in rest if rng.random() >= style.rest)]
        notes += [Note(s, e, p, dynamics.velocity(s, rng)) for s, e, p in kept]
    return notes


def _approach(
    events: list[tuple[float, float, int]],
    change: float,
    target: int,
    scale: set[int],
    length: float,
) -> list[tuple[float, float, int]]:
    """``events`` ending in a scale step towards ``target``, ``length`` seconds early.

    The step sounds ``length`` seconds before the ``change``; notes in its way are
    shortened or dropped; the chord's first note stays.
    """
    at = change - length
    kept = []
    for s, e, p in events:
        if s >= at - 1e-9:
            continue
        kept.append((s, min(e, at - 0.05 * length), p))
    if not kept or kept[0][1] - kept[0][0] < length / 2:
        return events

    def neighbour(step: int) -> int:
        pitch = target + step
        while pitch % 12 not in scale:
            pitch += step
        return pitch

    # From the side the line comes from, unless that only repeats the note before.
    pitch = neighbour(-1 if kept[-1][2] < target else 1)
    if pitch == kept[-1][2]:
        pitch = neighbour(1 if pitch < target else -1)
    return [*kept, (at, at + 0.9 * length, pitch)]
