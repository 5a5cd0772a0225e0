"""Multitrack data sets on disk: the generic layout and readers for public layouts.

Every reader returns :class:`Song` records (a name and its stem files with instrument,
tags and a vocal flag) plus a :class:`ScanReport` of what was skipped and why; nothing is
read from audio until :func:`load_stems`. Layouts:

* ``generic``: one folder per song, one audio file per stem, optional ``song.json``::

      {"stems": {"bass.wav": {"instrument": "bass", "tags": ["warm"], "vocal": false}}}

  Without it, the instrument is the file name and a stem is vocal when its name says so.
* ``slakh``: Slakh2100 (``metadata.yaml``, ``stems/Sxx.flac``, ``inst_class``; stems
  marked ``audio_rendered: false`` are skipped; so is ``omitted/``, which its authors
  left out of every split).
* ``musdb``: MUSDB18-HQ (``bass``, ``drums``, ``other``, ``vocals`` ``.wav``; the
  mixture is not a stem).
* ``moisesdb``: MoisesDB (``data.json``; a stem is the sum of the tracks of its folder).
  Songs are keyed by their folder (MoisesDB's unique id), never by title: titles repeat.

:func:`read_songs` reads a layout and keeps one official split (:data:`SPLITS`):
Slakh2100's ``train/``, ``validation/`` and ``test/`` folders, MUSDB18-HQ's ``test/``
folder and its ``train/`` folder less the 14 validation songs its tools name
(:data:`MUSDB_VALIDATION`). The generic layout and MoisesDB have no official splits and
are used whole; so is a Slakh2100 or MUSDB18-HQ tree without split folders (the report
says so).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 48_000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
VOCAL_WORDS = ("vocal", "voice", "vox", "sing", "choir")
SPLITS = ("train", "validation", "test")
SPLIT_LAYOUTS = ("slakh", "musdb")  # the layouts with official splits
# MUSDB18-HQ's official validation songs, taken from its train folder (the musdb package's
# setup; SiSEC 2018 and the Cadenza challenges use the same 14).
MUSDB_VALIDATION = frozenset({
    "Actions - One Minute Smile", "Alexander Ross - Goodbye Bolero", "ANiMAL - Rockshow",
    "Clara Berry And Wooldog - Waltz For My Victims", "Fergessen - Nos Palpitants",
    "James May - On The Line", "Johnny Lokke - Promises & Lies", "Leaf - Summerghost",
    "Meaxic - Take A Step", "Patrick Talbot - A Reason To Leave",
    "Skelpolu - Human Mistakes", "Traffic Experiment - Sirens", "Triviul - Angelsaint",
    "Young Griffo - Pennies",
})  # fmt: skip


@dataclass(frozen=True)
class StemFile:
    """One stem of a song: its file(s) (summed when several) and labels."""

    name: str
    paths: tuple[Path, ...]
    instrument: str
    tags: tuple[str, ...] = ()
    vocal: bool = False


@dataclass(frozen=True)
class Song:
    """A multitrack song: a name (unique in its data set), its stems and official split.

    ``split`` is one of :data:`SPLITS`, or None where the data set's tree does not say.
    """

    name: str
    folder: Path
    stems: tuple[StemFile, ...]
    split: str | None = None


@dataclass
class ScanReport:
    """What a reader used and what it skipped, with reasons (one line each)."""

    songs: int = 0
    stems: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short human-readable account."""
        lines = [f"{self.songs} songs with {self.stems} stems used; {len(self.skipped)} skipped"]
        lines += [f"  skipped: {line}" for line in self.skipped]
        return "\n".join(lines)


def _is_vocal(*words: str) -> bool:
    text = " ".join(words).lower()
    return any(w in text for w in VOCAL_WORDS)


def _folder_split(folder: Path, base: Path) -> str | None:
    """The split folder (``train``, ``validation``, ``test``, ``omitted``) a song is in."""
    names = [*folder.relative_to(base).parts, base.name]
    return next((n for n in names if n in (*SPLITS, "omitted")), None)


def _finish(songs: list[Song], report: ScanReport, root: Path) -> tuple[list[Song], ScanReport]:
    names: dict[str, Path] = {}
    for song in songs:
        if song.name in names:  # shards and splits are keyed by name: never merge two songs
            raise ValueError(
                f"{root}: two songs are named {song.name!r} ({names[song.name]} and "
                f"{song.folder}); song names must be unique"
            )
        names[song.name] = song.folder
    kept = []
    for song in songs:
        if len(song.stems) < 2:
            report.skipped.append(f"{song.folder}: {len(song.stems)} usable stem(s), need 2")
            continue
        kept.append(song)
    report.songs = len(kept)
    report.stems = sum(len(s.stems) for s in kept)
    if not kept:
        raise ValueError(f"{root}: no usable songs\n{report.summary()}")
    return kept, report


