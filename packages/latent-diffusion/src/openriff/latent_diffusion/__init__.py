"""Audio-agnostic latent diffusion: p(target latents | context latents, embedding).

The public API is the set of contracts in ARCHITECTURE.md:

* Backbones (``forward(x[B, D, T], c_noise[B], cond) -> [B, D, T]``): ``unet1d`` and
  ``dit``, built by :func:`create_backbone` from named presets.
* Denoisers (``(x, sigma[B], cond) -> clean estimate``): :class:`EDMPrecond`,
  :class:`ConsistencyPrecond` and :class:`VPrecond` wrap a backbone;
  :class:`MultiConditionGuidance` wraps a denoiser.
* Losses :class:`EDMLoss`, :class:`ConsistencyLoss`, :class:`VLoss`.
* Samplers ``sample_euler``, ``sample_heun``, ``sample_ddim``, ``sample_consistency`` over
  float64 schedules (:func:`karras_sigmas`, :func:`consistency_sigmas`,
  :func:`cosine_sigmas`).
* :class:`Conditioning`: context latents, a global embedding and keep-masks.
"""

from openriff.latent_diffusion.__about__ import __version__
from openriff.latent_diffusion.backbones import BACKBONES, create_backbone, register_backbone
from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.guidance import MultiConditionGuidance
from openriff.latent_diffusion.losses import ConsistencyLoss, EDMLoss, VLoss
from openriff.latent_diffusion.precond import (
    ConsistencyPrecond,
    EDMPrecond,
    VPrecond,
    estimate_sigma_data,
)
from openriff.latent_diffusion.samplers import (
    Denoiser,
    sample_consistency,
    sample_ddim,
    sample_euler,
    sample_heun,
)
from openriff.latent_diffusion.schedules import (
    consistency_sigmas,
    cosine_sigmas,
    karras_sigmas,
)

__all__ = [
    "BACKBONES",
    "Conditioning",
    "ConsistencyLoss",
    "ConsistencyPrecond",
    "Denoiser",
    "EDMLoss",
    "EDMPrecond",
    "MultiConditionGuidance",
    "VLoss",
    "VPrecond",
    "__version__",
    "consistency_sigmas",
    "cosine_sigmas",
    "create_backbone",
    "estimate_sigma_data",
    "karras_sigmas",
    "register_backbone",
    "sample_consistency",
    "sample_ddim",
    "sample_euler",
    "sample_heun",
]
