"""Datasets for the trainer: the contract, in-memory latents and a synthetic task.

The synthetic conditional sequence task serves smoke tests and backbone comparisons.

The trainer draws the indices of each *global* batch from its generator and asks the
dataset for them (each process only for its shard), so a dataset is anything with
``__len__`` and ``batch(indices) -> (target [B, D, T], Conditioning)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning


class LatentDataset(Protocol):
    """What the trainer reads: examples by index."""

    def __len__(self) -> int:
        """Number of examples."""
        ...

    def batch(self, indices: Tensor) -> tuple[Tensor, Conditioning]:
        """Targets ``[B, D, T]`` and their conditioning for ``indices`` ``[B]``."""
        ...


@dataclass(frozen=True)
class TensorLatents:
    """Latents held in memory: targets ``[N, D, T]``, optional context and embeddings."""

    target: Tensor
    context: Tensor | None = None
    embedding: Tensor | None = None

    def __post_init__(self) -> None:
        if self.target.ndim != 3 or self.target.shape[0] == 0:
            raise ValueError(f"target must be a non-empty [N, D, T], got {list(self.target.shape)}")
        if not torch.isfinite(self.target).all():
            raise ValueError("target latents contain NaN or infinite values")
        n, _, t = self.target.shape
        if self.context is not None and (self.context.shape[0] != n or self.context.shape[2] != t):
            raise ValueError(f"context must be [{n}, Dc, {t}], got {list(self.context.shape)}")
        if self.embedding is not None and (
            self.embedding.ndim != 2 or self.embedding.shape[0] != n
        ):
            raise ValueError(f"embedding must be [{n}, E], got {list(self.embedding.shape)}")

    def __len__(self) -> int:
        """Number of examples."""
        return int(self.target.shape[0])

    def batch(self, indices: Tensor) -> tuple[Tensor, Conditioning]:
        """Targets and conditioning of ``indices``."""
        pick = indices.to(self.target.device)
        context = None if self.context is None else self.context[pick]
        embedding = None if self.embedding is None else self.embedding[pick]
        return self.target[pick], Conditioning(context=context, embedding=embedding)


class SyntheticTask:
    """A conditional sequence task with a known answer.

    The context is a smooth random sequence ``c [Dc, T]``; an embedding selects one of
    ``variants`` fixed variants ``k``; the target is a fixed nonlinear function of the
    context, changed by the variant:

        ``y[:, t] = 0.6 g_k * tanh(M c[:, t]) + b_k``

    with a fixed matrix ``M``, per-variant signs ``g_k`` and offsets ``b_k``. Everything is
    drawn from ``seed``, so two tasks with the same arguments are the same task.

    Args:
        channels: target channels ``D``.
        context_channels: context channels ``Dc``.
        embedding_dim: embedding width ``E`` (each variant has a fixed random embedding).
        variants: number of variants.
        seed: seed of the task's fixed parameters.
    """

    def __init__(
        self,
        channels: int = 8,
        context_channels: int = 8,
        embedding_dim: int = 16,
        variants: int = 4,
        seed: int = 0,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.channels, self.context_channels, self.variants = channels, context_channels, variants
        self.mixing = torch.randn(channels, context_channels, generator=g) * (
            1.5 / context_channels**0.5
        )
        self.signs = torch.randint(0, 2, (variants, channels), generator=g).float() * 2 - 1
        self.offsets = 0.3 * torch.randn(variants, channels, generator=g)
        self.embeddings = torch.randn(variants, embedding_dim, generator=g)

    def truth(self, context: Tensor, variant: Tensor) -> Tensor:
        """The target ``[B, D, T]`` of contexts ``[B, Dc, T]`` and variants ``[B]``."""
        mixed = torch.einsum("dc,bct->bdt", self.mixing, context)
        return (
            0.6 * self.signs[variant][..., None] * torch.tanh(mixed)
            + self.offsets[variant][..., None]
        )

    def draw(
        self, n: int, length: int, generator: torch.Generator
    ) -> tuple[Tensor, Conditioning, Tensor]:
        """``n`` examples of ``length`` frames: ``(target, conditioning, variant)``."""
        raw = torch.randn(n, self.context_channels, length + 4, generator=generator)
        kernel = torch.ones(self.context_channels, 1, 5) / 5**0.5
        context = F.conv1d(raw, kernel, groups=self.context_channels)  # (n, Dc, length) smooth
        variant = torch.randint(0, self.variants, (n,), generator=generator)
        target = self.truth(context, variant)
        return target, Conditioning(context=context, embedding=self.embeddings[variant]), variant

    def dataset(self, n: int, length: int, generator: torch.Generator) -> TensorLatents:
        """A :class:`TensorLatents` of ``n`` drawn examples."""
        target, cond, _ = self.draw(n, length, generator)
        return TensorLatents(target, cond.context, cond.embedding)
