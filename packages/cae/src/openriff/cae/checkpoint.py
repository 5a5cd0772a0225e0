"""Building CAE models from presets and reading/writing checkpoint directories.

A checkpoint is a directory with ``config.json`` (``{"model": kind, "config": {...},
"version": ...}``) and ``model.safetensors``; a trainer may add ``ema.safetensors``, which
:func:`from_pretrained` prefers unless ``ema=False``. Writing goes to a temporary directory
that is renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from openriff.cae.__about__ import __version__
from openriff.cae.codec import SpectrogramCodec
from openriff.cae.config import from_dict, to_dict
from openriff.cae.conv import ConvCAE, ConvCAEConfig
from openriff.cae.files import atomic_directory, load_weights, read_json_object
from openriff.cae.presets import PRESETS
from openriff.cae.transformer import TransformerCAE, TransformerCAEConfig

# Model kind -> (model class, config class).
MODELS: dict[str, tuple[type[SpectrogramCodec], type[Any]]] = {
    "conv": (ConvCAE, ConvCAEConfig),
    "transformer": (TransformerCAE, TransformerCAEConfig),
}


def build(kind: str, config: Any) -> SpectrogramCodec:
    """An untrained model of ``kind`` (a key of ``MODELS``) with ``config``."""
    if kind not in MODELS:
        raise ValueError(f"unknown CAE model {kind!r}; known: {', '.join(sorted(MODELS))}")
    model_cls, config_cls = MODELS[kind]
    if not isinstance(config, config_cls):
        raise TypeError(f"{kind} needs a {config_cls.__name__}, got {type(config).__name__}")
    return model_cls(config)


def kind_of(model: SpectrogramCodec) -> str:
    """The ``MODELS`` key of a model instance."""
    for kind, (model_cls, _) in MODELS.items():
        if type(model) is model_cls:
            return kind
    raise TypeError(f"{type(model).__name__} is not a registered CAE model")


def from_preset(name: str) -> SpectrogramCodec:
    """An untrained model from a named preset (``PRESETS``), e.g. ``"diffariff-tiny"``."""
    if name not in PRESETS:
        raise ValueError(f"unknown CAE preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    kind, config = PRESETS[name]
    return build(kind, config)


def config_json(model: SpectrogramCodec) -> dict[str, Any]:
    """What ``config.json`` holds for ``model``."""
    return {
        "model": kind_of(model),
        "config": to_dict(model.config),
        "version": __version__,
    }


def save_pretrained(
    model: SpectrogramCodec,
    directory: str | os.PathLike[str],
    *,
    ema: SpectrogramCodec | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (and ``ema.safetensors``).

    Raises:
        FileExistsError: if ``directory`` exists and ``overwrite`` is false.
    """
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    with atomic_directory(target) as tmp:
        write_weights(model, tmp, ema=ema)
    return target


def write_weights(
    model: SpectrogramCodec, directory: Path, *, ema: SpectrogramCodec | None = None
) -> None:
    """Write ``config.json``, ``model.safetensors`` (and ``ema.safetensors``) into a folder."""
    (directory / "config.json").write_text(json.dumps(config_json(model), indent=2) + "\n")
    save_file(_cpu_state(model), str(directory / "model.safetensors"))
    if ema is not None:
        save_file(_cpu_state(ema), str(directory / "ema.safetensors"))


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def checkpoint_weights(directory: Path, *, ema: bool = True) -> Path:
    """The weights file of a checkpoint folder.

    ``ema.safetensors`` when present and ``ema``, else ``model.safetensors``.

    Raises:
        FileNotFoundError: naming the missing file.
    """
    weights = directory / "ema.safetensors"
    if not (ema and weights.is_file()):
        weights = directory / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no weights in {directory}: {weights.name} is missing")
    return weights


def from_pretrained(
    directory: str | os.PathLike[str],
    *,
    ema: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> SpectrogramCodec:
    """Load a trained model from a checkpoint directory (local files only).

    Args:
        directory: folder with ``config.json`` and ``model.safetensors``.
        ema: use ``ema.safetensors`` when present.
        device: where to put the model.
        dtype: parameter dtype.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: if the config or the weights do not match a known model.
    """
    root = Path(directory)
    config_path = root / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"no CAE checkpoint at {root}: {config_path.name} is missing "
            "(a checkpoint is a folder written by save_pretrained or `openriff-cae train`)"
        )
    meta = read_json_object(config_path, "a CAE config")
    kind = meta.get("model")
    if not isinstance(kind, str) or kind not in MODELS:
        raise ValueError(f"{config_path}: unknown model kind {kind!r}")
    try:
        config = from_dict(MODELS[kind][1], meta.get("config", {}))
        model = build(kind, config)
    except ValueError as error:
        raise ValueError(f"{config_path}: {error}") from None
    load_weights(model, checkpoint_weights(root, ema=ema), config_path)
    return model.to(device=device, dtype=dtype).eval()
