"""The papers' evaluation protocol: metrics over K batches of N candidates.

Each metric is averaged over batches of candidates scored against one reference set, whose
statistics are cached in an ``.npz`` and reused across runs.

A reference file holds ``mu`` ``[D]``, ``cov`` ``[D, D]`` and ``n`` (what FAD needs) and,
unless left out, the reference ``embeddings`` themselves (what KD and density/coverage
need).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.arrays import embeddings, same_dim
from openriff.metrics.files import write_atomic
from openriff.metrics.frechet import frechet_distance_from_stats, gaussian_stats


@dataclass(frozen=True)
class Reference:
    """A reference set: its Gaussian statistics and, optionally, its embeddings."""

    mu: NDArray[np.float64]
    cov: NDArray[np.float64]
    n: int
    embeddings: NDArray[np.float64] | None = None

    @classmethod
    def from_embeddings(cls, x: Any, name: str = "reference") -> Reference:
        """Statistics of embeddings ``[N, D]`` (the embeddings are kept)."""
        array = embeddings(x, name)
        mu, cov = gaussian_stats(array, name)
        return cls(mu, cov, int(array.shape[0]), array)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.mu.shape[0])

    def save(
        self, path: str | os.PathLike[str], *, keep_embeddings: bool = True, overwrite: bool = True
    ) -> Path:
        """Write the reference to ``path`` (``.npz``) atomically.

        Raises:
            FileExistsError: ``path`` exists and ``overwrite`` is false.
        """
        target = Path(path)
        arrays: dict[str, Any] = {"mu": self.mu, "cov": self.cov, "n": np.array(self.n)}
        if keep_embeddings and self.embeddings is not None:
            arrays["embeddings"] = self.embeddings
        return write_atomic(target, lambda tmp: np.savez(tmp, **arrays), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        """Read a reference written by :meth:`save`."""
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"reference statistics {source} do not exist")
        with np.load(source, allow_pickle=False) as data:
            missing = {"mu", "cov", "n"} - set(data.files)
            if missing:
                raise ValueError(f"{source} is not a reference file: no {sorted(missing)}")
            kept = data["embeddings"] if "embeddings" in data.files else None
            return cls(data["mu"], data["cov"], int(data["n"]), kept)


def batched(
    metric: Callable[[NDArray[np.float64]], float],
    candidates: Any,
    batches: int,
    batch_size: int,
    seed: int = 0,
) -> tuple[float, float, list[float]]:
    """``metric`` over ``batches`` disjoint random batches of ``batch_size`` candidates.

    Returns:
        ``(mean, std, values)``.
    """
    x = embeddings(candidates, "candidates")
    if batches < 1 or batch_size < 2:
        raise ValueError("batches must be >= 1 and batch_size >= 2")
    if batches * batch_size > x.shape[0]:
        raise ValueError(
            f"{batches} batches of {batch_size} need {batches * batch_size} candidates, "
            f"got {x.shape[0]}"
        )
    order = np.random.default_rng(seed).permutation(x.shape[0])
    values = [
        float(metric(x[order[i * batch_size : (i + 1) * batch_size]])) for i in range(batches)
    ]
    return float(np.mean(values)), float(np.std(values)), values


def fad_against(reference: Reference) -> Callable[[NDArray[np.float64]], float]:
    """A FAD function of candidate batches against a cached reference."""

    def score(batch: NDArray[np.float64]) -> float:
        same_dim(reference.mu[None], batch, ("reference", "candidates"))
        return frechet_distance_from_stats(
            *gaussian_stats(batch, "candidates"), reference.mu, reference.cov
        )

    return score
