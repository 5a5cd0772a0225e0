"""The bridge prior's backbone: a residual MLP with AdaLN-Zero over CLAP embeddings.

DiT follow-up paper 4.2 (CLAP_beta): "1024 hidden units and eight residual dense blocks
with Adaptive Layer Normalization (AdaLN) layers to integrate conditional text embeddings
from CLAP". Each block is ``h + gate * MLP(LN(h) * (1 + scale) + shift)`` with ``shift,
scale, gate`` computed from the sum of a noise-level embedding and the (masked) text
embedding, and starting at zero (DiT's AdaLN-Zero), so the untrained network is the
identity map into a zero output.

It satisfies the latent-diffusion Backbone contract ``forward(x[B, D, T], c_noise[B],
cond) -> [B, D, T]`` with ``D`` the embedding width and (usually) ``T = 1``: every frame is
mapped independently. Registered in latent-diffusion's backbone registry as
``"bridge-mlp"``, so its preconditioning, loss, sampler, guidance, trainer and checkpoints
are latent-diffusion's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from openriff.latent_diffusion.adaln import AdaLNZero, modulate
from openriff.latent_diffusion.conditioning import Conditioning


@dataclass(frozen=True)
class BridgeMLPConfig:
    """Hyper-parameters of :class:`BridgeMLP`.

    Attributes:
        channels: width of the embeddings generated (512 for LAION-CLAP).
        embedding_dim: width of the conditioning (text) embedding (0: unconditional only).
        width: hidden units of the residual blocks.
        depth: residual dense blocks.
        mlp_ratio: hidden expansion inside a block (1: the paper's 1024 hidden units).
        cond_dim: width of the conditioning vector (noise level + text).
        dropout: dropout inside the blocks.
    """

    channels: int = 512
    embedding_dim: int = 512
    width: int = 1024
    depth: int = 8
    mlp_ratio: int = 1
    cond_dim: int = 1024
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("channels", "width", "depth", "mlp_ratio", "cond_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.embedding_dim < 0:
            raise ValueError("embedding_dim must be >= 0")


class ResidualDenseBlock(nn.Module):
    """``h + gate * MLP(modulate(LN(h)))`` with AdaLN-Zero modulation from ``cond``."""

    def __init__(self, config: BridgeMLPConfig) -> None:
        super().__init__()
        w = config.width
        self.norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(w, w * config.mlp_ratio),
            nn.SiLU(),
            nn.Dropout(config.dropout),
            nn.Linear(w * config.mlp_ratio, w),
        )
        self.modulation = nn.Linear(config.cond_dim, 3 * w)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        """``[B, T, W]``, ``[B, C]`` -> ``[B, T, W]``."""
        shift, scale, gate = self.modulation(F.silu(cond)).chunk(3, dim=1)  # (B, W) each
        out: Tensor = h + gate[:, None] * self.mlp(modulate(self.norm(h), shift, scale))
        return out


class BridgeMLP(AdaLNZero):
    """Denoising MLP over embeddings: ``forward(x, c_noise, cond) -> [B, D, T]``.

    The conditioning vector, output head and initialisation are latent-diffusion's
    AdaLN-Zero frame (:class:`~openriff.latent_diffusion.adaln.AdaLNZero`), as the DiT's.

    Args:
        config: hyper-parameters (presets in :data:`PRESETS`).
    """

    def __init__(self, config: BridgeMLPConfig) -> None:
        super().__init__()
        self.config = config
        w, c = config.width, config.cond_dim
        self.x_in = nn.Linear(config.channels, w)
        self.add_conditioning(c, config.embedding_dim)
        self.blocks = nn.ModuleList(ResidualDenseBlock(config) for _ in range(config.depth))
        self.add_head(w, c, config.channels)
        self.initialize_weights()

    def forward(self, x: Tensor, c_noise: Tensor, cond: Conditioning | None = None) -> Tensor:
        """``[B, D, T]``, ``[B]``, conditioning (text embedding ``[B, E]``) -> ``[B, D, T]``."""
        config = self.config
        if x.ndim != 3 or x.shape[1] != config.channels:
            raise ValueError(f"expected x shaped [B, {config.channels}, T], got {list(x.shape)}")
        if cond is not None and cond.context is not None:
            raise ValueError("the bridge MLP takes no context latents, only an embedding")
        vector = self.conditioning_vector(c_noise, cond, x)  # (B, C)
        return self.run_blocks(self.x_in(x.transpose(1, 2)), vector)  # (B, T, W) -> (B, D, T)


PRESETS: dict[str, BridgeMLPConfig] = {
    # DiT follow-up paper 4.2: 1024 hidden units, eight residual dense blocks.
    "paper": BridgeMLPConfig(),
    # Trains in seconds on a CPU (tests, the synthetic modality-gap task).
    "tiny": BridgeMLPConfig(channels=32, embedding_dim=32, width=128, depth=3, cond_dim=128),
}
