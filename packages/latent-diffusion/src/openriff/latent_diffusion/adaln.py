"""AdaLN-Zero (Peebles & Xie 2023, DiT): the frame every token backbone here shares.

A backbone made of AdaLN-Zero blocks over tokens ``[B, T, W]`` needs the same three
pieces around its blocks: the conditioning vector (the sinusoidal noise embedding through
a small MLP, plus a projection of the global embedding and its keep flag), the modulated
output head, and one initialisation (Xavier linears, every block's ``modulation`` and the
head at zero, so the untrained network is the identity into a zero output).
:class:`AdaLNZero` holds them; :class:`~openriff.latent_diffusion.dit.DiT` and the CLAP
bridge's MLP (openriff-clap-bridge) build on it and add their own blocks.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from openriff.latent_diffusion.conditioning import Conditioning, embedding_input
from openriff.latent_diffusion.layers import sinusoidal


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x * (1 + scale) + shift`` for tokens ``[B, T, W]`` and ``[B, W]`` modulations."""
    return x * (1.0 + scale[:, None]) + shift[:, None]


class AdaLNZero(nn.Module):
    """Base of AdaLN-Zero backbones: conditioning vector, output head, initialisation.

    A subclass calls :meth:`add_conditioning` and :meth:`add_head` in ``__init__`` (in the
    order its parameters should be registered), keeps its blocks in ``self.blocks`` (each
    with a ``modulation`` linear), and ends ``__init__`` with :meth:`initialize_weights`.
    """

    blocks: nn.ModuleList

    def add_conditioning(self, cond_dim: int, embedding_dim: int) -> None:
        """The noise-level MLP and the embedding projection (``embedding_dim`` + flag)."""
        self.cond_dim, self.embedding_dim = cond_dim, embedding_dim
        self.noise_mlp = nn.Sequential(
            nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim)
        )
        self.embedding_in = nn.Linear(embedding_dim + 1, cond_dim)

    def add_head(self, width: int, cond_dim: int, channels: int) -> None:
        """The modulated output: affine-free LayerNorm, shift and scale, projection."""
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Linear(cond_dim, 2 * width)
        self.out = nn.Linear(width, channels)

    def initialize_weights(self) -> None:
        """One initialisation: Xavier linears, AdaLN-Zero modulations, a zero head.

        Linear layers start Xavier-uniform with zero bias; every block's modulation and the
        head start at zero, so each block is the identity and the output 0.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            modulation = block.modulation
            assert isinstance(modulation, nn.Linear)
            nn.init.zeros_(modulation.weight)
            nn.init.zeros_(modulation.bias)
        for linear in (self.modulation_out, self.out):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def conditioning_vector(self, c_noise: Tensor, cond: Conditioning | None, x: Tensor) -> Tensor:
        """``[B, cond_dim]``: the noise level's embedding plus the global embedding's."""
        vector = self.noise_mlp(sinusoidal(c_noise, self.cond_dim).to(x.dtype))  # (B, C)
        kept = embedding_input(cond, x.shape[0], self.embedding_dim, x)  # (B, E + 1)
        out: Tensor = vector + self.embedding_in(kept)
        return out

    def run_blocks(self, h: Tensor, vector: Tensor) -> Tensor:
        """Tokens ``[B, T, W]`` through the blocks and the head -> ``[B, channels, T]``."""
        for block in self.blocks:
            h = block(h, vector)
        shift, scale = self.modulation_out(F.silu(vector)).chunk(2, dim=1)  # (B, W) each
        out: Tensor = self.out(modulate(self.norm_out(h), shift, scale))  # (B, T, D)
        return out.transpose(1, 2)
