"""How well a bundle accompanies held-out synthetic songs, without any CLAP checkpoint.

For each held-out song (drawn from the synthetic generator with seeds the training data
does not use), the context is the mix of every stem but the target (``bass`` by default)
and the bundle generates the target for it. The generated stem is scored against two
references on the song's known chords and tempo (:mod:`openriff.pipeline.evaluation.adherence`):

* ``true``: the song's own target stem (what a perfect model could reach);
* ``codec``: the true stem after the bundle's codec round trip (what a perfect denoiser
  could reach through this codec);
* ``other``: the target stem of a different held-out song (a stem that fits nothing here).

and the APA of openriff-metrics over :func:`~openriff.pipeline.evaluation.adherence.pair_embedding`
windows, with the true pairs as background and the other-song pairs as misaligned set.
``openriff evaluate synthetic --bundle DIR`` prints the tables.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from openriff.pipeline.evaluation.adherence import harmonic_fit, pair_embedding, rhythmic_fit

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

SOURCES = ("generated", "true", "codec", "other")
METRICS = ("harmonic_fit", "rhythmic_fit")


@dataclass(frozen=True)
class SyntheticEvaluation:
    """Settings of the synthetic-song evaluation.

    Attributes:
        songs: held-out songs (>= 2: each needs another song's stem as reference).
        first_seed: generator seed of the first song (training sets use 0, 1, 2, ...).
        bars: length of each song in bars.
        target: the stem to generate and score (``bass``, ``keys``, ``guitar``, ``lead``,
            ``drums``; harmonic fit means little for drums).
        prompt: text for bundles with CLAP (None: context only).
        steps: sampler steps (None: the bundle's recommendation, else the default).
        sampler: sampler name (None: likewise).
        cfg_context: context guidance (None: likewise).
        seed: generation seed of the first song (song ``i`` uses ``seed + i``).
    """

    songs: int = 8
    first_seed: int = 1_000_000
    bars: int = 8
    target: str = "bass"
    prompt: str | None = None
    steps: int | None = None
    sampler: str | None = None
    cfg_context: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.songs < 2:
            raise ValueError(
                f"songs must be >= 2 (each needs another song's stem), got {self.songs}"
            )
        if self.bars < 2:
            raise ValueError(f"bars must be >= 2, got {self.bars}")


def _fit(length: int, wave: NDArray[np.float32]) -> NDArray[np.float32]:
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wave))] = wave[:length]
    return out


def evaluate_synthetic(
    pipeline: AccompanimentPipeline, config: SyntheticEvaluation, *, progress: bool = False
) -> dict[str, Any]:
    """Generate the target stem for every held-out song and score it and the references.

    Args:
        pipeline: an :class:`~openriff.pipeline.generation.pipeline.AccompanimentPipeline`.
        config: the evaluation settings.
        progress: show a progress bar over songs.

    Returns:
        ``{"config", "songs": [per-song scores], "summary": {metric: {source: {mean, std}}},
        "margins": {metric: {mean, std, wins}}, "apa": float}``.
    """
    from openriff.metrics.apa import audio_prompt_adherence
    from openriff.pipeline.data.synth import SAMPLE_RATE, synth_song

    songs = [
        synth_song(config.first_seed + i, bars=config.bars, vocals=False)
        for i in range(config.songs)
    ]
    for song in songs:
        if config.target not in song.stems:
            raise ValueError(
                f"synthetic songs have no {config.target!r} stem: {sorted(song.stems)}"
            )
    rows: list[dict[str, Any]] = []
    embeddings: dict[str, list[Any]] = {source: [] for source in SOURCES}
    indices: Any = range(len(songs))
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="songs", unit="song")
    used: dict[str, Any] = {}
    for i in indices:
        song, other_song = songs[i], songs[(i + 1) % len(songs)]
        true = song.stems[config.target].audio
        assert true is not None
        context = sum(s.audio for name, s in song.stems.items() if name != config.target)
        other_audio = other_song.stems[config.target].audio
        assert other_audio is not None
        other = _fit(len(true), other_audio)
        out = pipeline.generate(
            context, config.prompt, steps=config.steps, sampler=config.sampler,
            cfg_context=config.cfg_context, stereo_width=0.0, seed=config.seed + i,
        )  # fmt: skip
        # What was used (a setting left as None took the bundle's recommendation).
        used = {key: out.settings[key] for key in ("steps", "sampler", "cfg_context")}
        generated = out.audio[0].mean(0)
        trip = pipeline.round_trip(true, seed=config.seed + i).mean(0)
        chords = [asdict(c) for c in song.chords]
        row: dict[str, Any] = {"seed": song.seed, "tempo": song.tempo, "key": song.key}
        waves = {"generated": generated, "true": true, "codec": trip, "other": other}
        for source, wave in waves.items():
            row[source] = {
                "harmonic_fit": harmonic_fit(wave, SAMPLE_RATE, chords),
                "rhythmic_fit": rhythmic_fit(wave, SAMPLE_RATE, song.tempo),
            }
            if source != "codec":
                embeddings[source].append(pair_embedding(context, wave, SAMPLE_RATE))
        rows.append(row)
    summary = {
        metric: {source: _stats([r[source][metric] for r in rows]) for source in SOURCES}
        for metric in METRICS
    }
    margins = {}
    for metric in METRICS:
        diffs = [r["generated"][metric] - r["other"][metric] for r in rows]
        stats = _stats(diffs)
        stats["wins"] = int(sum(d > 0 for d in diffs if not math.isnan(d)))
        margins[metric] = stats
    stacked = {source: np.concatenate(rows_) for source, rows_ in embeddings.items() if rows_}
    apa = audio_prompt_adherence(stacked["true"], stacked["other"], stacked["generated"])
    return {
        "config": {**asdict(config), **used},
        "songs": rows,
        "summary": summary,
        "margins": margins,
        "apa": apa,
        "apa_embedding": "openriff.pipeline.evaluation.adherence.pair_embedding (2 s windows)",
    }


def _stats(values: list[float]) -> dict[str, float]:
    finite = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "n": int(finite.size)}


def format_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    config = report["config"]
    lines = [
        f"Held-out synthetic songs: {len(report['songs'])} x {config['bars']} bars "
        f"(seeds {config['first_seed']}+), target stem: {config['target']}, "
        f"{config['steps']} {config['sampler']} steps, context guidance {config['cfg_context']:g}",
        "",
        "| metric | generated | true stem | true stem, codec round trip | other song's stem "
        "| generated - other (songs won) |",
        "|---|---|---|---|---|---|",
    ]
    for metric in METRICS:
        cells = [_cell(report["summary"][metric][s]) for s in SOURCES]
        margin = report["margins"][metric]
        won = f"{margin['wins']}/{margin['n']}"
        lines.append(
            f"| {metric.replace('_', ' ')} | {' | '.join(cells)} | {_cell(margin)} ({won}) |"
        )
    lines += [
        "",
        "mean ± standard deviation over songs",
        "",
        f"APA (background: true pairs; misaligned: other-song pairs; {report['apa_embedding']}): "
        f"{report['apa']:.3f}",
    ]
    return "\n".join(lines)


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"
