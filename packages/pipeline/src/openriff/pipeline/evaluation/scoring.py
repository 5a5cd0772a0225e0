"""Scoring a bundle's accompaniments of songs against references, for any source of songs.

:func:`evaluate_songs` generates the target stem for every :class:`Excerpt` (a context, the
true stem and, where known, chords and tempo) and scores five stems with every measure of
:data:`MEASURES`:

* ``generated``: what the bundle made for the context;
* ``true``: the song's own stem (what a perfect model could reach);
* ``codec``: the true stem through the bundle's codec (what a perfect denoiser could
  reach through this codec);
* ``other``: the stem of another song (a real stem that fits nothing here);
* ``random``: in-tune notes of random pitch at random times in the true stem's register
  and loudness (chance).

Margins (generated minus other, per song) come with a bootstrap 95 % interval of their
mean and the songs won, and APA (openriff-metrics) compares the generated pairs with the
true (background) and other-song (misaligned) pairs. ``openriff evaluate dataset`` and
``openriff evaluate synthetic`` are two sources of excerpts for this one routine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from openriff.pipeline.evaluation.adherence import harmonic_fit, pair_embedding, rhythmic_fit
from openriff.pipeline.evaluation.measures import (
    clipped_samples,
    context_harmonic_fit,
    onset_fit,
    onset_times,
    seam_discontinuity,
    tuning_deviation,
    voiced_pitches,
)
from openriff.pipeline.levels import loudness, scale_within_peak

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

SAMPLE_RATE = 48_000
SOURCES = ("generated", "true", "codec", "other", "random")
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Excerpt:
    """One song's excerpt to accompany.

    Attributes:
        name: the song.
        context: ``[S]`` mono 48 kHz, the mix of every stem but the target.
        true: ``[S]`` the target stem.
        chords: the chord timeline (``song.json`` ``chords``: ``start``, ``end``,
            ``pitches``), or None where unknown.
        tempo: beats per minute, or None where unknown.
        beat_offset: time of the first beat in seconds (with ``tempo``).
        info: what the report's row says of the excerpt besides its name.
    """

    name: str
    context: NDArray[np.float32]
    true: NDArray[np.float32]
    chords: list[dict[str, Any]] | None = None
    tempo: float | None = None
    beat_offset: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class Asked(Protocol):
    """An evaluation's generation settings (None: the bundle's recommendation)."""

    # Read-only (properties), as the frozen dataclasses that satisfy it are.
    @property
    def prompt(self) -> str | None:
        """Text for bundles with CLAP."""

    @property
    def steps(self) -> int | None:
        """Sampler steps."""

    @property
    def sampler(self) -> str | None:
        """Sampler name."""

    @property
    def cfg_context(self) -> float | None:
        """Context guidance."""


def generation_options(config: Asked) -> dict[str, Any]:
    """The keyword arguments of ``generate`` that an evaluation's settings ask for."""
    return {name: getattr(config, name) for name in ("prompt", "steps", "sampler", "cfg_context")}


@dataclass(frozen=True)
class Scene:
    """What a measure may look at besides the stem: the excerpt and the generation's seams."""

    excerpt: Excerpt
    seams: list[float]
    context_lufs: float  # measured once per excerpt, not once per stem
    context_onsets: NDArray[np.float64]
    sample_rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class Measure:
    """A per-stem measure.

    Attributes:
        score: ``(stem [S], scene) -> value`` (NaN where it does not apply).
        label: how the tables name it.
        margin: whether generated minus other is reported (a measure of fit).
        digits: decimals in the tables.
    """

    score: Callable[[NDArray[np.float32], Scene], float]
    label: str
    margin: bool = False
    digits: int = 3


def _chord_fit(stem: NDArray[np.float32], scene: Scene) -> float:
    chords = scene.excerpt.chords
    return float("nan") if not chords else harmonic_fit(stem, scene.sample_rate, chords)


def _grid_fit(stem: NDArray[np.float32], scene: Scene) -> float:
    tempo, offset = scene.excerpt.tempo, scene.excerpt.beat_offset
    if tempo is None:
        return float("nan")
    return rhythmic_fit(stem, scene.sample_rate, tempo, offset=offset)


def _relative_level(stem: NDArray[np.float32], scene: Scene) -> float:
    mine, theirs = loudness(stem, scene.sample_rate), scene.context_lufs
    return mine - theirs if math.isfinite(mine) and math.isfinite(theirs) else float("nan")


