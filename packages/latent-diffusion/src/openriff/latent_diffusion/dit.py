"""``dit``: the Diffusion Transformer over latent frames (DiT follow-up paper, 3.2 and 4.2).

One token per latent frame (the input is the noisy target, the context latents and a
context flag, concatenated channel-wise and projected to the width). Each block is
AdaLN-Zero (Peebles & Xie 2023): layer norms without affine parameters whose shift, scale
and residual gate come from the conditioning vector, all zero at initialisation so that
every block starts as the identity. Self-attention has a depth-wise convolution over time
after the Q, K and V projections (paper 4.2, after Primer) and rotary position
embeddings, so it runs at lengths never seen in training. The conditioning vector is the
512-d sinusoidal noise embedding (through a small MLP) plus a projection of the CLAP
embedding and its flag.

Shapes: ``x [B, D, T]`` -> ``[B, D, T]`` for any ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openriff.latent_diffusion.adaln import AdaLNZero, modulate
from openriff.latent_diffusion.conditioning import Conditioning, context_input
from openriff.latent_diffusion.layers import rotary


@dataclass(frozen=True)
class DiTConfig:
    """Hyper-parameters of :class:`DiT`.

    Attributes:
        channels: latent channels ``D`` of the target.
        context_channels: channels ``Dc`` of the context latents (0: no context input).
        embedding_dim: width ``E`` of the global embedding (CLAP: 512; 0: none).
        width: transformer width.
        depth: number of blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width over ``width``.
        cond_dim: width of the conditioning vector (and of the sinusoidal noise embedding).
        qkv_kernel: kernel of the depth-wise convolution after Q, K, V (1: none).
        dropout: dropout on attention and MLP outputs.
    """

    channels: int = 64
    context_channels: int = 64
    embedding_dim: int = 512
    width: int = 1024
    depth: int = 18
    heads: int = 4
    mlp_ratio: float = 4.0
    cond_dim: int = 512
    qkv_kernel: int = 3
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} not divisible by heads {self.heads}")
        if self.qkv_kernel < 1 or self.qkv_kernel % 2 == 0:
            raise ValueError("qkv_kernel must be odd and >= 1")


class DiTBlock(nn.Module):
    """AdaLN-Zero transformer block over tokens ``[B, T, W]``."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        w = config.width
        self.heads = config.heads
        self.norm1 = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(w, 3 * w)
        # Depth-wise over time, one filter per Q/K/V channel.
        k = config.qkv_kernel
        self.qkv_conv = nn.Conv1d(3 * w, 3 * w, k, padding=k // 2, groups=3 * w) if k > 1 else None
        self.proj = nn.Linear(w, w)
        self.norm2 = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        hidden = int(w * config.mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(w, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, w)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.modulation = nn.Linear(config.cond_dim, 6 * w)

    def attention(self, x: Tensor) -> Tensor:
        """Self-attention of ``[B, T, W]``."""
        b, t, w = x.shape
        qkv = self.qkv(x)  # (B, T, 3W)
        if self.qkv_conv is not None:
            qkv = self.qkv_conv(qkv.transpose(1, 2)).transpose(1, 2)
        q, k, v = qkv.view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(rotary(q), rotary(k), v)  # (B, H, T, W / H)
        return self.proj(out.transpose(1, 2).reshape(b, t, w))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """``[B, T, W]``, ``[B, cond_dim]`` -> ``[B, T, W]``."""
        mods = self.modulation(F.silu(cond)).chunk(6, dim=1)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods  # (B, W) each
        x = x + gate1[:, None] * self.dropout(
            self.attention(modulate(self.norm1(x), shift1, scale1))
        )
        x = x + gate2[:, None] * self.dropout(self.mlp(modulate(self.norm2(x), shift2, scale2)))
        return x


class DiT(AdaLNZero):
    """The latent DiT backbone: ``forward(x, c_noise, cond) -> [B, D, T]``.

    Args:
        config: hyper-parameters (presets in :mod:`openriff.latent_diffusion.backbones`).
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        w, c = config.width, config.cond_dim
        self.x_in = nn.Linear(config.channels + config.context_channels + 1, w)
        self.add_conditioning(c, config.embedding_dim)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.add_head(w, c, config.channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All initialisation in one place (DiT): Xavier linears, AdaLN-Zero, zero output.

        Linear layers start Xavier-uniform with zero bias, the depth-wise convolutions as
        identities (centre tap 1), every block's modulation and the output layer at zero.
        """
        super().initialize_weights()
        for block in self.blocks:
            assert isinstance(block, DiTBlock)
            if block.qkv_conv is not None:
                nn.init.zeros_(block.qkv_conv.weight)
                if block.qkv_conv.bias is not None:
                    nn.init.zeros_(block.qkv_conv.bias)
                with torch.no_grad():
                    block.qkv_conv.weight[:, 0, block.qkv_conv.kernel_size[0] // 2] = 1.0

    def forward(self, x: Tensor, c_noise: Tensor, cond: Conditioning | None = None) -> Tensor:
        """``[B, D, T]``, ``[B]``, conditioning -> ``[B, D, T]``."""
        config = self.config
        if x.ndim != 3 or x.shape[1] != config.channels:
            raise ValueError(f"expected x shaped [B, {config.channels}, T], got {list(x.shape)}")
        vector = self.conditioning_vector(c_noise, cond, x)  # (B, C)
        h = torch.cat([x, context_input(cond, x, config.context_channels)], dim=1)
        return self.run_blocks(self.x_in(h.transpose(1, 2)), vector)  # (B, T, W) -> (B, D, T)
