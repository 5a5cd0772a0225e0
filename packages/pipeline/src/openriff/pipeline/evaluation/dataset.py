"""How well a bundle accompanies the songs of any multitrack data set.

``openriff evaluate dataset --data DIR --layout generic|slakh|musdb|moisesdb --target bass``
reads songs with the layout readers of :mod:`openriff.pipeline.data.layout`, takes from
each an excerpt where both the target stem (the sum of the song's non-vocal stems of that
instrument) and the rest (the context: every other stem, vocals included) sound, and scores
the bundle's accompaniment with :func:`~openriff.pipeline.evaluation.scoring.evaluate_songs`.
No chord labels are needed; where a generic ``song.json`` has ``chords`` or ``tempo`` (as
``openriff data synth`` writes), the chord and grid fits are reported too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from openriff.pipeline.data.layout import ScanReport, Song, check_layout, load_stems, read_songs
from openriff.pipeline.evaluation.scoring import (
    SAMPLE_RATE,
    Excerpt,
    evaluate_songs,
    generation_options,
)
from openriff.pipeline.levels import OUTPUT_PEAK, limit

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

# Candidate excerpt starts are this far apart (seconds).
START_GRID = 1.0


@dataclass(frozen=True)
class DatasetEvaluation:
    """Settings of ``openriff evaluate dataset``.

    Attributes:
        data: the data set's root folder.
        layout: ``generic``, ``slakh``, ``musdb`` or ``moisesdb``.
        split: the official split evaluated (Slakh2100, MUSDB18-HQ; None: all), see
            :func:`~openriff.pipeline.data.layout.read_songs`.
        target: the instrument to generate (stems whose ``instrument`` is this).
        songs: at most this many songs (in name order), or None for all.
        seconds: excerpt length (a shorter song is used whole).
        context_dbfs: scale each excerpt (context and true stem alike) so that the
            context's RMS is this many dBFS, or None to keep the data's level.
        limit_context: peak-limit an excerpt that ``context_dbfs`` pushes past full scale,
            as a mastering limiter would (a file cannot hold it otherwise); off, the
            excerpt is only scaled (float audio may pass 1.0).
        prompt: text for bundles with CLAP (None: context only).
        steps: sampler steps (None: the bundle's recommendation, else the default).
        sampler: sampler name (None: likewise).
        cfg_context: context guidance (None: likewise).
        seed: generation seed of the first song (song ``i`` uses ``seed + i``).
    """

    data: Path
    layout: str = "generic"
    split: str | None = "test"
    target: str = "bass"
    songs: int | None = None
    seconds: float = 20.0
    context_dbfs: float | None = None
    limit_context: bool = False
    prompt: str | None = None
    steps: int | None = None
    sampler: str | None = None
    cfg_context: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_layout(self.layout, self.split)
        if self.songs is not None and self.songs < 2:
            raise ValueError(f"songs must be >= 2 (each needs another's stem), got {self.songs}")
        if not 2.0 <= self.seconds <= 600.0:
            raise ValueError(f"seconds must be in [2, 600], got {self.seconds}")
        if self.context_dbfs is not None and not -80.0 <= self.context_dbfs <= 0.0:
            raise ValueError(f"context_dbfs must be in [-80, 0], got {self.context_dbfs}")


def _rms(wave: NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0


def best_start(target: NDArray[np.float32], context: NDArray[np.float32], length: int) -> int:
    """The start (on a 1 s grid) of the ``length``-sample excerpt where both sound most.

    Each candidate scores the smaller of the target's and the context's RMS there, each
    relative to its own loudest candidate.
    """
    step = round(START_GRID * SAMPLE_RATE)
    starts = list(range(0, max(0, len(target) - length) + 1, step))
    levels = np.array(
        [[_rms(target[s : s + length]), _rms(context[s : s + length])] for s in starts]
    )  # (N, 2)
    relative = levels / np.maximum(levels.max(0, keepdims=True), 1e-12)
    return starts[int(np.argmax(relative.min(1)))]


def at_level(
    true: NDArray[np.float32], context: NDArray[np.float32], dbfs: float, *, limited: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
    """Context and stem scaled so that the context's RMS is ``dbfs``.

    A loud level can push peaks past full scale, which no recording has: with ``limited``
    the excerpt is then peak-limited as a mastering limiter would
    (:func:`~openriff.pipeline.levels.limit`, one gain for the stem, the context and their
    mix). Returns the limiter's reduction too (0 without it).
    """
    gain = np.float32(10 ** (dbfs / 20) / max(_rms(context), 1e-12))
    true, context = true * gain, context * gain
    if not limited:
        return true, context, 0.0
    rows, reduction = limit(np.stack([true, context, true + context]), OUTPUT_PEAK)
    return rows[0], rows[1], reduction


def _song_json(song: Song) -> dict[str, Any]:
    path = song.folder / "song.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}  # the layout reader already reported an unusable song.json
    return meta if isinstance(meta, dict) else {}


def _timing(meta: dict[str, Any], start: float, seconds: float) -> dict[str, Any]:
    """Chords (shifted to the excerpt) and grid of a song.json, where it has them."""
    out: dict[str, Any] = {}
    chords = meta.get("chords")
    if isinstance(chords, list) and chords:
        out["chords"] = [
            dict(c, start=c["start"] - start, end=c["end"] - start)
            for c in chords
            if isinstance(c, dict)
            and isinstance(c.get("start"), (int, float))
            and isinstance(c.get("end"), (int, float))
            and c["end"] > start
            and c["start"] < start + seconds
        ]
    tempo = meta.get("tempo")
    if isinstance(tempo, (int, float)) and tempo > 0:
        period = 60.0 / float(tempo)
        out["tempo"] = float(tempo)
        out["beat_offset"] = (-start) % period  # the first beat at or after the start
    return out


def dataset_excerpts(config: DatasetEvaluation) -> tuple[list[Excerpt], ScanReport]:
    """The excerpts to accompany, and what was skipped (with reasons)."""
    songs, report = read_songs(config.layout, config.data, config.split)
    songs = sorted(songs, key=lambda s: s.name)
    length = round(config.seconds * SAMPLE_RATE)
    excerpts: list[Excerpt] = []
    for song in songs:
        if config.songs is not None and len(excerpts) == config.songs:
            break
        targets = [s.name for s in song.stems if s.instrument == config.target and not s.vocal]
        if not targets:
            report.skipped.append(f"{song.name}: no {config.target!r} stem")
            continue
        waves = load_stems(song, report)
        parts = [waves[n] for n in targets if n in waves]
        rest = [w for n, w in waves.items() if n not in targets]
        true = np.sum(parts, axis=0, dtype=np.float32) if parts else np.zeros(0, np.float32)
        if not np.any(true) or not rest:
            report.skipped.append(f"{song.name}: silent {config.target!r} stem or no context")
            continue
        context = np.sum(rest, axis=0, dtype=np.float32)
        if not np.any(context):
            report.skipped.append(f"{song.name}: silent context")
            continue
        start = best_start(true, context, length)
        true, context = true[start : start + length], context[start : start + length]
        info: dict[str, Any] = {}
        if config.context_dbfs is not None:
            true, context, info["limited_db"] = at_level(
                true, context, config.context_dbfs, limited=config.limit_context
            )
        meta = _song_json(song) if config.layout == "generic" else {}
        timing = _timing(meta, start / SAMPLE_RATE, len(true) / SAMPLE_RATE)
        excerpts.append(
            Excerpt(
                song.name, context.astype(np.float32), true.astype(np.float32), **timing,
                info=info,
            )
        )  # fmt: skip
    return excerpts, report


def evaluate_dataset(
    pipeline: AccompanimentPipeline, config: DatasetEvaluation, *, progress: bool = False
) -> dict[str, Any]:
    """Score the bundle's accompaniments of a data set's songs.

    Returns:
        the report of :func:`~openriff.pipeline.evaluation.scoring.evaluate_songs` with
        ``config`` (what was asked and used) and ``scan`` (what was skipped and why).
    """
    excerpts, scan = dataset_excerpts(config)
    if len(excerpts) < 2:
        raise ValueError(
            f"{config.data}: {len(excerpts)} usable song(s) with a {config.target!r} stem and "
            f"a context, need >= 2\n{scan.summary()}"
        )
    report = evaluate_songs(
        pipeline, excerpts, generation_options(config), seed=config.seed, progress=progress
    )
    asked = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    report["config"] = {**asked, **report["settings"]}
    report["scan"] = {"skipped": scan.skipped}
    return report


def format_header(report: dict[str, Any]) -> str:
    """One line saying what was evaluated."""
    config = report["config"]
    level = (
        "" if config["context_dbfs"] is None else f", contexts at {config['context_dbfs']:g} dBFS"
    )
    seconds = [row["seconds"] for row in report["songs"]]
    return (
        f"{len(seconds)} songs of {config['data']} ({config['layout']}), target stem: "
        f"{config['target']}, excerpts of {min(seconds):g}-{max(seconds):g} s{level}; "
        f"{config['steps']} {config['sampler']} steps, context guidance "
        f"{config['cfg_context']:g}"
    )
