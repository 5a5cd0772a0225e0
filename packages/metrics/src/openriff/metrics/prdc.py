"""Precision, recall, density and coverage (Naeem et al. 2020) of a generated set."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.distance import cdist

from openriff.metrics.arrays import embeddings, same_dim


def _kth_neighbour_radii(x: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Distance from each row to its ``k``-th nearest other row."""
    distances = cdist(x, x)
    # Index 0 of the partition is the point itself (distance 0).
    return np.partition(distances, k, axis=1)[:, k]


def density_coverage(real: Any, fake: Any, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real``.

    With ``r_i`` the distance from real point ``i`` to its ``k``-th nearest real neighbour
    (and ``f_j`` likewise among fakes), and strict inequalities throughout:

    * precision: share of fakes inside some real ball ``|f - x_i| < r_i``;
    * recall: share of reals inside some fake ball ``|x - f_j| < f_j``;
    * density: ``1 / (k M) * sum_j #{i : |f_j - x_i| < r_i}``;
    * coverage: share of reals whose ball holds at least one fake.

    Returns:
        ``{"precision", "recall", "density", "coverage"}``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    r = embeddings(real, "real", min_rows=k + 2)
    f = embeddings(fake, "fake", min_rows=k + 2)
    same_dim(r, f, ("real", "fake"))
    real_radii = _kth_neighbour_radii(r, k)
    fake_radii = _kth_neighbour_radii(f, k)
    distances = cdist(r, f)  # (N_real, N_fake)
    inside_real = distances < real_radii[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((distances < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((distances.min(axis=1) < real_radii).mean()),
    }
