"""Audio-agnostic latent diffusion: p(target latents | context latents, embedding).

The package will hold the ``Backbone`` / ``Denoiser`` / sampler contracts: ``EDMPrecond``,
``ConsistencyPrecond``, ``karras_sigmas``, ``sample_euler``, ``sample_heun``,
``sample_ddim``, ``sample_consistency``, ``Conditioning``, the ``unet1d`` and ``dit``
backbones, multi-condition classifier-free guidance and a DDP trainer.
"""

from openriff.latent_diffusion.__about__ import __version__

__all__ = ["__version__"]
