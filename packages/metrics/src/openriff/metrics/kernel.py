"""Kernel distance (KD, the "KID" of Binkowski et al. 2018).

The unbiased MMD^2 with a polynomial kernel, averaged over random subsets.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.arrays import embeddings, same_dim


def polynomial_mmd(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased MMD^2 between ``x`` ``[m, D]`` and ``y`` ``[n, D]``.

    The kernel is ``k(a, b) = (gamma a.b + coef0)^degree`` with ``gamma = 1 / D`` by
    default; the within-set sums leave out the diagonal (Binkowski et al. 2018).
    """
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"MMD needs at least 2 samples per set, got {m} and {n}")
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be an integer >= 1, got {degree}")
    if gamma is not None and not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma}")
    if not np.isfinite(coef0):
        raise ValueError(f"coef0 must be finite, got {coef0}")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (g * x @ x.T + coef0) ** degree
    k_yy = (g * y @ y.T + coef0) ** degree
    k_xy = (g * x @ y.T + coef0) ** degree
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(
    x: Any,
    y: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance between embedding sets: mean and standard deviation over subsets.

    Each of ``subsets`` rounds draws ``subset_size`` rows of ``x`` and of ``y`` without
    replacement (``numpy.random.default_rng(seed)``) and computes
    :func:`polynomial_mmd`. If a set is smaller than ``subset_size``, the size shrinks to
    the smaller set (with a warning).
    """
    a, b = embeddings(x, "x"), embeddings(y, "y")
    same_dim(a, b, ("x", "y"))
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < subset_size:
        warnings.warn(
            f"kernel_distance: subset_size {subset_size} exceeds the smaller set; using {size}",
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd(
            a[rng.choice(a.shape[0], size, replace=False)],
            b[rng.choice(b.shape[0], size, replace=False)],
            degree=degree,
            gamma=gamma,
            coef0=coef0,
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))
