"""Building blocks shared by the CAE networks: residual conv blocks, attention, resampling.

Blocks work on 1-D ``[B, C, T]`` or 2-D ``[B, C, F, T]`` feature maps (``dims``).
Zero-initialisation is not done here: each model does all of it in one method.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels each."""
    groups = min(32, max(1, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


def conv(dims: int, c_in: int, c_out: int, kernel: int | tuple[int, ...], **kw: int) -> nn.Module:
    """A 1-D or 2-D convolution; an int kernel gets 'same' padding."""
    if isinstance(kernel, int):
        kw.setdefault("padding", kernel // 2)
    return (nn.Conv1d if dims == 1 else nn.Conv2d)(c_in, c_out, kernel, **kw)  # type: ignore[arg-type]


class NoiseEmbedding(nn.Module):
    """Sinusoidal embedding of ``c_noise`` followed by a two-layer MLP.

    Args:
        dim: embedding width.
        max_period: longest sinusoid period.
    """

    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        self.dim = dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, c_noise: Tensor) -> Tensor:
        """``[B]`` -> ``[B, dim]``."""
        half = self.dim // 2
        freqs = torch.exp(
            -math.log(self.max_period)
            * torch.arange(half, device=c_noise.device, dtype=torch.float32)
            / half
        )
        args = c_noise.float()[:, None] * freqs[None] * 1000.0
        emb = torch.cat([args.cos(), args.sin()], dim=1)
        return self.mlp(emb.to(next(self.mlp.parameters()).dtype))


class ResBlock(nn.Module):
    """Pre-activation residual block, optionally FiLM-conditioned on an embedding.

    ``x + conv(act(norm(conv(act(norm(x)))) * (1 + scale) + shift))``, scaled by 1/sqrt(2).

    Args:
        dims: 1 or 2.
        c_in: input channels.
        c_out: output channels.
        emb_dim: width of the conditioning embedding, or None for none.
        dropout: dropout before the second convolution.
    """

    def __init__(
        self, dims: int, c_in: int, c_out: int, emb_dim: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = conv(dims, c_in, c_out, 3)
        self.film = nn.Linear(emb_dim, 2 * c_out) if emb_dim else None
        self.norm2 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv(dims, c_out, c_out, 3)
        self.skip = conv(dims, c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        """``[B, c_in, *S]`` (+ ``[B, emb_dim]``) -> ``[B, c_out, *S]``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            if emb is None:
                raise ValueError("this block is conditioned: pass an embedding")
            scale, shift = self.film(emb).unsqueeze(-1).chunk(2, dim=1)  # (B, C, 1)
            if h.ndim == 4:
                scale, shift = scale.unsqueeze(-1), shift.unsqueeze(-1)
            h = h * (1.0 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return (self.skip(x) + h) / math.sqrt(2.0)


class Attention(nn.Module):
    """Multi-head self-attention over all positions of a 1-D or 2-D feature map.

    Args:
        channels: feature channels (a multiple of ``heads``).
        heads: attention heads.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, *S]`` -> ``[B, C, *S]``."""
        shape = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, N, C)
        b, n, c = tokens.shape
        q, k, v = self.qkv(tokens).view(b, n, 3, self.heads, c // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        out = self.proj(out.transpose(1, 2).reshape(b, n, c))  # (B, N, C)
        return (x + out.transpose(1, 2).reshape(shape)) / math.sqrt(2.0)


class Downsample(nn.Module):
    """Strided convolution over non-overlapping patches of ``factors``.

    Args:
        c_in: input channels.
        c_out: output channels.
        factors: per-axis reduction, e.g. ``(4, 2)`` for (frequency, time).
    """

    def __init__(self, c_in: int, c_out: int, factors: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = conv(len(factors), c_in, c_out, factors, stride=factors)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        """``[B, c_in, *S]`` -> ``[B, c_out, *(S / factors)]``."""
        out: Tensor = self.conv(x)
        return out


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by ``factors`` followed by a 3-wide convolution.

    Args:
        c_in: input channels.
        c_out: output channels.
        factors: per-axis expansion.
    """

    def __init__(self, c_in: int, c_out: int, factors: tuple[int, ...]) -> None:
        super().__init__()
        self.factors = factors
        self.conv = conv(len(factors), c_in, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, c_in, *S]`` -> ``[B, c_out, *(S * factors)]``."""
        x = F.interpolate(x, scale_factor=self.factors, mode="nearest")
        out: Tensor = self.conv(x)
        return out
