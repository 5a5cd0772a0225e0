"""The CLAP bridge prior (CLAP_beta): text embeddings -> plausible audio embeddings.

DiT follow-up paper 4.2: CLAP text and audio embeddings lie on disjoint manifolds (the
modality gap), so a small diffusion model learns ``p(audio embedding | text embedding)``;
with the text dropped during training the same model also samples audio embeddings
unconditionally (CLAP_A*). Everything diffusion here is openriff-latent-diffusion's: the
backbone (:class:`~openriff.clap_bridge.mlp.BridgeMLP`) is registered in its registry as
``"bridge-mlp"`` and trained with its EDM loss and trainer, sampled with its Heun sampler
and classifier-free guidance, and stored in its checkpoint format.

Scale: unit-norm ``D``-dimensional embeddings have coordinates of RMS ``1 / sqrt(D)``; the
bridge diffuses ``sqrt(D) * e`` (coordinates of RMS 1, ``sigma_data = 1``) and receives
the text embedding scaled the same way. Samples are renormalised to the unit sphere.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from openriff.clap_bridge.mlp import PRESETS, BridgeMLP, BridgeMLPConfig
from openriff.latent_diffusion.backbones import BACKBONES, register_backbone
from openriff.latent_diffusion.checkpoint import (
    ModelConfig,
    build,
    from_pretrained,
    load_config,
    save_pretrained,
)
from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.data import TensorLatents
from openriff.latent_diffusion.guidance import MultiConditionGuidance
from openriff.latent_diffusion.precond import EDMPrecond
from openriff.latent_diffusion.samplers import sample_heun
from openriff.latent_diffusion.schedules import karras_sigmas

BACKBONE = "bridge-mlp"
if BACKBONE not in BACKBONES:
    register_backbone(BACKBONE, BridgeMLP, BridgeMLPConfig, PRESETS)


def bridge_model_config(preset: str = "paper", **overrides: Any) -> ModelConfig:
    """The latent-diffusion :class:`ModelConfig` of a bridge prior (EDM, ``sigma_data = 1``).

    Args:
        preset: ``"paper"`` (512-d CLAP, width 1024, 8 blocks) or ``"tiny"``.
        **overrides: :class:`BridgeMLPConfig` fields to change, e.g. ``channels=32``.
    """
    return ModelConfig(
        backbone=BACKBONE,
        preset=preset,
        overrides=tuple(sorted(overrides.items())),
        objective="edm",
        sigma_data=1.0,
    )


def _unit(x: Tensor, what: str, dim: int) -> Tensor:
    """Check ``[N, dim]`` finite embeddings and normalise them to unit length."""
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must be shaped [N, {dim}], got {list(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} are empty (no rows)")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    norm = x.float().norm(dim=1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError(f"{what} contain an all-zero row, which has no direction")
    return x.float() / norm


def embedding_pairs(text: Tensor, audio: Tensor) -> TensorLatents:
    """A latent-diffusion dataset of (text embedding, audio embedding) pairs.

    Args:
        text: ``[N, E]`` text embeddings (the condition).
        audio: ``[N, D]`` audio embeddings of the same items (the target).

    Returns:
        targets ``sqrt(D) * audio`` shaped ``[N, D, 1]`` and embeddings ``sqrt(E) * text``,
        both unit-normalised first.
    """
    if text.shape[0] != audio.shape[0]:
        raise ValueError(f"{text.shape[0]} text embeddings but {audio.shape[0]} audio ones")
    audio = _unit(audio, "audio embeddings", audio.shape[-1])
    text = _unit(text, "text embeddings", text.shape[-1])
    return TensorLatents(
        target=(audio * math.sqrt(audio.shape[1]))[:, :, None],
        embedding=text * math.sqrt(text.shape[1]),
    )


def slerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Spherical interpolation between embeddings ``a`` and ``b`` (``[..., D]``).

    ``t = 0`` gives ``a / |a|``, ``t = 1`` gives ``b / |b|``; in between the result moves
    along the great circle at constant angular speed and stays unit-norm. Antipodal
    inputs have no unique great circle and are refused.
    """
    a = a.float() / a.float().norm(dim=-1, keepdim=True)
    b = b.float() / b.float().norm(dim=-1, keepdim=True)
    t = torch.as_tensor(t, dtype=torch.float32, device=a.device)
    if t.ndim:
        t = t[..., None]
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    if bool((cos < -1.0 + 1e-6).any()):
        raise ValueError("slerp between opposite embeddings is undefined")
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    # Nearly equal inputs: the linear interpolation is exact to first order.
    close = sin < 1e-6
    wa = torch.where(close, 1 - t, torch.sin((1 - t) * omega) / sin.clamp_min(1e-12))
    wb = torch.where(close, t, torch.sin(t * omega) / sin.clamp_min(1e-12))
    out = wa * a + wb * b
    return out / out.norm(dim=-1, keepdim=True)


