"""CLAP embeddings for OpenRiff: an offline LAION-CLAP encoder and the CLAP bridge prior.

* :class:`ClapBridge` (CLAP_beta, DiT follow-up paper 4.2): a small diffusion model that
  maps CLAP text embeddings to plausible CLAP audio embeddings and samples audio
  embeddings unconditionally, built on openriff-latent-diffusion (its backbone
  ``"bridge-mlp"`` is registered there on import).
* :func:`slerp`: spherical interpolation between embeddings.
"""

from openriff.clap_bridge.__about__ import __version__
from openriff.clap_bridge.bridge import ClapBridge, bridge_model_config, embedding_pairs, slerp
from openriff.clap_bridge.mlp import BridgeMLP, BridgeMLPConfig

__all__ = [
    "BridgeMLP",
    "BridgeMLPConfig",
    "ClapBridge",
    "__version__",
    "bridge_model_config",
    "embedding_pairs",
    "slerp",
]
