"""Prepared shards as a training data set for openriff-latent-diffusion's trainer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning

KEYS = ("target", "context", "has_context", "clap", "has_clap")


class ShardDataset:
    """All shards of one split, in memory: ``batch(indices) -> (target, Conditioning)``.

    The conditioning carries the context latents (kept where the pair has a context) and
    the CLAP embedding (kept where the pair has a reference; absent altogether for a
    CLAP-free preparation).

    Args:
        folder: a split folder written by :func:`openriff.pipeline.data.prepare.prepare`.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        root = Path(folder)
        files = sorted(root.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{root}: no shards (*.safetensors); run openriff prepare")
        parts: dict[str, list[Tensor]] = {k: [] for k in KEYS}
        self.pairs: list[dict[str, Any]] = []
        for path in files:
            try:
                self.pairs += _read_shard(path, parts)
            except (SafetensorError, OSError, json.JSONDecodeError) as error:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise ValueError(f"{path} is not a readable prepared shard ({reason})") from None
        try:
            self.target = torch.cat(parts["target"])
            self.context = torch.cat(parts["context"])
            self.has_context = torch.cat(parts["has_context"]).bool()
            self.clap = torch.cat(parts["clap"])
            self.has_clap = torch.cat(parts["has_clap"]).bool()
        except RuntimeError as error:
            raise ValueError(f"{root}: shards of different shapes ({error})") from None
        rows = {int(sum(t.shape[0] for t in parts[key])) for key in KEYS}
        if len(rows) != 1 or len(self.pairs) != self.target.shape[0]:
            raise ValueError(f"{root}: shards whose tensors and pair lists disagree in length")
        self.clap_free = not bool(self.has_clap.any())

    def __len__(self) -> int:
        """Number of pairs."""
        return int(self.target.shape[0])

    def batch(self, indices: Tensor) -> tuple[Tensor, Conditioning]:
        """Targets ``[B, D, T]`` and their conditioning for ``indices`` ``[B]``."""
        pick = indices.to(torch.long).cpu()
        cond = Conditioning(
            context=self.context[pick],
            embedding=None if self.clap_free else self.clap[pick],
            keep_context=self.has_context[pick],
            keep_embedding=None if self.clap_free else self.has_clap[pick],
        )
        return self.target[pick], cond


def _read_shard(path: Path, parts: dict[str, list[Tensor]]) -> list[dict[str, Any]]:
    """Append one shard's tensors to ``parts``; returns its pair records."""
    with safe_open(str(path), framework="pt") as f:
        missing = set(KEYS) - set(f.keys())
        if missing:
            raise ValueError(f"{path} is not a prepared shard: no {sorted(missing)}")
        pairs = json.loads((f.metadata() or {}).get("pairs", "[]"))
        if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
            raise ValueError(f"{path}: its 'pairs' metadata is not a list of objects")
        for key in KEYS:
            parts[key].append(f.get_tensor(key))
    return pairs
