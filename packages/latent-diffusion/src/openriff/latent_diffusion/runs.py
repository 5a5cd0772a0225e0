"""Training runs: processes (DDP), the EMA, checkpoint folders, run settings, the log.

The plumbing every OpenRiff trainer shares (the denoiser's and the bridge's here, the
codec's in openriff-cae). openriff-cae depends on no sibling package, so it keeps an
identical copy, ``openriff.cae.runs``; a repository test fails if the two differ.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from openriff.latent_diffusion.files import read_json_object


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int
    world: int
    local_rank: int


def init_distributed(device: torch.device) -> Dist:
    """Join the process group ``torchrun`` set up (NCCL on CUDA, else Gloo), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, 0)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(d: Dist) -> None:
    """Wait for every process (nothing to wait for in a single process)."""
    if d.world > 1:
        dist.barrier()


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters; buffers copied."""
    for averaged, param in zip(ema.parameters(), model.parameters(), strict=True):
        averaged.lerp_(param.detach(), 1.0 - decay)
    for kept, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        kept.copy_(buffer)


def checkpoints(run: Path) -> list[Path]:
    """The run's checkpoint folders (``checkpoints/step-NNNNNNNN``), oldest first."""
    folder = run / "checkpoints"
    return sorted(folder.glob("step-*")) if folder.is_dir() else []


def checkpoint_folder(run: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` goes."""
    return run / "checkpoints" / f"step-{step:08d}"


def prune_checkpoints(run: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for old in checkpoints(run)[:-keep]:
        shutil.rmtree(old)


def check_settings(
    run: Path, settings: dict[str, Any], parse: Callable[[dict[str, Any]], dict[str, Any]], d: Dist
) -> None:
    """Record ``settings`` in ``run/train.json``, or check they match the recorded ones.

    Rank 0 creates the folder; a folder holding other settings is refused (resuming needs
    the same settings). ``parse`` checks a recorded object and returns it normalised as
    ``settings`` is (e.g. ``to_dict(from_dict(...))``), raising ``ValueError`` if invalid.
    """
    path = run / "train.json"
    if d.rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        if path.exists():
            try:
                stored = parse(read_json_object(path, "run settings"))
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
            if json.dumps(stored, sort_keys=True) != json.dumps(settings, sort_keys=True):
                raise ValueError(
                    f"{run} holds a run with other settings ({path}); "
                    "use another folder or the same settings to resume"
                )
        else:
            path.write_text(json.dumps(settings, indent=2) + "\n")
    barrier(d)


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))