MEASURES: dict[str, Measure] = {
    "harmonic_fit": Measure(
        lambda s, c: context_harmonic_fit(s, c.excerpt.context, c.sample_rate),
        "harmonic fit (context chroma)", margin=True,
    ),
    "rhythmic_fit": Measure(
        lambda s, c: onset_fit(onset_times(s, c.sample_rate), c.context_onsets),
        "rhythmic fit (context onsets)", margin=True,
    ),
    "chord_fit": Measure(_chord_fit, "harmonic fit (song.json chords)", margin=True),
    "grid_fit": Measure(_grid_fit, "rhythmic fit (song.json tempo grid)", margin=True),
    "tuning": Measure(lambda s, c: tuning_deviation(s, c.sample_rate), "tuning deviation (st)"),
    "stem_to_context_db": Measure(_relative_level, "stem - context loudness (dB)", digits=1),
    "clipped": Measure(lambda s, c: float(clipped_samples(s)), "clipped samples", digits=0),
    "seam": Measure(
        lambda s, c: seam_discontinuity(s, c.sample_rate, c.seams), "seam discontinuity"
    ),
}  # fmt: skip


def random_stem(
    true: NDArray[np.float32], rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> NDArray[np.float32]:
    """In-tune notes of random pitch and timing in ``true``'s register, at its loudness.

    (Scaled down where that loudness would peak above -0.1 dBFS.)

    Notes last 0.1-0.6 s with gaps of 0-0.3 s; pitches are whole MIDI notes within an
    octave of ``true``'s median pitch (MIDI 48 when it has none).
    """
    pitches = voiced_pitches(true, sample_rate)
    centre = float(np.median(pitches)) if pitches.size else 48.0
    out = np.zeros(len(true), dtype=np.float64)
    t = float(rng.uniform(0, 0.3))
    while t < len(true) / sample_rate:
        length = float(rng.uniform(0.1, 0.6))
        midi = int(rng.integers(round(centre) - 12, round(centre) + 13))
        start = round(t * sample_rate)
        times = np.arange(min(round(length * sample_rate), len(true) - start)) / sample_rate
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        tone = sum(np.sin(2 * np.pi * k * f0 * times) / k for k in range(1, 6))
        fade = np.minimum(1.0, np.minimum(times, times[-1] - times) / 0.005)
        out[start : start + len(times)] += tone * fade * np.exp(-3.0 * times)
        t += length + float(rng.uniform(0, 0.3))
    wave = out.astype(np.float32)
    target, current = loudness(true, sample_rate), loudness(wave, sample_rate)
    gain = target - current if math.isfinite(target) and math.isfinite(current) else 0.0
    return scale_within_peak(wave, gain)[0]  # never over full scale: it counts as clipped


def _fit(length: int, wave: NDArray[np.float32]) -> NDArray[np.float32]:
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wave))] = wave[:length]
    return out


