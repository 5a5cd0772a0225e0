"""Audio Prompt Adherence (APA; Grötschla et al. 2024, used in Diff-A-Riff 4.3.2).

With ``X`` the embeddings of matching (context, accompaniment) pairs (the background),
``X'`` of misaligned pairs (a context with an accompaniment from another song) and ``Y`` of
the candidate pairs:

    APA = 1/2 + (d(Y, X') - d(Y, X)) / (2 d(X, X')), clipped to [0, 1]

so candidates distributed like the matching pairs score about 1 and like the misaligned
ones about 0. Each pair is embedded as one signal: see :func:`openriff.metrics.pairs.mix_pair`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from openriff.metrics.arrays import embeddings, same_dim
from openriff.metrics.frechet import frechet_distance


def apa(d_yx: float, d_yxp: float, d_xxp: float) -> float:
    """APA from the three distances ``d(Y, X)``, ``d(Y, X')`` and ``d(X, X')``.

    A negative distance is taken as 0: the unbiased kernel distance (KD) of two sets from
    one distribution is negative about half the time (its estimate of 0 has noise), and
    the Fréchet distance can round below 0; both mean "no measurable distance".
    """
    for name, value in (("d(Y, X)", d_yx), ("d(Y, X')", d_yxp), ("d(X, X')", d_xxp)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite distance, got {value}")
    d_yx, d_yxp, d_xxp = max(d_yx, 0.0), max(d_yxp, 0.0), max(d_xxp, 0.0)
    if d_xxp == 0:
        raise ValueError(
            "d(X, X') = 0: the matching and misaligned pairs are indistinguishable, so APA "
            "is undefined"
        )
    return float(np.clip(0.5 + (d_yxp - d_yx) / (2.0 * d_xxp), 0.0, 1.0))


def audio_prompt_adherence(
    background: Any,
    misaligned: Any,
    candidates: Any,
    distance: Callable[[Any, Any], float] = frechet_distance,
) -> float:
    """APA of candidate pairs, from the embeddings of the three sets of pairs.

    Args:
        background: ``[N, D]`` embeddings of matching pairs (``X``).
        misaligned: ``[N', D]`` embeddings of misaligned pairs (``X'``).
        candidates: ``[M, D]`` embeddings of the pairs to judge (``Y``).
        distance: a distance between embedding sets (Fréchet distance by default).
    """
    x = embeddings(background, "background")
    xp = embeddings(misaligned, "misaligned")
    y = embeddings(candidates, "candidates")
    same_dim(x, xp, ("background", "misaligned"))
    same_dim(x, y, ("background", "candidates"))
    return apa(distance(y, x), distance(y, xp), distance(x, xp))


def clap_score(a: Any, b: Any) -> float:
    """Mean cosine similarity of paired embeddings (CS_AT for text-audio, CS_AA audio-audio)."""
    x, y = embeddings(a, "a", min_rows=1), embeddings(b, "b", min_rows=1)
    same_dim(x, y, ("a", "b"))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"clap_score pairs rows: a has {x.shape[0]}, b has {y.shape[0]}")
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    if (norms == 0).any():
        raise ValueError(f"clap_score: row {int(np.argmin(norms))} is all zeros")
    return float(np.mean(np.sum(x * y, axis=1) / norms))
