"""Registry of backbones and their named presets, as data.

``BACKBONES[name] = (class, config class, {preset name: config})``;
:func:`create_backbone` builds one, with keyword overrides of any config field. A new
backbone registers itself with :func:`register_backbone`; it must satisfy the Backbone
contract ``forward(x[B, D, T], c_noise[B], cond) -> [B, D, T]`` and take its config as
its only constructor argument.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from torch import nn

from openriff.latent_diffusion.dit import DiT, DiTConfig
from openriff.latent_diffusion.unet import UNet1d, UNet1dConfig

BACKBONES: dict[str, tuple[type[nn.Module], type, dict[str, Any]]] = {
    "unet1d": (
        UNet1d,
        UNet1dConfig,
        {
            # Diff-A-Riff 4.2.2: 512 base channels, 4 levels, attention at the
            # penultimate resolution; ~440 M parameters (500 M less the 58 M CAE).
            "diffariff": UNet1dConfig(),
            # OpenRiff's default model (pipeline issue 9): ~4.7 M parameters with 64
            # latent and context channels, small enough for a 2-core CPU demo.
            "small": UNet1dConfig(
                base_channels=64,
                multipliers=(1, 2, 2, 2),
                blocks=2,
                heads=4,
                noise_dim=128,
                emb_dim=256,
            ),
            "tiny": UNet1dConfig(
                context_channels=8,
                channels=8,
                embedding_dim=16,
                base_channels=16,
                multipliers=(1, 2, 2, 2),
                blocks=1,
                heads=2,
                noise_dim=32,
                emb_dim=64,
            ),
        },
    ),
    "dit": (
        DiT,
        DiTConfig,
        {
            # DiT follow-up paper 4.2: width 1024, 18 layers, 4 heads, MLP x4; ~280 M.
            "paper": DiTConfig(),
            "tiny": DiTConfig(
                channels=8,
                context_channels=8,
                embedding_dim=16,
                width=64,
                depth=3,
                heads=2,
                cond_dim=64,
            ),
        },
    ),
}


def register_backbone(
    name: str, cls: type[nn.Module], config_cls: type, presets: dict[str, Any]
) -> None:
    """Add a backbone to the registry (an existing name is an error)."""
    if name in BACKBONES:
        raise ValueError(f"backbone {name!r} is already registered")
    BACKBONES[name] = (cls, config_cls, dict(presets))


def backbone_config(name: str, preset: str, **overrides: Any) -> Any:
    """The config of preset ``preset`` of backbone ``name`` with ``overrides`` applied."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    _, config_cls, presets = BACKBONES[name]
    if preset not in presets:
        raise KeyError(f"unknown preset {preset!r} of {name!r}; known: {sorted(presets)}")
    known = {f.name for f in fields(config_cls)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"{config_cls.__name__} has no field(s) {sorted(unknown)}")
    return replace(presets[preset], **overrides)


def create_backbone(name: str, preset: str, **overrides: Any) -> nn.Module:
    """Build backbone ``name`` from a named preset, e.g. ``create_backbone("dit", "tiny")``.

    Args:
        name: a key of :data:`BACKBONES` (``"unet1d"``, ``"dit"``).
        preset: a preset of that backbone (``"diffariff"``/``"paper"``, ``"tiny"``).
        **overrides: config fields to change, e.g. ``context_channels=0``.
    """
    config = backbone_config(name, preset, **overrides)  # names an unknown backbone
    return BACKBONES[name][0](config)
