"""Reading embeddings from ``.npy`` files and folders, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.arrays import embeddings


def npy_files(folder: Path) -> list[Path]:
    """The ``.npy`` files directly in or below ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*.npy") if p.is_file())


def _read(path: Path) -> NDArray[np.float64]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npy array ({error})") from error
    if array.ndim == 1:
        array = array[None]
    return embeddings(array, str(path), min_rows=1)


def load_embeddings(path: str | os.PathLike[str], *, min_rows: int = 2) -> NDArray[np.float64]:
    """Embeddings ``[N, D]`` from an ``.npy`` file or a folder of them.

    A file holds ``[N, D]`` or ``[D]``; a folder's ``.npy`` files (searched recursively)
    are stacked in sorted order and other files are ignored.
    """
    source = Path(path)
    if source.is_file():
        return embeddings(_read(source), str(source), min_rows=min_rows)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such file or folder")
    files = npy_files(source)
    if not files:
        raise ValueError(f"{source}: no .npy embedding files in this folder")
    parts = [_read(f) for f in files]
    dims = {p.shape[1] for p in parts}
    if len(dims) > 1:
        first = next(
            f for f, p in zip(files, parts, strict=True) if p.shape[1] != parts[0].shape[1]
        )
        raise ValueError(
            f"{source}: embeddings of different dimensions ({files[0].name} has "
            f"{parts[0].shape[1]}, {first.name} has {dims - {parts[0].shape[1]}})"
        )
    return embeddings(np.concatenate(parts), str(source), min_rows=min_rows)
