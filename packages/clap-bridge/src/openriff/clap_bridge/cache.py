"""An on-disk cache of embeddings, keyed by content hash and by the model that made them.

Entries are ``<folder>/<key[:2]>/<key>.npy`` with ``key = sha256(model fingerprint, kind,
content)``; each is written to a temporary file and renamed, so an interrupted run leaves
no half-written entry, and concurrent writers of the same entry agree.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from openriff.clap_bridge.files import write_atomic


def file_fingerprint(path: str | os.PathLike[str], probe: int = 1 << 20) -> str:
    """A cheap identity of a large file: its size and the hash of its first and last MiB."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(probe))
        if size > probe:
            f.seek(max(probe, size - probe))
            digest.update(f.read(probe))
    return digest.hexdigest()


class EmbeddingCache:
    """Embeddings on disk.

    Args:
        folder: where entries live (created when needed).
        model: fingerprint of the model (see :func:`file_fingerprint`); entries of other
            models are never returned.
    """

    def __init__(self, folder: str | os.PathLike[str], model: str) -> None:
        self.folder = Path(folder)
        self.model = model

    def key(self, kind: str, content: bytes) -> str:
        """Entry key of ``content`` of a ``kind`` (``"audio-file"``, ``"text"``, ...)."""
        digest = hashlib.sha256()
        for part in (self.model.encode(), kind.encode(), content):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> NDArray[np.float32] | None:
        """The stored embedding, or None."""
        path = self._path(key)
        if not path.is_file():
            return None
        return np.load(path, allow_pickle=False)

    def put(self, key: str, value: NDArray[Any]) -> None:
        """Store an embedding atomically."""
        array = np.asarray(value, dtype=np.float32)
        write_atomic(self._path(key), lambda tmp: np.save(tmp, array, allow_pickle=False))
