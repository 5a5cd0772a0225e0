"""What levels a multitrack data set has: ``openriff data levels``.

For the pairs preparation would cut (:func:`openriff.pipeline.data.pairs.sample_pairs`,
with the same seeds), the integrated loudness of each context and of each target, and
the target's loudness relative to its context. A bundle records the last one's median
(``levels.stem_to_context_db``) and generation sets stems at it; this command shows it,
and the spread, for any data before (or without) preparing it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openriff.pipeline.data.layout import load_stems, read_songs
from openriff.pipeline.data.pairs import PairConfig, render_pair, sample_pairs
from openriff.pipeline.data.prepare import song_rng
from openriff.pipeline.levels import loudness


@dataclass
class LevelSurvey:
    """Loudness of the pairs of a data set (LUFS, and dB for the ratio)."""

    songs: int = 0
    context_lufs: list[float] = field(default_factory=list)
    target_lufs: list[float] = field(default_factory=list)
    stem_to_context_db: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts and the 10th, 50th and 90th percentiles of each measure."""

        def spread(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            return {"p10": round(float(p10), 2), "median": round(float(p50), 2),
                    "p90": round(float(p90), 2)}  # fmt: skip

        return {
            "songs": self.songs,
            "pairs": len(self.target_lufs),
            "pairs_with_context": len(self.context_lufs),
            "context_lufs": spread(self.context_lufs),
            "target_lufs": spread(self.target_lufs),
            "stem_to_context_db": spread(self.stem_to_context_db),
        }


def survey_levels(
    data: str | os.PathLike[str],
    pairs: PairConfig,
    *,
    layout: str = "generic",
    split: str | None = "train",
    seed: int = 0,
    songs: int | None = None,
) -> LevelSurvey:
    """Loudness of the pairs ``prepare`` would cut from ``data`` (the songs' own levels).

    Args:
        data: the data set's root.
        pairs: how pairs are cut.
        layout: a key of :data:`~openriff.pipeline.data.layout.READERS`.
        split: the official split (:func:`~openriff.pipeline.data.layout.read_songs`).
        seed: preparation's seed (the same pairs as ``prepare --seed``).
        songs: survey only the first ``songs`` songs (all when None).
    """
    if songs is not None and songs < 1:
        raise ValueError(f"songs must be >= 1 (None: all), got {songs}")
    found, report = read_songs(layout, data, split)
    survey = LevelSurvey()
    for song in found[:songs]:
        waves = load_stems(song, report)
        survey.songs += 1
        for pair in sample_pairs(song, waves, pairs, song_rng(seed, song)):
            context, target, _ = render_pair(pair, waves, pairs.reference)
            target_level = loudness(target)
            if math.isfinite(target_level):
                survey.target_lufs.append(target_level)
            if context is None:
                continue
            context_level = loudness(context)
            if math.isfinite(context_level):
                survey.context_lufs.append(context_level)
                if math.isfinite(target_level):
                    survey.stem_to_context_db.append(target_level - context_level)
    return survey
