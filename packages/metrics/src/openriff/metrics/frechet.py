"""Fréchet distance between Gaussians fitted to embedding sets (FAD), and FAD-infinity.

``FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the matrix
square root is the sum of the square roots of the eigenvalues of ``S1 S2``; these are the
eigenvalues of the symmetric positive semi-definite ``S1^(1/2) S2 S1^(1/2)``, which is
what is computed here (``eigh`` twice): real by construction, clipped at 0 against
round-off, so the result is finite and real where ``scipy.linalg.sqrtm(S1 @ S2)`` returns
complex values for nearly singular covariances.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.arrays import embeddings, same_dim


def gaussian_stats(
    x: Any, name: str = "embeddings"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean ``[D]`` and (unbiased) covariance ``[D, D]`` of embeddings ``[N, D]``."""
    array = embeddings(x, name)
    n, dim = array.shape
    if n <= dim:
        warnings.warn(
            f"{name}: {n} embeddings of dimension {dim}: the covariance is singular "
            "(n <= dim) and the Fréchet distance is biased; use more samples",
            stacklevel=2,
        )
    return array.mean(axis=0), np.cov(array, rowvar=False)


def _psd_sqrt(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance_from_stats(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """Fréchet distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = (
        np.atleast_2d(np.asarray(cov1, np.float64)),
        np.atleast_2d(np.asarray(cov2, np.float64)),
    )
    dim = mu1.shape[-1] if mu1.ndim else 1
    for name, value, shape in (
        ("mu1", mu1, (dim,)),
        ("mu2", mu2, (dim,)),
        ("cov1", cov1, (dim, dim)),
        ("cov2", cov2, (dim, dim)),
    ):
        if np.atleast_1d(value).shape != shape:
            raise ValueError(f"{name} has shape {np.shape(value)}, expected {shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance(x: Any, y: Any) -> float:
    """Fréchet distance between embedding sets ``x`` ``[N, D]`` and ``y`` ``[M, D]``."""
    a, b = embeddings(x, "x"), embeddings(y, "y")
    same_dim(a, b, ("x", "y"))
    return frechet_distance_from_stats(*gaussian_stats(a, "x"), *gaussian_stats(b, "y"))


def fad_infinity(
    candidates: Any,
    reference_mu: Any,
    reference_cov: Any,
    *,
    steps: int = 15,
    min_n: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """FAD-infinity (Chung et al. 2023): the FAD an infinite candidate set would get.

    FAD is biased upwards by about ``b / n`` for ``n`` candidates. Subsets of ``steps``
    sizes between ``min_n`` (default ``N / 4``, at least ``D + 2`` when possible) and ``N``
    are scored and ``FAD(n) = a + b / n`` is fitted by least squares; ``a`` is returned.

    Returns:
        ``(fad_infinity, r2)``: the intercept and the fit's coefficient of determination.
    """
    x = embeddings(candidates, "candidates")
    n, dim = x.shape
    mu = np.asarray(reference_mu, np.float64)
    cov = np.asarray(reference_cov, np.float64)
    low = min_n if min_n is not None else max(n // 4, min(dim + 2, n // 2))
    if not 2 <= low < n:
        raise ValueError(f"fad_infinity needs 2 <= min_n < N; got min_n={low}, N={n}")
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.linspace(low, n, steps).astype(int))
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small subsets are the point here
        for size in sizes:
            pick = rng.choice(n, size=size, replace=False)
            scores.append(frechet_distance_from_stats(*gaussian_stats(x[pick]), mu, cov))
    inverse = 1.0 / sizes
    design = np.stack([np.ones_like(inverse), inverse], axis=1)
    values = np.asarray(scores)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    fitted = design @ coef
    total = float(np.sum((values - values.mean()) ** 2))
    r2 = 1.0 - float(np.sum((values - fitted) ** 2)) / total if total > 0 else 1.0
    return float(coef[0]), r2
