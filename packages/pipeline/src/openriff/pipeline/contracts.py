"""The contracts the pipeline consumes (ARCHITECTURE.md, "Contracts"), as Protocols.

:class:`~openriff.cae.contract.LatentCodec` and
:class:`~openriff.latent_diffusion.samplers.Denoiser` are the libraries' own;
:class:`ClapEmbedder` is declared here, where it is consumed (preparation, bridge
training, generation): :class:`openriff.clap_bridge.encoder.ClapEncoder` satisfies it, and
so does any stand-in (another CLAP model, a table of cached embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from openriff.cae.contract import LatentCodec
from openriff.latent_diffusion.samplers import Denoiser

__all__ = ["ClapEmbedder", "Denoiser", "LatentCodec"]


class ClapEmbedder(Protocol):
    """Joint text-audio embeddings (CLAP): unit-norm ``[N, dim]`` rows."""

    @property
    def dim(self) -> int:
        """Embedding width (512 for LAION-CLAP)."""
        ...

    def embed_audio(
        self, audio: Sequence[NDArray[np.float32]], sample_rate: int | None = None
    ) -> Tensor:
        """Embeddings ``[N, dim]`` of ``N`` mono recordings at ``sample_rate``."""
        ...

    def embed_text(self, texts: Sequence[str]) -> Tensor:
        """Embeddings ``[N, dim]`` of ``N`` prompts."""
        ...
