"""The stereo transformer CAE (``transformer``; Music2Latent2 style, DiT paper 3.1).

Stereo in and out at 128x compression: 64 latent channels per 4096 stereo samples. The
spectrogram ``[B, 2C, F, T]`` is cut into tokens of ``patch_frames`` STFT frames (all
channels and bins of those frames in one token).

* **Encoder**: a transformer over the patch tokens of a window plus one learned *summary
  token* per latent frame; each summary token's output is projected to the 64 latent
  channels (tanh-bounded), so latents summarise their stretch of audio.
* **Decoder**: a transformer that expands each latent into the feature tokens of its
  ``frames_per_latent / patch_frames`` patches.
* **Consistency model**: a transformer with AdaLN-Zero noise conditioning that denoises
  the patches of one *block* (``block_latents`` latent frames) given the decoder features
  and the previous block, already decoded, as context. Attention is block-causal (the
  context never looks ahead), so decoding runs block by block with bounded memory. The
  context is re-noised to ``context_sigma`` in training and decoding alike, which makes
  decoding robust to its own imperfect output; training drops the context for a share of
  examples so the first block of a window decodes without one.

Long audio is processed in windows of ``chunk_latents`` frames with overlap (see
:mod:`openriff.cae.codec`); within a window, decoding is sequential over blocks.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openriff.cae.codec import WINDOW_BATCH, SpectrogramCodec
from openriff.cae.consistency import (
    ConsistencyConfig,
    consistency_loss,
    scalings,
)
from openriff.cae.consistency import sample as consistency_sample
from openriff.cae.layers import NoiseEmbedding
from openriff.cae.noise import Noise
from openriff.cae.spectral import SpectrogramConfig


@dataclass(frozen=True)
class TransformerCAEConfig:
    """Hyper-parameters of :class:`TransformerCAE`.

    Attributes:
        channels: audio channels (2: stereo).
        sample_rate: audio sample rate.
        latent_dim: latent channels ``D``.
        frames_per_latent: STFT frames per latent frame (8 x hop 512 = 4096 samples).
        patch_frames: STFT frames per token.
        width: transformer width.
        heads: attention heads.
        mlp_ratio: MLP hidden width / width.
        encoder_layers: encoder transformer blocks.
        decoder_layers: latent-to-feature transformer blocks.
        denoiser_layers: consistency-model transformer blocks.
        block_latents: latent frames per causal decoding block.
        chunk_latents: latent frames per codec window.
        overlap_latents: context frames on each side of a codec window.
        context_sigma: noise level of the previous block given as context.
        context_dropout: share of training examples without context.
        spectrogram: STFT representation.
        consistency: noise levels and training settings.
        decoding: how ``decode`` makes audio: ``"consistency"`` (the consistency model) or
            ``"magnitude"`` (the magnitude preview and Griffin-Lim phases; see
            :mod:`openriff.cae.codec`). It changes nothing in training.
    """

    channels: int = 2
    sample_rate: int = 48_000
    latent_dim: int = 64
    frames_per_latent: int = 8
    patch_frames: int = 2
    width: int = 768
    heads: int = 12
    mlp_ratio: float = 4.0
    encoder_layers: int = 12
    decoder_layers: int = 4
    denoiser_layers: int = 12
    block_latents: int = 8
    chunk_latents: int = 64
    overlap_latents: int = 8
    context_sigma: float = 0.05
    context_dropout: float = 0.2
    spectrogram: SpectrogramConfig = field(default_factory=SpectrogramConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    decoding: str = "consistency"

    def __post_init__(self) -> None:
        if self.frames_per_latent % self.patch_frames:
            raise ValueError("patch_frames must divide frames_per_latent")
        if self.width % self.heads:
            raise ValueError("heads must divide width")
        if self.chunk_latents % self.block_latents:
            raise ValueError("block_latents must divide chunk_latents")
        if self.chunk_latents < max(1, 2 * self.overlap_latents):
            raise ValueError("chunk_latents must be at least 2 * overlap_latents")

    @property
    def tokens_per_latent(self) -> int:
        """Patch tokens per latent frame."""
        return self.frames_per_latent // self.patch_frames

    @property
    def patch_dim(self) -> int:
        """Values per patch token: ``2C * F * patch_frames``."""
        return 2 * self.channels * self.spectrogram.bins * self.patch_frames


def sinusoidal_positions(count: int, width: int, device: torch.device) -> Tensor:
    """``[count, width]`` fixed sinusoidal position codes (any length)."""
    half = width // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=device) / half)
    angles = torch.arange(count, device=device, dtype=torch.float32)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block; with ``cond_dim`` it is an AdaLN-Zero block (DiT).

    Args:
        width: token width.
        heads: attention heads.
        mlp_ratio: hidden width of the MLP / width.
        cond_dim: width of the conditioning vector, or None for a plain block.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, cond_dim: int | None) -> None:
        super().__init__()
        self.heads = heads
        affine = cond_dim is None
        self.norm1 = nn.LayerNorm(width, elementwise_affine=affine, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=affine, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        # shift, scale, gate for attention and MLP (AdaLN-Zero).
        self.modulation = nn.Linear(cond_dim, 6 * width) if cond_dim else None

    def forward(self, x: Tensor, cond: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``[B, N, W]`` (+ cond ``[B, E]``, boolean mask ``[B, 1, N, N]``) -> ``[B, N, W]``."""
        if self.modulation is not None:
            if cond is None:
                raise ValueError("this block is conditioned: pass cond")
            mods = self.modulation(F.silu(cond))[:, None].chunk(6, dim=-1)  # 6 x (B, 1, W)
            shift1, scale1, gate1, shift2, scale2, gate2 = mods
        else:
            shift1 = scale1 = shift2 = scale2 = torch.zeros((), device=x.device)
            gate1 = gate2 = torch.ones((), device=x.device)
        b, n, w = x.shape
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, w // self.heads).transpose(1, 3).unbind(2)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, N, W/H)
        x = x + gate1 * self.proj(attn.transpose(1, 2).reshape(b, n, w))
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class TransformerCAE(SpectrogramCodec):
    """The stereo transformer consistency autoencoder; a :class:`LatentCodec`.

    Args:
        config: hyper-parameters (see :mod:`openriff.cae.presets` for named ones).
    """

    # Its windows are a few hundred tokens: batched, a CPU's matrix products fill up too
    # (95 s of ``stereo`` on 2 cores: 32.2 s one by one, 17.9 s in sixteens).
    cpu_window_batch = WINDOW_BATCH

    def __init__(self, config: TransformerCAEConfig) -> None:
        super().__init__(config)
        w, tpl = config.width, config.tokens_per_latent

        def blocks(count: int, cond: int | None) -> nn.ModuleList:
            return nn.ModuleList(
                TransformerBlock(w, config.heads, config.mlp_ratio, cond) for _ in range(count)
            )

        self.enc_in = nn.Linear(config.patch_dim, w)
        self.summary = nn.Parameter(torch.zeros(1, 1, w))
        self.enc_blocks = blocks(config.encoder_layers, None)
        self.enc_norm = nn.LayerNorm(w)
        self.enc_out = nn.Linear(w, config.latent_dim)

        self.dec_in = nn.Linear(config.latent_dim, w * tpl)
        self.dec_blocks = blocks(config.decoder_layers, None)
        self.dec_norm = nn.LayerNorm(w)
        self.preview_out = nn.Linear(w, config.patch_dim // 2)

        self.embed = NoiseEmbedding(w)
        self.den_in = nn.Linear(config.patch_dim, w)
        self.is_context = nn.Parameter(torch.zeros(1, 1, w))
        self.den_blocks = blocks(config.denoiser_layers, w)
        self.den_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.den_modulation = nn.Linear(w, 2 * w)
        self.den_out = nn.Linear(w, config.patch_dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """All initialisation in one place: Xavier linears, AdaLN-Zero, zero outputs."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.summary, std=0.02)
        nn.init.normal_(self.is_context, std=0.02)
        for block in self.den_blocks:
            modulation = block.modulation
            if isinstance(modulation, nn.Linear):
                nn.init.zeros_(modulation.weight)
                nn.init.zeros_(modulation.bias)
        for linear in (self.den_modulation, self.den_out):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    @property
    def training_latents(self) -> int:
        """Training crops hold a context block and a target block."""
        return 2 * self.config.block_latents

    # Patches ---------------------------------------------------------------------------

    def patchify(self, spec: Tensor) -> Tensor:
        """``[B, 2C, F, T]`` -> tokens ``[B, T / p, 2C * F * p]``."""
        b, c, f, t = spec.shape
        p = self.config.patch_frames
        return spec.reshape(b, c, f, t // p, p).permute(0, 3, 1, 2, 4).reshape(b, t // p, -1)

    def unpatchify(self, tokens: Tensor) -> Tensor:
        """Inverse of :meth:`patchify`."""
        b, n, _ = tokens.shape
        p, bins = self.config.patch_frames, self.spectrogram.bins
        x = tokens.reshape(b, n, 2 * self.channels, bins, p).permute(0, 2, 3, 1, 4)
        return x.reshape(b, 2 * self.channels, bins, n * p)

    # Networks --------------------------------------------------------------------------

    def encode_spectrogram(self, spec: Tensor) -> Tensor:
        """``[B, 2C, F, 8n]`` -> latents ``[B, D, n]`` in (-1, 1)."""
        tokens = self.enc_in(self.patchify(spec))  # (B, N, W)
        b, n_tok, w = tokens.shape
        n = n_tok // self.config.tokens_per_latent
        pos = sinusoidal_positions(n_tok, w, spec.device)
        # Summary token j sits at the position of the middle of latent frame j's patches.
        centre = (torch.arange(n, device=spec.device) + 0.5) * self.config.tokens_per_latent
        summary_pos = sinusoidal_positions(n_tok + 1, w, spec.device)[centre.long()]
        x = torch.cat([tokens + pos, self.summary.expand(b, n, w) + summary_pos], dim=1)
        for block in self.enc_blocks:
            x = block(x)
        return torch.tanh(self.enc_out(self.enc_norm(x[:, n_tok:]))).transpose(1, 2)

    def features(self, latents: Tensor) -> Tensor:
        """Latents ``[B, D, n]`` -> feature tokens ``[B, n * tokens_per_latent, W]``."""
        b, _, n = latents.shape
        w = self.config.width
        x = self.dec_in(latents.transpose(1, 2)).reshape(b, n * self.config.tokens_per_latent, w)
        x = x + sinusoidal_positions(x.shape[1], w, latents.device)
        for block in self.dec_blocks:
            x = block(x)
        return self.dec_norm(x)

    def preview(self, features: Tensor) -> Tensor:
        """Feature tokens ``[B, N, W]`` -> log compressed magnitudes ``[B, C, F, N * p]``."""
        b, n, _ = features.shape
        p, bins = self.config.patch_frames, self.spectrogram.bins
        x = self.preview_out(features).reshape(b, n, self.channels, bins, p)
        return x.permute(0, 2, 3, 1, 4).reshape(b, self.channels, bins, n * p)

    def denoise(
        self,
        noisy: Tensor,
        sigma: Tensor,
        features: Tensor,
        context: Tensor | None,
        has_context: Tensor | None = None,
    ) -> Tensor:
        """The consistency function for one block, given the previous block as context.

        Args:
            noisy: ``[B, 2C, F, T]`` block plus noise of level ``sigma``.
            sigma: ``[B]`` noise levels.
            features: decoder features of (context block +) this block ``[B, Nc + N, W]``.
            context: previous block ``[B, 2C, F, Tc]`` at ``context_sigma``, or None.
            has_context: ``[B]`` booleans; False hides the context from that example.
        """
        c_skip, c_out, c_in, c_noise = scalings(sigma, self.consistency)
        view = (-1, 1, 1, 1)
        cur = self.den_in(self.patchify(noisy * c_in.view(view)))  # (B, N, W)
        b, n, w = cur.shape
        parts = [cur]
        n_ctx = 0
        if context is not None:
            ctx_scale = 1.0 / math.sqrt(
                self.config.context_sigma**2 + self.consistency.sigma_data**2
            )
            ctx = self.den_in(self.patchify(context * ctx_scale)) + self.is_context
            n_ctx = ctx.shape[1]
            parts.insert(0, ctx)
        x = torch.cat(parts, dim=1) + features[:, -(n_ctx + n) :]
        x = x + sinusoidal_positions(n_ctx + n, w, x.device)
        mask = None
        if n_ctx:
            mask = self._block_causal_mask(b, n_ctx, n, has_context, x.device)
        emb = self.embed(c_noise)  # (B, W)
        for block in self.den_blocks:
            x = block(x, emb, mask)
        shift, scale = self.den_modulation(F.silu(emb))[:, None].chunk(2, dim=-1)
        out = self.den_out(self.den_norm(x[:, n_ctx:]) * (1 + scale) + shift)
        return c_skip.view(view) * noisy + c_out.view(view) * self.unpatchify(out)

    @staticmethod
    def _block_causal_mask(
        batch: int, n_ctx: int, n: int, has_context: Tensor | None, device: torch.device
    ) -> Tensor:
        total = n_ctx + n
        is_ctx = torch.arange(total, device=device) < n_ctx
        # Context attends to context; the block attends to everything; never ahead.
        allowed = is_ctx[None, :] | ~is_ctx[:, None]  # (Nq, Nk)
        allowed = allowed[None].expand(batch, total, total).clone()
        if has_context is not None:
            hidden = ~has_context.to(device)  # (B,)
            allowed[:, n_ctx:, :n_ctx] &= ~hidden[:, None, None]
        allowed |= torch.eye(total, dtype=torch.bool, device=device)[None]
        return allowed[:, None]  # (B, 1, Nq, Nk)

    def _denoise_block(
        self, noisy: Tensor, sigma: Tensor, *, features: Tensor, context: Tensor | None
    ) -> Tensor:
        return self.denoise(noisy, sigma, features, context)

    # Codec -----------------------------------------------------------------------------

    def preview_spectrogram(self, latents: Tensor) -> Tensor:
        """Latents ``[B, D, n]`` -> log compressed magnitudes ``[B, C, F, 8n]``."""
        return self.preview(self.features(latents))

    def decode_spectrogram(self, latents: Tensor, *, steps: int, noise: Noise) -> Tensor:
        """Latents ``[B, D, n]`` -> spectrogram ``[B, 2C, F, 8n]``, block after block."""
        block = self.config.block_latents
        fpl = self.frames_per_latent
        out: list[Tensor] = []
        previous: Tensor | None = None
        for start in range(0, latents.shape[-1], block):
            lo = max(0, start - block) if previous is not None else start
            feats = self.features(latents[..., lo : start + block])
            n = min(block, latents.shape[-1] - start)
            context = None
            if previous is not None:
                context = previous + self.config.context_sigma * noise(tuple(previous.shape))
            shape = (latents.shape[0], 2 * self.channels, self.spectrogram.bins, n * fpl)
            current = consistency_sample(
                functools.partial(self._denoise_block, features=feats, context=context),
                shape,
                steps,
                self.consistency,
                noise=noise,
                device=latents.device,
                dtype=latents.dtype,
            )
            out.append(current)
            previous = current
        return torch.cat(out, dim=-1)

    def forward(
        self,
        spec: Tensor,
        noise: Tensor,
        sigma: Tensor,
        sigma_teacher: Tensor,
        uniform: Tensor,
        progress: float = 1.0,
    ) -> Tensor:
        """Training loss of crops of two blocks: the second is denoised given the first.

        Args:
            spec: ``[B, 2C, F, 2 * block_latents * 8]`` clean spectrograms.
            noise: standard normal like ``spec``; its first block re-noises the context,
                its second is the diffusion noise of the target block.
            sigma: ``[B]`` student noise levels.
            sigma_teacher: ``[B]`` teacher noise levels.
            uniform: ``[B]`` uniform draws; below ``context_dropout`` hides the context.
            progress: share of training done (consistency-term ramp).
        """
        frames = self.config.block_latents * self.frames_per_latent
        if spec.shape[-1] != 2 * frames:
            raise ValueError(
                f"transformer CAE trains on crops of 2 blocks ({2 * frames} frames, "
                f"crop_latents = {2 * self.config.block_latents}), got {spec.shape[-1]} frames"
            )
        features = self.features(self.encode_spectrogram(spec))
        feats = self.conditioning(features)
        context = spec[..., :frames] + self.config.context_sigma * noise[..., :frames]
        has_context = uniform >= self.config.context_dropout
        target = spec[..., frames:]
        ct, student = consistency_loss(
            lambda x, s: self.denoise(x, s, feats, context, has_context),
            target,
            noise[..., frames:],
            sigma,
            sigma_teacher,
            self.consistency,
        )
        return self.objective(ct, student, target, progress, self.preview(features)[..., frames:])
