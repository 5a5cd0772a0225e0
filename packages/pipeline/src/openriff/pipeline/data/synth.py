"""The synthetic multitrack generator: OpenRiff's embedded data set.

Procedural songs with a key, a tempo, a chord progression and up to six stems rendered
at 48 kHz: drums, bass, keys (or a pad), a plucked guitar, a lead/arpeggio line and,
sometimes, a sung-like melody marked as vocals. Every song draws its own timbres
(waveforms, filters, envelopes, drum sounds), so a stem type is a family of sounds rather
than one preset. Everything comes from ``numpy.random.default_rng(seed)``: the same seed
gives the same song, sample for sample.

Each song is written in the generic layout (:mod:`openriff.pipeline.data.layout`): one folder,
one WAV per stem, and ``song.json`` with the key, tempo, chord timeline and, for every
stem, its instrument, tags, vocal flag and notes (start and end in seconds, MIDI pitch,
velocity). The bass plays chord roots, which the tests check from the metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from openriff.latent_diffusion.files import writer_lock
from openriff.pipeline.data import instruments
from openriff.pipeline.data.music import SAMPLE_RATE, SynthSong, chord_timeline, midi_hz

__all__ = ["SAMPLE_RATE", "SynthSong", "midi_hz", "synth_dataset", "synth_song", "write_song"]


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
    song = SynthSong(
        seed, key, mode, tempo, bars, chord_timeline(rng, key, mode, bars, 4 * beat_s), {}
    )
    total = round(song.seconds * SAMPLE_RATE)
    with_vocals = bool(rng.random() < 0.5) if vocals is None else vocals
    song.stems["drums"] = instruments.drums(rng, song, beat_s, total)
    song.stems["bass"] = instruments.bass(rng, song, beat_s, total)
    song.stems["keys"] = instruments.keys(rng, song, beat_s, total)
    song.stems["guitar"] = instruments.guitar(rng, song, beat_s, total)
    song.stems["lead"] = instruments.lead(rng, song, beat_s, total, vocal=False)
    if with_vocals:
        song.stems["vocals"] = instruments.lead(rng, song, beat_s, total, vocal=True)
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
