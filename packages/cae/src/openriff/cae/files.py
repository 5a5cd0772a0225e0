"""Files that appear whole, with the user's permissions, from one writer at a time.

* :func:`write_atomic` and :func:`atomic_directory` write to a temporary sibling and
  rename it into place when complete, so a reader (or a killed run) never leaves half a
  file. :mod:`tempfile` makes its files private (0600/0700); they are opened up to what
  the user's umask allows before they are published, as ``open()`` would have made them.
* :func:`atomic_directory` replaces an existing folder with one atomic exchange
  (``renameat2(RENAME_EXCHANGE)`` on Linux), so there is never a moment without it.
* :func:`writer_lock` refuses a second process that would write the same output or run
  folder (an advisory ``flock`` on a hidden ``.NAME.lock`` beside it, released by the
  kernel if the holder dies).
* :func:`read_safetensors`, :func:`read_torch_state` and :func:`read_json_object` read
  what a user may have damaged and turn every failure into one ``ValueError`` line that
  names the file; torch files are only ever read with ``weights_only=True``.

The same helpers as openriff-latent-diffusion's ``files`` module: the two packages depend on
no sibling, so each keeps its own copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no read-only interface elsewhere
    os.umask(mask)
    return mask


def open_to_umask(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Give a private temporary file or folder the mode ``open()``/``mkdir()`` would have."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:  # a hard link never replaces: a file that appeared meanwhile is kept
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():  # no hard links on this file system
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[str], object], *, overwrite: bool = True
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then publish it as ``path``.

    The temporary file keeps ``path``'s suffix (soundfile and matplotlib pick the format
    from it) and is removed if anything fails, so ``path`` is either complete or untouched.

    Args:
        path: the file to write.
        write: writes the whole file at the path it is given.
        overwrite: replace an existing ``path``; if false, a file there (even one that
            appeared while writing) is kept and ``FileExistsError`` raised.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        open_to_umask(tmp)
        write(tmp)
        _publish(tmp, target, overwrite)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the OS or file system cannot."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_directory(tmp: Path, target: Path) -> None:
    """Put the complete folder ``tmp`` at ``target``, atomically replacing what is there."""
    if not target.exists():
        tmp.rename(target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp)  # now the old content
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.rename(target, old / target.name)  # the only moment without a target
    tmp.rename(target)
    shutil.rmtree(old)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary folder beside ``target`` that becomes ``target`` if the block succeeds.

    Args:
        target: the folder to write.
        overwrite: replace an existing ``target`` (atomically); if false, one found at the
            end raises ``FileExistsError`` and is kept.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        open_to_umask(tmp, directory=True)
        yield tmp
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} exists")
        replace_directory(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_temporaries(folder: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Delete the temporary folders a killed writer left in ``folder``; returns them.

    :func:`atomic_directory` builds ``NAME`` in a hidden ``.NAME.XXXXXXXX`` beside it; a
    run killed meanwhile leaves that behind. Call this where one writer holds the folder
    (under :func:`writer_lock`), with the ``prefix`` of the names it writes (``"step-"``,
    ``"song_"``): only hidden folders ``.{prefix}*`` are removed, never a lock or a
    finished ``NAME``.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    stale = [p for p in root.glob(f".{prefix}*") if p.is_dir() and not p.name.endswith(".lock")]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def lock_path(target: str | os.PathLike[str]) -> Path:
    """Where the lock of an output file or folder lives: ``.NAME.lock`` beside it."""
    path = Path(target)
    return path.parent / f".{path.name}.lock"


class LockedError(FileExistsError):
    """Another process is writing the same output; the message names the lock."""


@contextlib.contextmanager
def writer_lock(
    targets: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> Iterator[None]:
    """Hold the writer's lock of each target (output files or run folders) for the block.

    A second process asking for a lock that is held gets :class:`LockedError` at once,
    with nothing created. The lock files are removed when the block ends; one left by a
    killed process is simply taken over (``flock`` died with its holder).
    """
    paths = [targets] if isinstance(targets, (str, os.PathLike)) else list(targets)
    locks = sorted({lock_path(p) for p in paths})
    for path in locks:  # a held lock refuses before any lock file of ours is made
        _refuse_if_held(path)
    with contextlib.ExitStack() as stack:
        for path in locks:
            stack.enter_context(_one_lock(path))
        yield


def _refuse_if_held(path: Path) -> None:
    import fcntl

    if path.resolve() in _HELD:
        return
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _locked(path, fd) from None
    finally:
        os.close(fd)


def _locked(path: Path, fd: int) -> LockedError:
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    target = path.parent / path.name[1 : -len(".lock")]
    return LockedError(
        f"{target} is being written by another process (pid {holder}, lock {path}); "
        "wait for it to finish or choose another output"
    )


# Locks this process holds: taking one again (a library call inside a CLI that already
# locked the same output) is a no-op, since a second flock would refuse its own holder.
_HELD: set[Path] = set()


@contextlib.contextmanager
def _one_lock(path: Path) -> Iterator[None]:
    key = path.resolve()
    if key in _HELD:
        yield
        return
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _flock(path, key):
            yield
    finally:
        for folder in made:  # deepest first: folders made only for the lock go again
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def _flock(path: Path, key: Path) -> Iterator[None]:
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = _locked(path, fd)
            os.close(fd)
            raise error from None
        try:  # the file may have been removed by its last holder after we opened it
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _HELD.add(key)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        _HELD.discard(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def read_safetensors(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a damaged file is one ``ValueError`` line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    try:
        return load_file(str(file), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{file} is not a readable safetensors file ({reason})") from None


def load_weights(
    model: torch.nn.Module, weights: Path, config: Path, *, partial: bool = False
) -> None:
    """Load a safetensors file into ``model``, refusing (one line) weights that do not fit.

    Args:
        model: the model ``config`` describes.
        weights: its ``.safetensors`` file.
        config: the config file (or checkpoint folder), named in the message.
        partial: accept weights that leave some of ``model``'s parameters out (they keep
            their values: a head added for fine-tuning); extra or misshapen ones are
            still refused.
    """
    state = read_safetensors(weights)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        sizes = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        detail = sizes[0] if sizes else str(error).splitlines()[0]
        raise ValueError(f"{weights} does not match {config}: {detail}") from None
    if (missing and not partial) or unexpected:
        raise ValueError(
            f"{weights} does not match {config}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )


_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_torch_state(
    path: str | os.PathLike[str],
    map_location: torch.device | str = "cpu",
    what: str = "torch file",
) -> Any:
    """A torch file read with ``weights_only=True``; anything else is refused in one line.

    A file that needs code to load (a pickled object, a crafted payload) is refused
    without running anything; the message does not suggest ``weights_only=False``.

    Args:
        path: the file.
        map_location: where its tensors go.
        what: what the file should be, for the messages ("LAION-CLAP checkpoint", ...).
    """
    import pickle

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads
            warnings.simplefilter("ignore")
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = _UNSUPPORTED.search(str(error))
        if found is None:
            raise ValueError(
                f"{file} is not a readable {what} (damaged, or not written by torch.save)"
            ) from None
        raise ValueError(
            f"{file} holds Python objects, not plain tensors (it asks for {found.group(1)}): "
            "refused to load it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{file} is not a readable {what} ({reason})") from None


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A JSON file that must hold an object; anything else is one ``ValueError`` line.

    Args:
        path: the file.
        what: what it should be, for the message ("bundle.json", "a sidecar", ...).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file ({what})")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON ({what}): {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object ({what}), got {type(data).__name__}")
    return data


def one_line(error: BaseException) -> str:
    """An error's message on one line, for a command line's ``error:`` output."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(error).__name__
