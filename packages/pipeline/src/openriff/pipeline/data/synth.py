"""The synthetic multitrack generator: OpenRiff's embedded data set.

Procedural songs with a key and mode, a tempo, a metre, a chord progression and up to six
stems rendered at 48 kHz: drums, bass, keys (or a pad), a plucked guitar, a lead/arpeggio
line and, sometimes, a sung-like melody marked as vocals. Every song draws its own timbres
(waveforms, filters, envelopes, drum sounds), so a stem type is a family of sounds rather
than one preset. A style (:data:`~openriff.pipeline.data.music.STYLES`) sets the ranges
drawn from: ``wide`` (the default) has tempi of 60-200 bpm, 4/4, 3/4 and 6/8, the seven
modes, inversions, passing notes and rests in the bass, songs and sections without drums,
dynamics and stems at different levels; ``classic`` is the narrow first world (4/4 at
80-140 bpm, major or minor, the bass on the chord roots). Everything comes from
``numpy.random.default_rng(seed)``: the same seed and style give the same song, sample for
sample.

Each song is written in the generic layout (:mod:`openriff.pipeline.data.layout`): one folder,
one WAV per stem, and ``song.json`` with the key, tempo, chord timeline and, for every
stem, its instrument, tags, vocal flag and notes (start and end in seconds, MIDI pitch,
velocity). Each chord records the chord tone its bass note is (``inversion``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from openriff.latent_diffusion.files import writer_lock
from openriff.pipeline.data import instruments
from openriff.pipeline.data.music import (
    METERS,
    SAMPLE_RATE,
    STYLES,
    Dynamics,
    SynthSong,
    chord_timeline,
    midi_hz,
)

__all__ = ["SAMPLE_RATE", "SynthSong", "midi_hz", "synth_dataset", "synth_song", "write_song"]


def _pick(rng: np.random.Generator, table: tuple[tuple[str, float], ...]) -> str:
    weights = np.array([w for _, w in table], dtype=np.float64)
    return table[int(rng.choice(len(table), p=weights / weights.sum()))][0]


def synth_song(
    seed: int, *, bars: int = 8, vocals: bool | None = None, style: str = "wide"
) -> SynthSong:
    """Generate one song (deterministic for ``seed`` and ``style``).

    Args:
        seed: the song's seed.
        bars: length in bars.
        vocals: force a sung-like stem on or off (None: half of the songs have one).
        style: a name of :data:`~openriff.pipeline.data.music.STYLES`.
    """
    if bars < 1:
        raise ValueError(f"bars must be >= 1, got {bars}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    look = STYLES[style]
    rng = np.random.default_rng(seed)
    key = int(rng.integers(12))
    mode = _pick(rng, look.modes)
    tempo = float(rng.integers(look.tempo[0], look.tempo[1] + 1))
    meter = METERS[_pick(rng, look.meters)]
    per_bar = 2 if str(meter) == "4/4" and rng.random() < look.two_chords else 1
    song = SynthSong(seed, key, mode, tempo, bars, [], {}, meter=meter, style=style)
    song.chords = chord_timeline(
        rng, key, mode, bars, song.bar_seconds, per_bar=per_bar, inversion=look.inversion,
        random_walk=look.random_walk,
    )  # fmt: skip
    total = round(song.seconds * SAMPLE_RATE)
    with_vocals = bool(rng.random() < 0.5) if vocals is None else vocals
    dynamics = Dynamics(rng, song, look.dynamics_db)
    if rng.random() >= look.no_drums:
        # Drums rest in some two-bar sections, never in all of them.
        playing = [bool(rng.random() >= look.drum_break) for _ in dynamics.levels]
        playing[int(rng.integers(len(playing)))] = True
        song.stems["drums"] = instruments.drums(rng, song, look, dynamics, playing, total)
    song.stems["bass"] = instruments.bass(rng, song, look, dynamics, total)
    song.stems["keys"] = instruments.keys(rng, song, look, dynamics, total)
    song.stems["guitar"] = instruments.guitar(rng, song, look, dynamics, total)
    song.stems["lead"] = instruments.lead(rng, song, look, dynamics, total, vocal=False)
    if with_vocals:
        song.stems["vocals"] = instruments.lead(rng, song, look, dynamics, total, vocal=True)
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


def _write_one(job: tuple[int, int, str, Path]) -> None:
    seed, bars, style, folder = job
    write_song(synth_song(seed, bars=bars, style=style), folder)


def synth_dataset(
    out: str | os.PathLike[str],
    songs: int,
    *,
    seed: int = 0,
    bars: int = 8,
    workers: int = 1,
    style: str = "wide",
) -> list[Path]:
    """Write ``songs`` songs as ``out/song_XXXX/`` (seeds ``seed``, ``seed + 1``, ...).

    Songs already present are kept (an interrupted run resumes where it stopped). Each song
    depends only on its seed and ``style``, so ``workers`` processes give the same files as
    one.
    """
    if workers < 1 or songs < 1 or bars < 1:
        raise ValueError(f"songs, workers and bars must be >= 1, got {songs}, {workers}, {bars}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    root = Path(out)
    # One writer per data folder: a second run into it is refused, not interleaved.
    with writer_lock(root):
        return _synth_into(root, songs, seed, bars, workers, style)


def _synth_into(
    root: Path, songs: int, seed: int, bars: int, workers: int, style: str
) -> list[Path]:
    from openriff.latent_diffusion.files import remove_temporaries

    remove_temporaries(root, "song_")  # songs a killed run left half-written
    folders = [root / f"song_{seed + i:04d}" for i in range(songs)]
    jobs = [
        (seed + i, bars, style, folder)
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
