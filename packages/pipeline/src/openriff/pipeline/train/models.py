"""Training on prepared shards: the denoiser and the CLAP bridge.

``openriff train ldm`` and ``openriff train bridge``.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from openriff.latent_diffusion.checkpoint import ModelConfig
from openriff.latent_diffusion.config import from_dict
from openriff.latent_diffusion.objectives import OBJECTIVES
from openriff.latent_diffusion.train import TrainConfig, train
from openriff.pipeline.bundle import add_bridge, write_bundle
from openriff.pipeline.contracts import ClapEmbedder
from openriff.pipeline.data.shards import ShardDataset
from openriff.pipeline.levels import Levels

if TYPE_CHECKING:
    from torch import Tensor

# name -> (backbone, backbone preset, objective)
MODEL_PRESETS: dict[str, tuple[str, str, str]] = {
    "diffariff-unet": ("unet1d", "diffariff", "edm"),
    "dit": ("dit", "paper", "edm"),
    "consistency-dit": ("dit", "paper", "consistency"),
    "small-unet": ("unet1d", "small", "edm"),
    "tiny-unet": ("unet1d", "tiny", "edm"),
    "tiny-dit": ("dit", "tiny", "edm"),
    # The other objectives at test size, to try their paths without writing Python.
    "tiny-consistency-dit": ("dit", "tiny", "consistency"),
    "tiny-v-unet": ("unet1d", "tiny", "v"),
}


def model_config(preset: str, data: ShardDataset, objective: str | None = None) -> ModelConfig:
    """The :class:`ModelConfig` of a named preset, sized to the prepared data.

    Args:
        preset: a key of :data:`MODEL_PRESETS`.
        data: the prepared training shards.
        objective: a key of :data:`~openriff.latent_diffusion.objectives.OBJECTIVES`
            instead of the preset's.
    """
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(MODEL_PRESETS)}")
    if objective is not None and objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {sorted(OBJECTIVES)}")
    backbone, backbone_preset, preset_objective = MODEL_PRESETS[preset]
    overrides = {
        "channels": int(data.target.shape[1]),
        "context_channels": int(data.context.shape[1]),
        "embedding_dim": 0 if data.clap_free else int(data.clap.shape[1]),
    }
    return ModelConfig(
        backbone=backbone,
        preset=backbone_preset,
        overrides=tuple(sorted(overrides.items())),
        objective=objective or preset_objective,
    )


def train_ldm(
    prepared: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    preset: str = "tiny-unet",
    objective: str | None = None,
    settings: dict[str, Any] | None = None,
    device: str = "cpu",
    show_progress: bool = True,
) -> Path:
    """Train a denoiser on ``prepared/train``; returns the ``final/`` checkpoint folder.

    Args:
        prepared: output folder of :func:`openriff.pipeline.data.prepare.prepare`.
        out: run folder (resumed when it holds the same settings).
        preset: a key of :data:`MODEL_PRESETS`.
        objective: ``edm``, ``consistency`` or ``v`` instead of the preset's.
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
    try:  # typed like a stored train.json: "fast" for a number is refused by name
        model = model_config(preset, data, objective)
        config = from_dict(TrainConfig, {**(settings or {}), "model": model})
    except ValueError as error:
        raise ValueError(f"training settings: {error}") from None
    final = train(config, data, out, device=device, show_progress=show_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        prepared_info = json.loads((Path(prepared) / "prepare.json").read_text())
        levels = training_levels(prepared_info.get("config", {}), data.pairs)
        codec = prepared_info.get("codec") or {"preset": "diffariff-tiny"}
        write_bundle(
            Path(out) / "bundle",
            denoiser=final,
            codec=codec,
            clap_checkpoint=prepared_info.get("clap_checkpoint"),
            clap_architecture=prepared_info.get("clap_architecture"),
            provenance={
                "prepare": prepared_info,
                "train": json.loads((Path(out) / "train.json").read_text()),
                "model_preset": preset,
            },
            levels=levels,
            overwrite=True,
        )
    return final


def training_levels(config: dict[str, Any], pairs: list[dict[str, Any]]) -> Levels | None:
    """The levels a bundle records (None when contexts kept their levels).

    The preparation's context loudness and the median stem-to-context ratio of the
    training pairs.
    """
    target = config.get("context_lufs")
    if target is None:
        return None
    ratios = [p["stem_to_context_db"] for p in pairs if p.get("stem_to_context_db") is not None]
    ratio = float(np.median(ratios)) if ratios else 0.0
    augment = float(config.get("level_augment_db", 0.0))
    return Levels(float(target), round(ratio, 3), augment, "prepare")


def bridge_pairs(
    prepared: str | os.PathLike[str], clap: ClapEmbedder
) -> tuple[Tensor, Tensor, list[str]]:
    """(text embeddings, audio embeddings, prompts) for bridge training from the shards.

    Every training pair with a CLAP reference contributes its reference's audio embedding
    and the text embedding of its target's tags (``"tag1, tag2"``).
    """
    import torch

    data = ShardDataset(Path(prepared) / "train")
    if data.clap_free:
        raise ValueError(
            f"{prepared} was prepared without CLAP: prepare it again with --clap to train a bridge"
        )
    rows = [i for i in range(len(data)) if bool(data.has_clap[i])]
    prompts = [", ".join(data.pairs[i]["tags"]) or data.pairs[i]["instrument"] for i in rows]
    unique = sorted(set(prompts))
    embedded = clap.embed_text(unique)
    lookup = {p: embedded[k] for k, p in enumerate(unique)}
    text = torch.stack([lookup[p] for p in prompts])
    return text, data.clap[torch.tensor(rows)], prompts


def train_bridge(
    prepared: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    clap: ClapEmbedder,
    preset: str = "paper",
    settings: dict[str, Any] | None = None,
    device: str = "cpu",
    show_progress: bool = True,
    bundle: str | os.PathLike[str] | None = None,
) -> Path:
    """Train the CLAP bridge prior on the prepared shards; returns its ``final/`` folder.

    With ``bundle``, rank 0 then adds the bridge to that AccompanimentModel bundle.
    """
    from openriff.clap_bridge import bridge_model_config, embedding_pairs

    text, audio, _ = bridge_pairs(prepared, clap)
    values = {"p_drop_context": 0.0, "p_drop_embedding": 0.2, **(settings or {})}
    model = bridge_model_config(
        preset, channels=int(audio.shape[1]), embedding_dim=int(text.shape[1])
    )
    final = train(
        TrainConfig(model=model, **values),
        embedding_pairs(text, audio),
        out,
        device=device,
        show_progress=show_progress,
    )
    if bundle is not None and int(os.environ.get("RANK", "0")) == 0:
        add_bridge(bundle, final)
    return final
