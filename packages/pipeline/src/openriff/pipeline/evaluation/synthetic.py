"""How well a bundle accompanies held-out synthetic songs, without any CLAP checkpoint.

The synthetic songs (:mod:`openriff.pipeline.data.synth`) drawn with seeds the training data
does not use are one more source of excerpts for
:func:`~openriff.pipeline.evaluation.scoring.evaluate_songs`: the context is the mix of
every stem but the target (``bass`` by default), and since the songs' chords and tempo are
known, the chord and grid fits (:mod:`.adherence`) are scored beside the context-only
measures that any data set gets. ``openriff evaluate synthetic --bundle DIR`` prints the
tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from openriff.pipeline.evaluation.scoring import (
    Excerpt,
    evaluate_songs,
    format_tables,
    generation_options,
)

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline


@dataclass(frozen=True)
class SyntheticEvaluation:
    """Settings of the synthetic-song evaluation.

    Attributes:
        songs: held-out songs (>= 2: each needs another song's stem as reference).
        first_seed: generator seed of the first song (training sets use 0, 1, 2, ...);
            seeds whose song lacks the target (drums, in the wide style) are passed over.
        bars: length of each song in bars.
        style: the generator's style (``wide`` or ``classic``).
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
    style: str = "wide"
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


def synthetic_excerpts(config: SyntheticEvaluation) -> list[Excerpt]:
    """The held-out songs as excerpts (chords and tempo included)."""
    from openriff.pipeline.data.synth import synth_song

    excerpts: list[Excerpt] = []
    seed = config.first_seed
    while len(excerpts) < config.songs:
        song = synth_song(seed, bars=config.bars, vocals=False, style=config.style)
        seed += 1
        if config.target not in song.stems:
            if config.target != "drums" or seed - config.first_seed > 20 * config.songs:
                raise ValueError(
                    f"synthetic songs have no {config.target!r} stem: {sorted(song.stems)}"
                )
            continue  # a song without drums
        waves = {name: stem.audio for name, stem in song.stems.items()}
        true = waves.pop(config.target)
        assert true is not None  # synthetic stems always carry their audio
        context = np.sum([w for w in waves.values() if w is not None], axis=0, dtype=np.float32)
        excerpts.append(
            Excerpt(
                f"synthetic song {song.seed}", context, true,
                chords=[asdict(c) for c in song.chords], tempo=song.tempo,
                info={"seed": song.seed, "tempo": song.tempo, "key": song.key},
            )
        )  # fmt: skip
    return excerpts


def evaluate_synthetic(
    pipeline: AccompanimentPipeline, config: SyntheticEvaluation, *, progress: bool = False
) -> dict[str, Any]:
    """Generate the target stem for every held-out song and score it and the references.

    Returns:
        the report of :func:`~openriff.pipeline.evaluation.scoring.evaluate_songs` with
        ``config`` (what was asked and used).
    """
    excerpts = synthetic_excerpts(config)
    report = evaluate_songs(
        pipeline, excerpts, generation_options(config), seed=config.seed, progress=progress
    )
    report["config"] = {**asdict(config), **report["settings"]}
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a line and Markdown tables."""
    config = report["config"]
    return (
        f"Held-out synthetic songs: {len(report['songs'])} x {config['bars']} bars "
        f"(seeds {config['first_seed']}+), target stem: {config['target']}, "
        f"{config['steps']} {config['sampler']} steps, context guidance {config['cfg_context']:g}"
        f"\n\n{format_tables(report)}"
    )