def read_generic(root: str | os.PathLike[str]) -> tuple[list[Song], ScanReport]:
    """Songs of the generic layout under ``root`` (one sub-folder per song)."""
    base = _root(root)
    songs, report = [], ScanReport()
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        meta: dict[str, dict[str, Any]] = {}
        if (folder / "song.json").is_file():
            try:
                meta = _generic_stems(folder / "song.json")
            except ValueError as error:  # one bad song is reported, the others kept
                report.skipped.append(f"{folder / 'song.json'}: unusable ({error}); song skipped")
                continue
        stems = []
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            info = meta.get(path.name, {})
            instrument = str(info.get("instrument", path.stem))
            vocal = bool(info.get("vocal", _is_vocal(path.stem, instrument)))
            tags = tuple(str(t) for t in info.get("tags", [instrument]))
            stems.append(StemFile(path.stem, (path,), instrument, tags, vocal))
        for name in meta:
            if not (folder / name).is_file():
                report.skipped.append(f"{folder / name}: listed in song.json but missing")
        songs.append(Song(folder.name, folder, tuple(stems)))
    return _finish(songs, report, base)


def _generic_stems(path: Path) -> dict[str, dict[str, Any]]:
    """The ``stems`` entries of a generic ``song.json``; ``ValueError`` says what is wrong."""
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    stems = data.get("stems", {})
    if not isinstance(stems, dict):
        raise ValueError(f"'stems' must map file names to stem objects, got {stems!r}")
    for name, info in stems.items():
        if not isinstance(info, dict):
            raise ValueError(f"stems[{name!r}] must be an object, got {info!r}")
        if not isinstance(info.get("instrument", ""), str):
            raise ValueError(f"stems[{name!r}].instrument must be a string")
        tags = info.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f"stems[{name!r}].tags must be a list of strings, got {tags!r}")
        if not isinstance(info.get("vocal", False), bool):
            raise ValueError(f"stems[{name!r}].vocal must be true or false")
    return stems


def read_musdb(root: str | os.PathLike[str]) -> tuple[list[Song], ScanReport]:
    """Songs of MUSDB18-HQ under ``root`` (``train/`` and ``test/`` or song folders)."""
    base = _root(root)
    folders = sorted({p.parent for p in base.rglob("mixture.wav")})
    songs, report = [], ScanReport()
    for folder in folders:
        stems = []
        for name in ("bass", "drums", "other", "vocals"):
            path = folder / f"{name}.wav"
            if not path.is_file():
                report.skipped.append(f"{path}: missing")
                continue
            stems.append(StemFile(name, (path,), name, (name,), name == "vocals"))
        split = _folder_split(folder, base)
        if split == "train" and folder.name in MUSDB_VALIDATION:
            split = "validation"
        songs.append(Song(str(folder.relative_to(base)), folder, tuple(stems), split))
    return _finish(songs, report, base)


def read_slakh(root: str | os.PathLike[str]) -> tuple[list[Song], ScanReport]:
    """Songs of Slakh2100 under ``root`` (``TrackXXXXX/metadata.yaml`` + ``stems/``)."""
    import yaml

    base = _root(root)
    songs, report = [], ScanReport()
    omitted = 0
    for meta_path in sorted(base.rglob("metadata.yaml")):
        folder = meta_path.parent
        split = _folder_split(folder, base)
        if split == "omitted":
            omitted += 1
            continue
        try:
            meta = yaml.safe_load(meta_path.read_text())
            entries = meta["stems"]
        except (yaml.YAMLError, KeyError, TypeError) as error:
            report.skipped.append(f"{meta_path}: unreadable ({error})")
            continue
        stems = []
        for stem_id, info in sorted(entries.items()):
            if not info.get("audio_rendered", True):
                report.skipped.append(f"{folder.name}/{stem_id}: not rendered")
                continue
            path = next(
                (folder / "stems" / f"{stem_id}{s}" for s in (".flac", ".wav")
                 if (folder / "stems" / f"{stem_id}{s}").is_file()),
                None,
            )  # fmt: skip
            if path is None:
                report.skipped.append(f"{folder / 'stems' / stem_id}: missing")
                continue
            instrument = str(info.get("inst_class", "unknown")).lower()
            tags = tuple(t for t in (instrument, str(info.get("midi_program_name", ""))) if t)
            stems.append(StemFile(stem_id, (path,), instrument, tags, _is_vocal(instrument)))
        songs.append(Song(folder.name, folder, tuple(stems), split))  # TrackXXXXX: unique
    if omitted:
        report.skipped.append(f"{omitted} songs in omitted/: left out of every official split")
    return _finish(songs, report, base)


