"""Safe files: atomic publishing, the user's umask, one writer at a time, damaged inputs."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from openriff.latent_diffusion.files import (
    LockedError,
    atomic_directory,
    current_umask,
    lock_path,
    one_line,
    read_json_object,
    read_safetensors,
    read_torch_state,
    write_atomic,
    writer_lock,
)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_process_mask() -> None:
    with umask(0o027):
        assert current_umask() == 0o027
    with umask(0o002):
        assert current_umask() == 0o002


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_and_folders_follow_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        file = write_atomic(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
        with atomic_directory(tmp_path / "run") as tmp:
            (tmp / "inside.txt").write_text("y")
    assert mode(file) == 0o666 & ~mask
    assert mode(tmp_path / "run") == 0o777 & ~mask
    assert mode(tmp_path / "run" / "inside.txt") == 0o666 & ~mask


def test_write_atomic_keeps_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match=r"out\.txt exists"):
        write_atomic(target, lambda tmp: Path(tmp).write_text("new"), overwrite=False)
    assert target.read_text() == "mine"
    write_atomic(target, lambda tmp: Path(tmp).write_text("new"), overwrite=True)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporaries


def test_write_atomic_leaves_nothing_when_writing_fails(tmp_path: Path) -> None:
    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "out.wav", broken)
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_whole_and_keeps_the_old_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def fail_half_way() -> None:
        with atomic_directory(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="half way"):
        fail_half_way()
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporaries
    with pytest.raises(FileExistsError), atomic_directory(target, overwrite=False) as tmp:
        (tmp / "third.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


HOLDER = """
import sys, time
from openriff.latent_diffusion.files import writer_lock
with writer_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@contextmanager
def held_elsewhere(target: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer's lock of ``target``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_writer_is_refused_with_the_lock_named(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "ldm"
    with held_elsewhere(target) as other:
        with pytest.raises(LockedError) as refused, writer_lock(target):
            pass
        message = str(refused.value)
        assert str(lock_path(target)) in message
        assert f"pid {other.pid}" in message
    # The holder was killed: its lock died with it, and the next writer takes it over.
    with writer_lock(target):
        assert lock_path(target).is_file()
    assert not lock_path(target).exists()  # removed when the block ends


def test_folders_made_only_for_a_lock_go_again(tmp_path: Path) -> None:
    with writer_lock(tmp_path / "new" / "deeper" / "out.wav"):
        assert (tmp_path / "new" / "deeper").is_dir()
    assert list(tmp_path.iterdir()) == []
    with writer_lock(tmp_path / "kept" / "out.wav"):
        (tmp_path / "kept" / "out.wav").write_text("written")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["out.wav"]


def test_the_lock_is_reentrant_within_one_process(tmp_path: Path) -> None:
    with writer_lock(tmp_path / "out.wav"), writer_lock([tmp_path / "out.wav"]):
        assert lock_path(tmp_path / "out.wav").is_file()
    assert not lock_path(tmp_path / "out.wav").exists()


def test_damaged_safetensors_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.ones(64)}, str(path))
    assert torch.equal(read_safetensors(path)["w"], torch.ones(64))
    for damaged in (path.read_bytes()[:40], b"garbage" * 9, b""):
        path.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"model\.safetensors is not a readable") as error:
            read_safetensors(path)
        assert "\n" not in str(error.value)


class Payload:
    """Unpickling this would create a file; a weights-only load must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_crafted_torch_file_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "trainer.pt"
    torch.save({"step": 3, "x": Payload(marker)}, path)
    with pytest.raises(ValueError, match="holds Python objects") as error:
        read_torch_state(path)
    message = str(error.value)
    assert "io.open" in message
    assert "weights_only=False" not in message
    assert "\n" not in message
    assert not marker.exists()
    torch.save({"step": 3, "w": torch.zeros(2)}, path)
    assert read_torch_state(path)["step"] == 3
    path.write_bytes(pickle.dumps([1, 2])[:5])
    with pytest.raises(ValueError, match="not a readable torch file"):
        read_torch_state(path)


def test_json_objects_only(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    for text, expected in (("[1, 2]", "must hold a JSON object"), ("{nope", "not valid JSON")):
        path.write_text(text)
        with pytest.raises(ValueError, match=expected):
            read_json_object(path, "bundle.json")
    path.write_text('{"a": 1}')
    assert read_json_object(path, "bundle.json") == {"a": 1}
    assert one_line(ValueError("a\n  b\n")) == "a; b"


def test_stale_lock_file_of_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    lock_path(target).write_text("12345")  # left by a process killed with -9
    started = time.perf_counter()
    with writer_lock(target):
        assert lock_path(target).read_text() == str(os.getpid())
    assert time.perf_counter() - started < 5


def test_a_killed_writers_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    from openriff.latent_diffusion.files import remove_temporaries

    stale = tmp_path / ".step-00000005.x7k2m9q1"
    (stale / "model.safetensors").parent.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    lock = tmp_path / ".step-00000006.lock"
    lock.mkdir()  # a lock is never removed, even one that is a folder
    finished = tmp_path / "step-00000004"
    finished.mkdir()
    other = tmp_path / ".cache"
    other.mkdir()
    assert remove_temporaries(tmp_path, "step-") == [stale]
    assert not stale.exists()
    assert lock.exists()
    assert finished.exists()
    assert other.exists()
    assert remove_temporaries(tmp_path / "missing", "step-") == []
