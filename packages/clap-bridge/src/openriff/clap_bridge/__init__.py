"""CLAP embeddings for OpenRiff: an offline LAION-CLAP encoder and the CLAP bridge prior.

The package will hold ``ClapEncoder`` (extra ``[clap]``; loads local checkpoints only)
and the small diffusion model that maps CLAP text embeddings to plausible CLAP audio
embeddings (the "bridge" of the DiT follow-up paper), built on openriff-latent-diffusion.
"""

from openriff.clap_bridge.__about__ import __version__

__all__ = ["__version__"]
