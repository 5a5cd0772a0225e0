"""Shared steps of the pipeline's CLI tests: tiny synthetic songs, tiny preparation."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from openriff.pipeline.cli import main

# An untrained tiny codec and 8-frame windows: seconds, not minutes, on a CPU.
TINY_PREPARE = [
    "--codec-preset", "diffariff-tiny", "--window-latents", "8", "--hop-seconds", "0.5",
    "--reference-seconds", "0.5", "--validation", "0", "--quiet",
]  # fmt: skip


def synth_songs(folder: Path, songs: int) -> Path:
    """``songs`` two-bar synthetic songs in ``folder`` (through the CLI)."""
    assert main(["data", "synth", "--songs", str(songs), "--out", str(folder), "--bars", "2"]) == 0
    return folder


def prepare_args(songs: Path, out: Path, *extra: str) -> list[str]:
    """``openriff prepare`` arguments for a tiny CLAP-free (unless ``extra`` says) run."""
    return ["prepare", "--data", str(songs), "--out", str(out), *TINY_PREPARE, *extra]


def torchrun(processes: int) -> list[str]:
    """The command prefix running ``openriff`` in ``processes`` CPU processes."""
    launcher = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    return [
        launcher,
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "openriff.pipeline.cli",
    ]
