"""Checking embedding arrays: one place for the errors that name the bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def embeddings(x: Any, name: str, *, min_rows: int = 2) -> NDArray[np.float64]:
    """``x`` as a float64 ``[N, D]`` array with ``N >= min_rows`` finite rows, or an error.

    Args:
        x: array-like embeddings.
        name: what ``x`` is, for error messages (a file name or an argument name).
        min_rows: the fewest rows the caller can work with.
    """
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected embeddings shaped [N, D], got shape {array.shape}")
    if array.shape[0] < min_rows:
        raise ValueError(f"{name}: needs at least {min_rows} embeddings, got {array.shape[0]}")
    if array.shape[1] == 0:
        raise ValueError(f"{name}: embeddings have dimension 0")
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{name}: contains NaN or infinite values (first in row {row})")
    return array


def same_dim(a: NDArray[np.float64], b: NDArray[np.float64], names: tuple[str, str]) -> None:
    """Raise if two embedding sets differ in dimension."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"dimension mismatch: {names[0]} has {a.shape[1]}-d embeddings, "
            f"{names[1]} has {b.shape[1]}-d"
        )