class ClapBridge:
    """A trained (or untrained) bridge prior: samples audio embeddings.

    Args:
        denoiser: an EDM-preconditioned :class:`BridgeMLP`.
        config: its :class:`ModelConfig` (stored with the weights).
    """

    def __init__(self, denoiser: EDMPrecond, config: ModelConfig) -> None:
        if config.backbone != BACKBONE:
            raise ValueError(f"not a bridge prior: backbone {config.backbone!r}")
        self.denoiser = denoiser
        self.config = config
        backbone = config.backbone_config()
        self.dim: int = backbone.channels
        self.text_dim: int = backbone.embedding_dim

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides: Any) -> ClapBridge:
        """An untrained bridge from a preset name (``"paper"``, ``"tiny"``)."""
        config = bridge_model_config(preset, **overrides)
        denoiser = build(config)
        assert isinstance(denoiser, EDMPrecond)
        return cls(denoiser.eval(), config)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        ema: bool = True,
        device: torch.device | str = "cpu",
    ) -> ClapBridge:
        """Load a bridge from a checkpoint folder (``config.json`` + safetensors)."""
        config = load_config(directory)
        if config.backbone != BACKBONE:
            raise ValueError(
                f"{Path(directory)} holds a {config.backbone!r} model, not a CLAP bridge "
                f"({BACKBONE!r})"
            )
        denoiser = from_pretrained(directory, ema=ema, device=device)
        assert isinstance(denoiser, EDMPrecond)
        return cls(denoiser, config)

    def save_pretrained(
        self, directory: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` atomically."""
        return save_pretrained(self.denoiser, self.config, directory, overwrite=overwrite)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return next(self.denoiser.parameters()).device

    @torch.no_grad()
    def _sample(
        self,
        n: int,
        cond: Conditioning | None,
        steps: int,
        guidance: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not math.isfinite(guidance) or guidance < 0:
            raise ValueError(f"cfg must be a finite number >= 0, got {guidance}")
        denoiser: Any = self.denoiser
        if cond is not None and guidance != 1.0:
            denoiser = MultiConditionGuidance(
                self.denoiser, context_scale=1.0, embedding_scale=guidance
            )
        noise = torch.randn(n, self.dim, 1, generator=generator, device=self.device)
        sigmas = karras_sigmas(steps, self.denoiser.sigma_min, self.denoiser.sigma_max)
        x = sample_heun(denoiser, noise, sigmas.to(self.device), cond=cond, generator=generator)
        x = x[:, :, 0].float()  # (N, D)
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def sample(
        self,
        text_embeddings: Tensor,
        n_per_prompt: int = 1,
        *,
        steps: int = 32,
        cfg: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Audio embeddings for text embeddings.

        Args:
            text_embeddings: ``[N, E]`` CLAP text embeddings (normalised here).
            n_per_prompt: samples drawn for each prompt.
            steps: Heun steps on a Karras schedule.
            cfg: classifier-free guidance strength on the text (1: none).
            generator: randomness of the samples; same seed, same samples.

        Returns:
            ``[N, n_per_prompt, D]`` unit-norm audio embeddings.
        """
        if n_per_prompt < 1:
            raise ValueError(f"n_per_prompt must be >= 1, got {n_per_prompt}")
        text = _unit(text_embeddings, "text embeddings", self.text_dim).to(self.device)
        text = text.repeat_interleave(n_per_prompt, dim=0) * math.sqrt(self.text_dim)
        out = self._sample(text.shape[0], Conditioning(embedding=text), steps, cfg, generator)
        return out.reshape(-1, n_per_prompt, self.dim)

    def sample_unconditional(
        self, n: int, *, steps: int = 32, generator: torch.Generator | None = None
    ) -> Tensor:
        """``[n, D]`` unit-norm audio embeddings drawn without a prompt (CLAP_A*)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self._sample(n, None, steps, 1.0, generator)
