"""Training data of the bridge: (caption or tags, audio) manifests and embedding-pair files.

A manifest lists items with an ``audio`` path (relative paths are read from the manifest's
folder) and either a ``text`` caption or ``tags``:

* CSV with a header row: ``audio,text`` or ``audio,tags`` (tags separated by ``;``);
* JSON: a list of objects (or ``{"items": [...]}``), ``tags`` a list or a string;
* JSONL: one object per line.

Tags become the prompt ``"tag1, tag2, ..."``, the way tag sets are usually fed to CLAP.
``embed`` turns a manifest into a pairs file: safetensors with ``text`` ``[N, 512]`` and
``audio`` ``[N, 512]`` embeddings and, in its metadata, the prompts and audio paths.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from openriff.clap_bridge.files import write_atomic


@dataclass(frozen=True)
class ManifestItem:
    """One training item: an audio file and the prompt that describes it."""

    audio: Path
    text: str


def _prompt(row: dict[str, Any], where: str) -> str:
    text = row.get("text")
    if text is None and row.get("tags") is not None:
        tags = row["tags"]
        if isinstance(tags, str):
            tags = tags.split(";")
        if not isinstance(tags, list):
            raise ValueError(f"{where}: tags must be a list or a ';'-separated string")
        text = ", ".join(str(t).strip() for t in tags if str(t).strip())
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: no text or tags")
    return text.strip()


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestItem]:
    """Items of a CSV, JSON or JSONL manifest (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    suffix = path.suffix.lower()
    rows: list[Any]
    try:
        if suffix == ".csv":
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        elif suffix == ".json":
            data = json.loads(path.read_text())
            rows = data["items"] if isinstance(data, dict) and "items" in data else data
        elif suffix == ".jsonl":
            lines = path.read_text().splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
        else:
            raise ValueError(f"manifest {path}: unknown format {suffix!r} (csv, json, jsonl)")
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as error:
        raise ValueError(f"manifest {path} is not valid {suffix[1:]}: {error}") from error
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"manifest {path} lists no items")
    items = []
    for i, row in enumerate(rows, start=1):
        where = f"manifest {path}, item {i}"
        if not isinstance(row, dict) or not row.get("audio"):
            raise ValueError(f"{where}: no audio path")
        audio = Path(str(row["audio"]))
        items.append(
            ManifestItem(audio if audio.is_absolute() else path.parent / audio, _prompt(row, where))
        )
    return items


def save_pairs(
    path: str | os.PathLike[str],
    text: Tensor,
    audio: Tensor,
    prompts: list[str],
    sources: list[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write embedding pairs atomically (refusing an existing file unless ``overwrite``)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not (text.shape[0] == audio.shape[0] == len(prompts) == len(sources)):
        raise ValueError("text, audio, prompts and sources must have the same length")
    tensors = {"text": text.float().contiguous(), "audio": audio.float().contiguous()}
    metadata = {"prompts": json.dumps(prompts), "sources": json.dumps(sources)}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def load_pairs(path: str | os.PathLike[str]) -> tuple[Tensor, Tensor, list[str]]:
    """``(text [N, E], audio [N, D], prompts)`` of a pairs file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} does not exist (make one with `embed`)")
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            if not {"text", "audio"} <= keys:
                raise ValueError(f"{path} is not a pairs file: tensors {sorted(keys)}")
            text, audio = f.get_tensor("text"), f.get_tensor("audio")
            prompts = json.loads((f.metadata() or {}).get("prompts", "[]"))
    except (OSError, RuntimeError, SafetensorError) as error:
        raise ValueError(f"{path} is not a readable safetensors pairs file ({error})") from error
    return text.to(torch.float32), audio.to(torch.float32), list(prompts)