def evaluate_songs(
    pipeline: AccompanimentPipeline,
    excerpts: Sequence[Excerpt],
    options: dict[str, Any],
    *,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate the target for every excerpt and score it and the references.

    Args:
        pipeline: the bundle.
        excerpts: >= 2 (each needs another song's stem).
        options: keyword arguments of
            :meth:`~openriff.pipeline.generation.pipeline.AccompanimentPipeline.generate`
            (``prompt``, ``steps``, ``sampler``, ``cfg_context``; None takes the bundle's).
        seed: generation seed of the first excerpt (excerpt ``i`` uses ``seed + i``).
        progress: a progress bar over excerpts.

    Returns:
        ``{"songs": [per-excerpt rows], "summary": {measure: {source: stats}},
        "margins": {measure: stats with ci95 and wins}, "apa": {source: float},
        "settings": what generation used, "level_error_db": stats}``.
    """
    from openriff.metrics.apa import audio_prompt_adherence

    if len(excerpts) < 2:
        raise ValueError(f"need >= 2 songs (each needs another's stem), got {len(excerpts)}")
    levels = pipeline.levels
    rows: list[dict[str, Any]] = []
    embeddings: dict[str, list[NDArray[np.float64]]] = {s: [] for s in SOURCES}
    used: dict[str, Any] = {}
    indices: Any = range(len(excerpts))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="songs", unit="song")
    for i in indices:
        excerpt, neighbour = excerpts[i], excerpts[(i + 1) % len(excerpts)]
        out = pipeline.generate(excerpt.context, stereo_width=0.0, seed=seed + i, **options)
        used = {k: out.settings[k] for k in ("steps", "sampler", "cfg_context")}
        length = len(excerpt.true)
        stems = {
            "generated": _fit(length, out.audio[0].mean(0)),
            "true": excerpt.true,
            "codec": _fit(length, pipeline.round_trip(excerpt.true, seed=seed + i).mean(0)),
            "other": _fit(length, neighbour.true),
            "random": random_stem(excerpt.true, np.random.default_rng(seed + i)),
        }
        scene = Scene(
            excerpt, pipeline.seams(length, out.settings["pass_frames"]), loudness(excerpt.context),
            onset_times(excerpt.context, SAMPLE_RATE),
        )  # fmt: skip
        row: dict[str, Any] = {
            "song": excerpt.name, "seconds": round(length / SAMPLE_RATE, 3), **excerpt.info
        }  # fmt: skip
        for source, stem in stems.items():
            row[source] = {name: m.score(stem, scene) for name, m in MEASURES.items()}
            if np.any(stem) and length >= 2 * SAMPLE_RATE:
                embeddings[source].append(pair_embedding(excerpt.context, stem, SAMPLE_RATE))
        row["context_lufs"] = scene.context_lufs
        if levels is not None:
            row["level_error_db"] = row["generated"]["stem_to_context_db"] - (
                levels.stem_to_context_db
            )
        rows.append(row)
    summary = {
        name: {source: _stats([r[source][name] for r in rows]) for source in SOURCES}
        for name in MEASURES
    }
    margins = {
        name: _margin([r["generated"][name] - r["other"][name] for r in rows], seed)
        for name, measure in MEASURES.items()
        if measure.margin
    }
    apa: dict[str, float] = {}
    if embeddings["true"] and embeddings["other"]:
        background = np.concatenate(embeddings["true"])
        misaligned = np.concatenate(embeddings["other"])
        for source in ("generated", "codec", "random"):
            if embeddings[source]:
                evaluated = np.concatenate(embeddings[source])
                apa[source] = audio_prompt_adherence(background, misaligned, evaluated)
    report: dict[str, Any] = {
        "settings": used,
        "songs": rows,
        "summary": summary,
        "margins": margins,
        "apa": apa,
        "apa_embedding": "openriff.pipeline.evaluation.adherence.pair_embedding (2 s windows)",
    }
    if levels is not None:
        report["level_error_db"] = _stats([r["level_error_db"] for r in rows])
    return report


def _stats(values: Sequence[float]) -> dict[str, float]:
    finite = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "median": float(np.median(finite)),
        "max": float(finite.max()),
        "n": int(finite.size),
    }


def _margin(diffs: Sequence[float], seed: int) -> dict[str, Any]:
    """Mean difference, a percentile-bootstrap 95 % interval of it, and the songs won."""
    stats: dict[str, Any] = _stats(diffs)
    finite = np.asarray([d for d in diffs if not math.isnan(d)], dtype=np.float64)
    stats["wins"] = int(np.count_nonzero(finite > 0))
    if finite.size:
        rng = np.random.default_rng(seed)
        means = finite[rng.integers(0, finite.size, (BOOTSTRAP, finite.size))].mean(1)
        stats["ci95"] = [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]
    else:
        stats["ci95"] = [float("nan"), float("nan")]
    return stats


def format_tables(report: dict[str, Any]) -> str:
    """The summary, margins and APA of a report as Markdown."""
    header = [
        "measure", "generated", "true stem", "true stem, codec round trip", "other song's stem",
        "random notes", "generated - other [95% CI] (songs won)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, measure in MEASURES.items():
        cells = [_cell(report["summary"][name][s], measure.digits) for s in SOURCES]
        if all(cell == "-" for cell in cells):
            continue
        margin = report["margins"].get(name)
        tail = "" if margin is None or margin["n"] == 0 else (
            f"{margin['mean']:+.3f} [{margin['ci95'][0]:+.3f}, {margin['ci95'][1]:+.3f}] "
            f"({margin['wins']}/{margin['n']})"
        )  # fmt: skip
        lines.append(f"| {measure.label} | {' | '.join(cells)} | {tail} |")
    lines += ["", "mean ± standard deviation over songs"]
    if "level_error_db" in report:
        error = report["level_error_db"]
        lines.append(
            f"generated loudness minus (context loudness + the bundle's ratio): "
            f"{error['mean']:+.2f} ± {error['std']:.2f} dB"
        )
    if report["apa"]:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in report["apa"].items())
        lines.append(
            f"APA (background: true pairs; misaligned: other-song pairs; "
            f"{report['apa_embedding']}): {scores}"
        )
    return "\n".join(lines)


def _cell(stats: dict[str, float], digits: int) -> str:
    if stats["n"] == 0:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
