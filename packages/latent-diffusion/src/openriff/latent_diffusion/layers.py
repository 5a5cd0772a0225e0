"""Building blocks of the backbones: embeddings, FiLM blocks, length-free attention.

Attention positions extrapolate in length: a dynamic positional bias (U-Net) and rotary
embeddings (DiT).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal(values: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features ``[B, dim]`` of scalars ``[B]`` (Transformer-style).

    ``c_noise`` (``ln(sigma) / 4`` or a time in [0, 1]) spans a few units, so it is scaled
    by 1000 first, as in DDPM++/EDM, to spread it over the frequencies.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=values.device, dtype=torch.float32) / half
    )
    args = values.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups of at least 4 channels each."""
    groups = min(32, max(1, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ResBlock1d(nn.Module):
    """DDPM++ residual block over ``[B, C, T]`` with FiLM from an embedding ``[B, E]``.

    ``skip(x) + conv(drop(act(norm(conv(act(norm(x)))) * (1 + scale) + shift)))``, times
    ``1 / sqrt(2)`` (EDM's ``skip_scale``).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """``[B, c_in, T]``, ``[B, E]`` -> ``[B, c_out, T]``."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None].chunk(2, dim=1)  # (B, C, 1) each
        h = F.silu(self.norm2(h) * (1.0 + scale) + shift)
        h = self.conv2(self.dropout(h))
        return (self.skip(x) + h) * (1.0 / math.sqrt(2.0))


class DynamicPositionBias(nn.Module):
    """``B[i, j] = MLP(i - j)`` per head (bass paper 3.2, after Wang et al. 2021).

    The MLP reads the signed distance as ``sign * log(1 + |d|)`` so that distances longer
    than any seen in training map to inputs close to seen ones: the bias extrapolates.
    """

    def __init__(self, heads: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(1, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, heads),
        )

    def forward(self, length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Bias ``[heads, T, T]`` for a sequence of ``length`` positions."""
        d = torch.arange(-(length - 1), length, device=device, dtype=torch.float32)
        # The distances in the MLP's own dtype: a bf16 model's weights are bf16.
        weight = next(self.mlp.parameters())
        inputs = (d.sign() * d.abs().log1p())[:, None].to(weight.dtype)
        table = self.mlp(inputs)  # (2T - 1, H)
        idx = torch.arange(length, device=device)
        rel = idx[:, None] - idx[None, :] + length - 1  # (T, T) index into the table
        return table[rel].permute(2, 0, 1).to(dtype)


class Attention1d(nn.Module):
    """Self-attention over ``[B, C, T]`` with a dynamic positional bias (U-Net)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.bias = DynamicPositionBias(heads)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, T]`` -> ``[B, C, T]``."""
        b, c, t = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, 3, self.heads, c // self.heads, t).unbind(1)
        q, k, v = (z.transpose(-1, -2) for z in (q, k, v))  # (B, H, T, C / H)
        mask = self.bias(t, x.device, q.dtype)[None]  # (1, H, T, T)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, C / H)
        out = self.proj(out.transpose(-1, -2).reshape(b, c, t))
        return (x + out) * (1.0 / math.sqrt(2.0))


def rotary(x: Tensor, base: float = 10_000.0) -> Tensor:
    """Rotary position embedding of ``[B, H, T, d]`` queries or keys (Su et al. 2021).

    Relative by construction: ``<rot(q)_i, rot(k)_j>`` depends on ``i - j`` only, so any
    length runs; the pairs use the "rotate half" layout.
    """
    _, _, t, d = x.shape
    half = d // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = (
        torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * freqs[None]
    )  # (T, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return torch.cat([rotated, x[..., 2 * half :]], dim=-1) if d % 2 else rotated
