"""Writing a file so that it appears whole, with the permissions the user's umask gives.

openriff-metrics depends on no sibling (and not on torch), so it keeps this small copy of
openriff-latent-diffusion's ``files.write_atomic``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no read-only interface elsewhere
    os.umask(mask)
    return mask


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[str], object], *, overwrite: bool = True
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The temporary file keeps ``path``'s suffix, gets the mode ``open()`` would have given
    (tempfile makes it 0600) and is removed if anything fails.

    Raises:
        FileExistsError: ``path`` exists (also one that appeared while writing) and
            ``overwrite`` is false.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        write(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:  # a hard link never replaces a file that appeared meanwhile
                os.link(tmp, target)
            except FileExistsError:
                raise FileExistsError(f"{target} exists; pass --overwrite to replace it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
