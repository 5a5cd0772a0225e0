"""``unet1d``: the Diff-A-Riff latent U-Net (DDPM++-style, 1-D).

Diff-A-Riff 4.2.2: four down- and four up-sampling levels of residual convolution blocks
with skip connections, self-attention at the penultimate resolution, base channels that
grow per level, and FiLM conditioning from a joint embedding: the CLAP embedding
concatenated with the sinusoidal noise embedding, projected by two dense layers. The
attention carries a dynamic positional bias (bass paper 3.2) so that the model runs at
lengths it never saw in training. Context latents are concatenated channel-wise with the
noisy input, with a flag row marking where they are absent (``conditioning``).

Shapes: ``x [B, D, T]`` -> ``[B, D, T]`` for any ``T``; the sequence is zero-padded to a
multiple of ``2^(levels - 1)`` inside and cropped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openriff.latent_diffusion.conditioning import Conditioning, context_input, embedding_input
from openriff.latent_diffusion.layers import Attention1d, ResBlock1d, group_norm, sinusoidal


@dataclass(frozen=True)
class UNet1dConfig:
    """Hyper-parameters of :class:`UNet1d`.

    Attributes:
        channels: latent channels ``D`` of the target.
        context_channels: channels ``Dc`` of the context latents (0: no context input).
        embedding_dim: width ``E`` of the global embedding (CLAP: 512; 0: none).
        base_channels: channels at the finest level.
        multipliers: channel multiplier per level (4 levels in the paper).
        blocks: residual blocks per level in each half.
        attention: per level, whether its blocks have self-attention.
        heads: attention heads.
        noise_dim: width of the sinusoidal noise embedding.
        emb_dim: width of the joint embedding that drives FiLM.
        dropout: dropout in the residual blocks.
    """

    channels: int = 64
    context_channels: int = 64
    embedding_dim: int = 512
    base_channels: int = 512
    multipliers: tuple[int, ...] = (1, 2, 3, 3)
    blocks: int = 2
    attention: tuple[bool, ...] = (False, False, True, False)
    heads: int = 8
    noise_dim: int = 512
    emb_dim: int = 1024
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if len(self.attention) != len(self.multipliers):
            raise ValueError("attention needs one entry per level")
        if self.channels < 1 or self.blocks < 1:
            raise ValueError("channels and blocks must be >= 1")


def _zero(layer: nn.Conv1d) -> None:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class UNet1d(nn.Module):
    """The latent U-Net backbone: ``forward(x, c_noise, cond) -> [B, D, T]``.

    Args:
        config: hyper-parameters (presets in :mod:`openriff.latent_diffusion.backbones`).
    """

    def __init__(self, config: UNet1dConfig) -> None:
        super().__init__()
        self.config = config
        chans = [config.base_channels * m for m in config.multipliers]
        emb = config.emb_dim
        # Two dense layers over [noise embedding, embedding, embedding flag] (4.2.2).
        self.embed = nn.Sequential(
            nn.Linear(config.noise_dim + config.embedding_dim + 1, emb),
            nn.SiLU(),
            nn.Linear(emb, emb),
            nn.SiLU(),
        )
        self.conv_in = nn.Conv1d(
            config.channels + config.context_channels + 1, chans[0], 3, padding=1
        )
        self.down = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [chans[0]]
        c = chans[0]
        for level, width in enumerate(chans):
            for _ in range(config.blocks):
                self.down.append(ResBlock1d(c, width, emb, config.dropout))
                self.down_attn.append(
                    Attention1d(width, config.heads) if config.attention[level] else nn.Identity()
                )
                c = width
                skips.append(c)
            if level < len(chans) - 1:
                self.downsample.append(nn.Conv1d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList(
            [ResBlock1d(c, c, emb, config.dropout), ResBlock1d(c, c, emb, config.dropout)]
        )
        self.mid_attn = Attention1d(c, config.heads)
        self.up = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(chans))):
            width = chans[level]
            for _ in range(config.blocks + 1):
                self.up.append(ResBlock1d(c + skips.pop(), width, emb, config.dropout))
                self.up_attn.append(
                    Attention1d(width, config.heads) if config.attention[level] else nn.Identity()
                )
                c = width
            if level > 0:
                self.upsample.append(nn.Conv1d(c, c, 3, padding=1))
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv1d(c, config.channels, 3, padding=1)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All initialisation in one place.

        Xavier-uniform weights and zero biases throughout; then every residual branch's
        last convolution, every attention projection and the output convolution start at
        zero, so the initial network is a sum of identities and its output is 0.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, ResBlock1d):
                _zero(module.conv2)
            elif isinstance(module, Attention1d):
                _zero(module.proj)
        _zero(self.conv_out)

    def forward(self, x: Tensor, c_noise: Tensor, cond: Conditioning | None = None) -> Tensor:
        """``[B, D, T]``, ``[B]``, conditioning -> ``[B, D, T]``."""
        config = self.config
        if x.ndim != 3 or x.shape[1] != config.channels:
            raise ValueError(f"expected x shaped [B, {config.channels}, T], got {list(x.shape)}")
        batch, _, length = x.shape
        joint = torch.cat(
            [
                sinusoidal(c_noise, config.noise_dim).to(x.dtype),
                embedding_input(cond, batch, config.embedding_dim, x),
            ],
            dim=1,
        )
        emb = self.embed(joint)  # (B, E)
        h = torch.cat([x, context_input(cond, x, config.context_channels)], dim=1)
        multiple = 2 ** (len(config.multipliers) - 1)
        pad = (-length) % multiple
        h = F.pad(h, (0, pad))
        h = self.conv_in(h)  # (B, C0, T')
        skips = [h]
        k = 0
        for level in range(len(config.multipliers)):
            for _ in range(config.blocks):
                h = self.down_attn[k](self.down[k](h, emb))
                skips.append(h)
                k += 1
            if level < len(config.multipliers) - 1:
                h = self.downsample[level](h)  # (B, C, T / 2)
                skips.append(h)
        h = self.mid_attn(self.mid[0](h, emb))
        h = self.mid[1](h, emb)
        k = 0
        for i, level in enumerate(reversed(range(len(config.multipliers)))):
            for _ in range(config.blocks + 1):
                h = self.up_attn[k](self.up[k](torch.cat([h, skips.pop()], dim=1), emb))
                k += 1
            if level > 0:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out: Tensor = self.conv_out(F.silu(self.norm_out(h)))
        return out[..., :length]
