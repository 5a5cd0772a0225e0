"""Writing files so that a reader never sees half of one (openriff-latent-diffusion's)."""

from openriff.latent_diffusion.files import write_atomic

__all__ = ["write_atomic"]
