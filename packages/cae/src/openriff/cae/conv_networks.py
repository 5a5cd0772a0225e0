"""The networks of the Diff-A-Riff CAE (:mod:`openriff.cae.conv`) and their config.

The encoder, the decoder pyramid and the consistency U-Net (Diff-A-Riff 4.2.1,
Music2Latent architecture family).

Resolution levels (default): ``(F, T) = (1024, 8n) -> (512, 4n) -> (128, 2n) -> (32, n) ->
(8, n)`` for ``n`` latent frames, with the (frequency, time) factors in
``ConvCAEConfig.factors``. The encoder, the decoder pyramid and the U-Net share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from openriff.cae.consistency import ConsistencyConfig
from openriff.cae.layers import (
    Attention,
    Downsample,
    NoiseEmbedding,
    ResBlock,
    Upsample,
    conv,
    group_norm,
)
from openriff.cae.spectral import SpectrogramConfig


@dataclass(frozen=True)
class ConvCAEConfig:
    """Hyper-parameters of :class:`ConvCAE`.

    Attributes:
        channels: audio channels (1 for the Diff-A-Riff CAE).
        sample_rate: audio sample rate the model is trained at.
        latent_dim: latent channels ``D``.
        base_channels: channels at the finest resolution.
        multipliers: channel multiplier per resolution level.
        factors: (frequency, time) downsampling between consecutive levels.
        unet_blocks: residual blocks per level in each half of the consistency U-Net.
        encoder_blocks: residual blocks per level in the encoder and decoder.
        attention: whether a level has self-attention (U-Net, encoder and decoder).
        heads: attention heads.
        bottleneck_channels: width of the 1-D blocks next to the latents.
        bottleneck_blocks: 1-D residual blocks in the encoder head and decoder stem.
        emb_dim: width of the noise-level embedding.
        dropout: dropout inside the U-Net's residual blocks.
        chunk_latents: latent frames per window when encoding/decoding long audio.
        overlap_latents: context frames on each side of a window.
        spectrogram: STFT representation.
        consistency: noise levels and consistency-training settings.
        decoding: how ``decode`` makes audio: ``"consistency"`` (the consistency model) or
            ``"magnitude"`` (the magnitude preview and Griffin-Lim phases; see
            :mod:`openriff.cae.codec`). It changes nothing in training.
        consistency_model: whether the model has the consistency U-Net. Without it the
            model is a magnitude autoencoder: encoder, decoder pyramid and magnitude
            preview, trained on the preview terms alone (``preview_weight``,
            ``preview_convergence_weight``) and decoded with ``"magnitude"`` only. A
            magnitude-decoded codec never uses the U-Net, so leaving it out spends the
            whole training budget (about 2.5x the steps per second on a CPU) on what
            decoding uses.
        frequency_head: whether the decoder also reads each bin's frequency off the
            latents (:meth:`Decoder.frequencies`, trained with
            ``ConsistencyConfig.frequency_weight``). Magnitude decoding then gives the
            partials those frequencies instead of reading them from the magnitudes of
            neighbouring bins, whose ratios a small decoder does not get right to a few
            cents (see :mod:`openriff.cae.codec`).
    """

    channels: int = 1
    sample_rate: int = 48_000
    latent_dim: int = 64
    base_channels: int = 64
    multipliers: tuple[int, ...] = (1, 2, 4, 4, 4)
    factors: tuple[tuple[int, int], ...] = ((2, 2), (4, 2), (4, 2), (4, 1))
    unet_blocks: tuple[int, ...] = (2, 2, 2, 2, 2)
    encoder_blocks: tuple[int, ...] = (1, 1, 1, 1, 1)
    attention: tuple[bool, ...] = (False, False, False, True, True)
    heads: int = 4
    bottleneck_channels: int = 512
    bottleneck_blocks: int = 4
    emb_dim: int = 256
    dropout: float = 0.0
    chunk_latents: int = 64
    overlap_latents: int = 4
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    decoding: str = "consistency"
    consistency_model: bool = True
    frequency_head: bool = False

    def __post_init__(self) -> None:
        if not self.consistency_model:
            if self.decoding != "magnitude":
                raise ValueError(
                    "a model without a consistency model decodes magnitudes only: "
                    f"set decoding='magnitude' (got {self.decoding!r})"
                )
            if not (self.consistency.preview_weight or self.consistency.preview_convergence_weight):
                raise ValueError(
                    "a model without a consistency model trains on the preview terms alone: "
                    "preview_weight or preview_convergence_weight must be > 0"
                )
        levels = len(self.multipliers)
        for name in ("unet_blocks", "encoder_blocks", "attention"):
            if len(getattr(self, name)) != levels:
                raise ValueError(f"{name} needs one entry per level ({levels})")
        if len(self.factors) != levels - 1:
            raise ValueError(f"factors needs {levels - 1} entries (between levels)")
        if self.spectrogram.bins % math.prod(f for f, _ in self.factors):
            raise ValueError("the frequency factors must divide the number of bins")
        if self.chunk_latents < max(1, 2 * self.overlap_latents):
            raise ValueError("chunk_latents must be at least 2 * overlap_latents")

    @property
    def frames_per_latent(self) -> int:
        """STFT frames per latent frame (product of the time factors)."""
        return math.prod(t for _, t in self.factors)

    @property
    def bottom_bins(self) -> int:
        """Frequency bins left at the coarsest level."""
        return self.spectrogram.bins // math.prod(f for f, _ in self.factors)


def _level_shapes(config: ConvCAEConfig) -> list[int]:
    """Channels of each level."""
    return [config.base_channels * m for m in config.multipliers]


class _Stage(nn.Module):
    """Residual blocks (+ attention after each) of one level."""

    def __init__(
        self, dims: int, channels: int, blocks: int, attention: bool, heads: int, emb: int | None
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(dims, channels, channels, emb) for _ in range(blocks))
        self.attn = nn.ModuleList(
            Attention(channels, heads) if attention else nn.Identity() for _ in range(blocks)
        )

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        for block, attn in zip(self.blocks, self.attn, strict=True):
            x = attn(block(x, emb))
        return x


class Encoder(nn.Module):
    """Spectrogram ``[B, 2C, F, 8n]`` -> latents ``[B, D, n]`` in (-1, 1)."""

    def __init__(self, config: ConvCAEConfig) -> None:
        super().__init__()
        chans = _level_shapes(config)
        bins = config.spectrogram.bins
        self.stem = conv(2, 2 * config.channels, chans[0], 3)
        # Convolutions are shift-invariant in frequency; spectra are not.
        self.freq_pos = nn.Parameter(torch.zeros(1, chans[0], bins, 1))
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level, c in enumerate(chans):
            self.stages.append(
                _Stage(
                    2, c, config.encoder_blocks[level], config.attention[level], config.heads, None
                )
            )
            if level < len(config.factors):
                self.downs.append(Downsample(c, chans[level + 1], config.factors[level]))
        flat = chans[-1] * config.bottom_bins
        self.to_1d = conv(1, flat, config.bottleneck_channels, 1)
        self.head = nn.ModuleList(
            ResBlock(1, config.bottleneck_channels, config.bottleneck_channels)
            for _ in range(config.bottleneck_blocks)
        )
        self.norm_out = group_norm(config.bottleneck_channels)
        self.out = conv(1, config.bottleneck_channels, config.latent_dim, 1)

    def forward(self, spec: Tensor) -> Tensor:
        """``[B, 2C, F, 8n]`` -> ``[B, D, n]``."""
        x = self.stem(spec) + self.freq_pos  # (B, C0, F, T)
        for level, stage in enumerate(self.stages):
            x = stage(x)
            if level < len(self.downs):
                x = self.downs[level](x)
        b, c, f, t = x.shape
        x = self.to_1d(x.reshape(b, c * f, t))  # (B, Cb, n)
        for block in self.head:
            x = block(x)
        return torch.tanh(self.out(nn.functional.silu(self.norm_out(x))))  # (B, D, n)


class Decoder(nn.Module):
    """Latents ``[B, D, n]`` -> feature pyramid, finest level first."""

    def __init__(self, config: ConvCAEConfig) -> None:
        super().__init__()
        chans = _level_shapes(config)
        self.bottom_bins = config.bottom_bins
        self.stem = conv(1, config.latent_dim, config.bottleneck_channels, 1)
        self.body = nn.ModuleList(
            ResBlock(1, config.bottleneck_channels, config.bottleneck_channels)
            for _ in range(config.bottleneck_blocks)
        )
        self.to_2d = conv(1, config.bottleneck_channels, chans[-1] * config.bottom_bins, 1)
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        for level in reversed(range(len(chans))):
            self.stages.append(
                _Stage(
                    2,
                    chans[level],
                    config.encoder_blocks[level],
                    config.attention[level],
                    config.heads,
                    None,
                )
            )
            if level > 0:
                self.ups.append(Upsample(chans[level], chans[level - 1], config.factors[level - 1]))
        self.preview_norm = group_norm(chans[0])
        self.preview_out = conv(2, chans[0], config.channels, 1)
        self.frequency_out = (
            # A partial's lobe spans 4 bins: the head looks at a 3x3 neighbourhood.
            nn.Sequential(
                conv(2, chans[0], 2 * chans[0], 3),
                nn.SiLU(),
                conv(2, 2 * chans[0], config.channels, 1),
            )
            if config.frequency_head
            else None
        )

    def forward(self, latents: Tensor) -> list[Tensor]:
        """``[B, D, n]`` -> one ``[B, C_l, F_l, T_l]`` map per level, finest first."""
        x = self.stem(latents)  # (B, Cb, n)
        for block in self.body:
            x = block(x)
        b, _, n = x.shape
        x = self.to_2d(x).reshape(b, -1, self.bottom_bins, n)  # (B, C_L, F_L, n)
        pyramid = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            pyramid.append(x)
            if i < len(self.ups):
                x = self.ups[i](x)
        return pyramid[::-1]

    def preview(self, pyramid: list[Tensor]) -> Tensor:
        """Log compressed magnitudes ``[B, C, F, T]`` read off the finest level (training)."""
        out: Tensor = self.preview_out(nn.functional.silu(self.preview_norm(pyramid[0])))
        return out

    def frequencies(self, pyramid: list[Tensor]) -> Tensor | None:
        """Bin offsets ``[B, C, F, T]`` in (-2, 2) of each bin's partial, or None without a head.

        The quantity :func:`~openriff.cae.spectral.instantaneous_frequency` measures.
        """
        if self.frequency_out is None:
            return None
        out = self.frequency_out(nn.functional.silu(self.preview_norm(pyramid[0])))
        return 2.0 * torch.tanh(out)


class ConsistencyUNet(nn.Module):
    """``F(c_in * x_sigma, c_noise | pyramid)`` over spectrograms ``[B, 2C, F, T]``."""

    def __init__(self, config: ConvCAEConfig) -> None:
        super().__init__()
        chans = _level_shapes(config)
        bins = config.spectrogram.bins
        emb = config.emb_dim
        self.embed = NoiseEmbedding(emb)
        # Noise-dependent per-frequency gains on the input and output (Music2Latent's
        # frequency scaling): a cheap way to give the shift-invariant convolutions a
        # frequency-dependent response.
        self.gain_in = nn.Linear(emb, bins)
        self.gain_out = nn.Linear(emb, bins)
        self.stem = conv(2, 2 * config.channels, chans[0], 3)
        self.levels = len(chans)
        self.down_inject = nn.ModuleList()
        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level, c in enumerate(chans):
            for _ in range(config.unet_blocks[level]):
                self.down_inject.append(conv(2, c, c, 1))
                self.down_blocks.append(ResBlock(2, c, c, emb, config.dropout))
                self.down_attn.append(
                    Attention(c, config.heads) if config.attention[level] else nn.Identity()
                )
            if level < self.levels - 1:
                self.downs.append(Downsample(c, chans[level + 1], config.factors[level]))
        self.up_inject = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.ups = nn.ModuleList()
        for level in reversed(range(self.levels)):
            c = chans[level]
            for _ in range(config.unet_blocks[level]):
                self.up_inject.append(conv(2, c, c, 1))
                self.up_blocks.append(ResBlock(2, c, c, emb, config.dropout))
                self.up_attn.append(
                    Attention(c, config.heads) if config.attention[level] else nn.Identity()
                )
            if level > 0:
                self.ups.append(Upsample(c, chans[level - 1], config.factors[level - 1]))
        self.blocks_per_level = config.unet_blocks
        self.norm_out = group_norm(chans[0])
        self.out = conv(2, chans[0], 2 * config.channels, 3)

    def forward(self, x: Tensor, c_noise: Tensor, pyramid: list[Tensor]) -> Tensor:
        """``[B, 2C, F, T]``, ``[B]``, pyramid -> ``[B, 2C, F, T]``."""
        emb = self.embed(c_noise)  # (B, E)
        x = self.stem(x * (1.0 + self.gain_in(emb))[:, None, :, None])  # (B, C0, F, T)
        skips = []
        k = 0
        for level in range(self.levels):
            for _ in range(self.blocks_per_level[level]):
                x = (x + self.down_inject[k](pyramid[level])) / math.sqrt(2.0)
                x = self.down_attn[k](self.down_blocks[k](x, emb))
                skips.append(x)
                k += 1
            if level < self.levels - 1:
                x = self.downs[level](x)
        k = 0
        for i, level in enumerate(reversed(range(self.levels))):
            for _ in range(self.blocks_per_level[level]):
                x = (x + skips.pop() + self.up_inject[k](pyramid[level])) / math.sqrt(3.0)
                x = self.up_attn[k](self.up_blocks[k](x, emb))
                k += 1
            if level > 0:
                x = self.ups[i](x)
        x = nn.functional.silu(self.norm_out(x)) * (1.0 + self.gain_out(emb))[:, None, :, None]
        out: Tensor = self.out(x)
        return out
