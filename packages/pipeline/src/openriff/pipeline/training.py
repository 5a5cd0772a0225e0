"""Training the accompaniment denoiser on prepared shards (``openriff train ldm``).

Named model presets, as data: the Diff-A-Riff U-Net (4.2.2), the follow-up's DiT and its
consistency-trained variant (4.2-4.3), and tiny CPU versions. The backbone's widths are
taken from the shards (latent channels, context channels, CLAP width, or no embedding for
a CLAP-free preparation); openriff-latent-diffusion's trainer does the rest (DDP under
``torchrun``, EMA, exact resume).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from openriff.latent_diffusion.checkpoint import ModelConfig
from openriff.latent_diffusion.train import TrainConfig, train
from openriff.pipeline.bundle import write_bundle
from openriff.pipeline.shards import ShardDataset

# name -> (backbone, backbone preset, objective)
MODEL_PRESETS: dict[str, tuple[str, str, str]] = {
    "diffariff-unet": ("unet1d", "diffariff", "edm"),
    "dit": ("dit", "paper", "edm"),
    "consistency-dit": ("dit", "paper", "consistency"),
    "tiny-unet": ("unet1d", "tiny", "edm"),
    "tiny-dit": ("dit", "tiny", "edm"),
}


def model_config(preset: str, data: ShardDataset) -> ModelConfig:
    """The :class:`ModelConfig` of a named preset, sized to the prepared data."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(MODEL_PRESETS)}")
    backbone, backbone_preset, objective = MODEL_PRESETS[preset]
    overrides = {
        "channels": int(data.target.shape[1]),
        "context_channels": int(data.context.shape[1]),
        "embedding_dim": 0 if data.clap_free else int(data.clap.shape[1]),
    }
    return ModelConfig(
        backbone=backbone,
        preset=backbone_preset,
        overrides=tuple(sorted(overrides.items())),
        objective=objective,
    )


def train_ldm(
    prepared: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    preset: str = "tiny-unet",
    settings: dict[str, Any] | None = None,
    device: str = "cpu",
    show_progress: bool = True,
) -> Path:
    """Train a denoiser on ``prepared/train``; returns the ``final/`` checkpoint folder.

    Args:
        prepared: output folder of :func:`openriff.pipeline.prepare.prepare`.
        out: run folder (resumed when it holds the same settings).
        preset: a key of :data:`MODEL_PRESETS`.
        settings: :class:`~openriff.latent_diffusion.train.TrainConfig` fields (``steps``,
            ``batch_size``, ``lr``, ...).
        device: ``cpu`` or ``cuda``.
        show_progress: progress bar on rank 0.

    Rank 0 then writes the AccompanimentModel bundle to ``out/bundle`` (codec as recorded
    by the preparation, the final denoiser, the CLAP reference, all settings).
    """
    data = ShardDataset(Path(prepared) / "train")
    known = {f.name for f in fields(TrainConfig)} - {"model"}
    unknown = set(settings or {}) - known
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(known)}")
    values = dict(settings or {})
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    config = TrainConfig(model=model_config(preset, data), **values)
    final = train(config, data, out, device=device, show_progress=show_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        prepared_info = json.loads((Path(prepared) / "prepare.json").read_text())
        codec = prepared_info.get("codec") or {"preset": "diffariff-tiny"}
        write_bundle(
            Path(out) / "bundle",
            denoiser=final,
            codec=codec,
            clap_checkpoint=prepared_info.get("clap_checkpoint"),
            provenance={
                "prepare": prepared_info,
                "train": json.loads((Path(out) / "train.json").read_text()),
                "model_preset": preset,
            },
            overwrite=True,
        )
    return final
