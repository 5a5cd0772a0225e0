"""Denoiser checkpoints: ``config.json`` + ``model.safetensors`` (+ ``ema.safetensors``).

A :class:`ModelConfig` names the backbone, its full config and the objective; it is
stored next to the weights, so :func:`from_pretrained` rebuilds the exact Denoiser from
local files alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from openriff.latent_diffusion.backbones import BACKBONES, backbone_config
from openriff.latent_diffusion.config import from_dict, to_dict
from openriff.latent_diffusion.files import atomic_directory, load_weights, read_json_object
from openriff.latent_diffusion.objectives import OBJECTIVES, NoiseRange, Precond


@dataclass(frozen=True)
class ModelConfig:
    """What a Denoiser is: a backbone, its config and the objective it is trained with.

    Attributes:
        backbone: a key of ``BACKBONES`` (``"unet1d"``, ``"dit"``).
        preset: the backbone preset the config started from (kept for reference).
        overrides: config fields changed from the preset.
        objective: ``"edm"``, ``"consistency"`` or ``"v"`` (the preconditioning).
        sigma_min: lowest noise level.
        sigma_max: highest noise level.
        sigma_data: data standard deviation (ignored by ``"v"``, which uses 1).
    """

    backbone: str = "unet1d"
    preset: str = "tiny"
    overrides: tuple[tuple[str, Any], ...] = ()
    objective: str = "edm"
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}"
            )
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; known: {sorted(BACKBONES)}")

    def backbone_config(self) -> Any:
        """The backbone's config: the preset with the overrides applied."""
        return backbone_config(self.backbone, self.preset, **dict(self.overrides))

    def noise_range(self) -> NoiseRange:
        """The model's noise levels, as the objective's pieces take them."""
        return NoiseRange(self.sigma_min, self.sigma_max, self.sigma_data)


def build(config: ModelConfig) -> Precond:
    """An untrained Denoiser (preconditioned backbone) from a :class:`ModelConfig`."""
    cls = BACKBONES[config.backbone][0]
    backbone = cls(config.backbone_config())
    return OBJECTIVES[config.objective].precond(backbone, config.noise_range())


def _config_json(config: ModelConfig) -> dict[str, Any]:
    data = to_dict(config)
    data["overrides"] = {k: v for k, v in config.overrides}
    return {"format": "openriff-latent-diffusion", "version": 1, "model": data}


def _config_from_json(data: dict[str, Any], where: Path) -> ModelConfig:
    if data.get("format") != "openriff-latent-diffusion":
        raise ValueError(f"{where} is not an openriff-latent-diffusion config")
    if not isinstance(data.get("model"), dict):
        raise ValueError(f"{where}: 'model' must be an object, got {data.get('model')!r}")
    model = dict(data["model"])
    overrides = model.pop("overrides", {})
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: 'model.overrides' must be an object, got {overrides!r}")
    try:
        config = from_dict(ModelConfig, model)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    # Rebuild the full backbone config to give the override values their types (tuples).
    preset = to_dict(backbone_config(config.backbone, config.preset))
    full: Any = from_dict(BACKBONES[config.backbone][1], {**preset, **overrides})
    return replace(config, overrides=tuple((k, getattr(full, k)) for k in overrides))


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def write_weights(
    model: nn.Module, config: ModelConfig, directory: Path, *, ema: nn.Module | None = None
) -> None:
    """Write ``config.json``, ``model.safetensors`` (and ``ema.safetensors``) into a folder."""
    (directory / "config.json").write_text(json.dumps(_config_json(config), indent=2) + "\n")
    save_file(_cpu_state(model), str(directory / "model.safetensors"))
    if ema is not None:
        save_file(_cpu_state(ema), str(directory / "ema.safetensors"))


def save_pretrained(
    model: nn.Module,
    config: ModelConfig,
    directory: str | os.PathLike[str],
    *,
    ema: nn.Module | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint folder atomically.

    Raises:
        FileExistsError: if ``directory`` exists and ``overwrite`` is false.
    """
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    with atomic_directory(target) as tmp:
        write_weights(model, config, tmp, ema=ema)
    return target


def load_config(directory: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` stored in a checkpoint folder."""
    root = Path(directory)
    path = root / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no latent-diffusion checkpoint at {root}: {path.name} is missing "
            "(a checkpoint is a folder written by save_pretrained or the trainer)"
        )
    return _config_from_json(read_json_object(path, "a denoiser config"), path)


def from_pretrained(
    directory: str | os.PathLike[str],
    *,
    ema: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Precond:
    """Load a trained Denoiser from local files (EMA weights when present and ``ema``)."""
    root = Path(directory)
    model = build(load_config(root))
    weights = root / (
        "ema.safetensors" if ema and (root / "ema.safetensors").is_file() else "model.safetensors"
    )
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing from the checkpoint {root}")
    load_weights(model, weights, root / "config.json")
    return model.to(device=device, dtype=dtype).eval()
