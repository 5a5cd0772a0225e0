"""An on-disk embedding cache keyed by content hash and model (numpy only).

Entries are ``<folder>/<key[:2]>/<key>.npy`` with ``key = sha256(model name, content)``,
written to a temporary file and renamed, so an interrupted run leaves no partial entry.
(openriff-clap-bridge keeps a cache of its own: this package must not depend on it.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.files import write_atomic


def file_fingerprint(path: str | os.PathLike[str], probe: int = 1 << 20) -> str:
    """A cheap identity of a large file (weights): its size and first and last MiB."""
    source = Path(path)
    size = source.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with source.open("rb") as f:
        digest.update(f.read(probe))
        if size > probe:
            f.seek(max(probe, size - probe))
            digest.update(f.read(probe))
    return digest.hexdigest()[:16]


class EmbeddingCache:
    """Embeddings of contents by model, on disk."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(model: str, content: bytes) -> str:
        """Key of ``content`` embedded by ``model``."""
        digest = hashlib.sha256(len(model).to_bytes(8, "little") + model.encode())
        digest.update(content)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> NDArray[np.float64] | None:
        """The stored embedding, or None."""
        path = self._path(key)
        if not path.is_file():
            return None
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)

    def put(self, key: str, value: NDArray[np.float64]) -> None:
        """Store an embedding atomically."""
        array = np.asarray(value, dtype=np.float64)
        write_atomic(self._path(key), lambda tmp: np.save(tmp, array, allow_pickle=False))