def read_moisesdb(root: str | os.PathLike[str]) -> tuple[list[Song], ScanReport]:
    """Songs of MoisesDB under ``root`` (``<id>/data.json`` + ``<id>/<stem>/<track>.wav``)."""
    base = _root(root)
    songs, report = [], ScanReport()
    for meta_path in sorted(base.rglob("data.json")):
        folder = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text())
            entries = meta["stems"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            report.skipped.append(f"{meta_path}: unreadable ({error})")
            continue
        stems = []
        for entry in entries:
            name = str(entry.get("stemName", "unknown")).lower()
            paths = tuple(
                folder / name / f"{t['id']}.{str(t.get('extension', 'wav')).lstrip('.')}"
                for t in entry.get("tracks", [])
            )
            present = tuple(p for p in paths if p.is_file())
            for p in paths:
                if not p.is_file():
                    report.skipped.append(f"{p}: missing")
            if not present:
                continue
            tags = tuple(
                sorted(
                    {name, *(str(t.get("trackType", "")).lower() for t in entry["tracks"])} - {""}
                )
            )
            stems.append(StemFile(name, present, name, tags, _is_vocal(name)))
        # The folder is the song's unique id; titles repeat (two songs, one title).
        songs.append(Song(str(folder.relative_to(base)), folder, tuple(stems)))
    return _finish(songs, report, base)


READERS: dict[str, Callable[[str | os.PathLike[str]], tuple[list[Song], ScanReport]]] = {
    "generic": read_generic,
    "slakh": read_slakh,
    "musdb": read_musdb,
    "moisesdb": read_moisesdb,
}


def check_layout(layout: str, split: str | None) -> None:
    """Refuse an unknown layout or split (before any file is read)."""
    if layout not in READERS:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(READERS)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {list(SPLITS)} (or all)")


def read_songs(
    layout: str, root: str | os.PathLike[str], split: str | None = None
) -> tuple[list[Song], ScanReport]:
    """The songs of one official split of a data set (see the module).

    Args:
        layout: a key of :data:`READERS`.
        root: the data set's folder.
        split: one of :data:`SPLITS`, or None for every split (``omitted/`` never);
            ignored by layouts without official splits.

    Raises:
        ValueError: an unknown layout or split, or no song of the split.
    """
    check_layout(layout, split)
    songs, report = READERS[layout](root)
    if split is None or layout not in SPLIT_LAYOUTS:
        return songs, report
    if all(song.split is None for song in songs):
        report.skipped.append(f"{root}: no official split folders; every song used as {split}")
        return songs, report
    kept = [song for song in songs if song.split == split]
    if not kept:
        raise ValueError(f"{root}: no song of the {split!r} split\n{report.summary()}")
    others = len(songs) - len(kept)
    report.skipped.append(f"{others} songs of other splits (or of none) left out: {split} only")
    report.songs, report.stems = len(kept), sum(len(s.stems) for s in kept)
    return kept, report


def _root(root: str | os.PathLike[str]) -> Path:
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"data set root {base} is not a folder")
    return base


def load_stems(
    song: Song, report: ScanReport | None = None, *, sample_rate: int = SAMPLE_RATE
) -> dict[str, NDArray[np.float32]]:
    """A song's stems as mono float32 ``[S]`` at ``sample_rate``.

    Stems are aligned at the start and zero-padded at the end to the longest one.

    Unreadable, empty or non-finite stems are skipped and recorded in ``report`` (never
    replaced by silence).
    """
    import soundfile as sf
    import soxr

    waves: dict[str, NDArray[np.float32]] = {}
    for stem in song.stems:
        parts: list[NDArray[np.float32]] = []
        for path in stem.paths:
            try:
                data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, TypeError) as error:
                if report is not None:
                    report.skipped.append(f"{path}: unreadable ({error})")
                parts = []
                break
            mono = data.mean(axis=1)
            if mono.size == 0 or not np.isfinite(mono).all():
                if report is not None:
                    report.skipped.append(f"{path}: empty or not finite")
                parts = []
                break
            if rate != sample_rate:
                mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
            parts.append(np.asarray(mono, dtype=np.float32))
        if not parts:
            continue
        length = max(p.shape[0] for p in parts)
        waves[stem.name] = sum(
            (np.pad(p, (0, length - p.shape[0])) for p in parts), np.zeros(length, np.float32)
        )
    if waves:
        length = max(w.shape[0] for w in waves.values())
        waves = {k: np.pad(w, (0, length - w.shape[0])) for k, w in waves.items()}
    return waves
