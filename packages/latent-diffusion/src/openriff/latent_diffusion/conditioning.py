"""What a denoiser is conditioned on, and the keep-masks that drop conditions.

Condition dropout in training (Diff-A-Riff 4.2.3: each condition dropped with probability
0.5) and classifier-free guidance at inference (4.3.1) use one mechanism: a per-example
boolean keep-mask per condition. A dropped or absent condition reaches the backbone as
zeros plus a 0 flag, so "no context" is a learned, explicit state rather than a zero
latent that could also be a real (silent) context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Conditioning:
    """Conditions of a batch.

    Attributes:
        context: context latents ``[B, Dc, T]`` (same ``T`` as the target), or None.
        embedding: a global embedding ``[B, E]`` (CLAP), or None.
        keep_context: ``[B]`` bool, False where the context is dropped; None keeps all.
        keep_embedding: ``[B]`` bool, False where the embedding is dropped; None keeps all.
    """

    context: Tensor | None = None
    embedding: Tensor | None = None
    keep_context: Tensor | None = None
    keep_embedding: Tensor | None = None

    def __post_init__(self) -> None:
        sizes = set()
        if self.context is not None:
            if self.context.ndim != 3:
                raise ValueError(f"context must be [B, Dc, T], got {list(self.context.shape)}")
            sizes.add(self.context.shape[0])
        if self.embedding is not None:
            if self.embedding.ndim != 2:
                raise ValueError(f"embedding must be [B, E], got {list(self.embedding.shape)}")
            sizes.add(self.embedding.shape[0])
        for name in ("keep_context", "keep_embedding"):
            mask = getattr(self, name)
            if mask is not None:
                if mask.ndim != 1 or mask.dtype != torch.bool:
                    raise ValueError(f"{name} must be a [B] bool tensor")
                sizes.add(mask.shape[0])
        if len(sizes) > 1:
            raise ValueError(f"conditions disagree on the batch size: {sorted(sizes)}")

    @property
    def batch_size(self) -> int | None:
        """Batch size, or None when no condition is given."""
        for item in (self.context, self.embedding, self.keep_context, self.keep_embedding):
            if item is not None:
                return int(item.shape[0])
        return None

    def context_kept(self, batch: int, device: torch.device) -> Tensor:
        """``[B]`` bool: where a context is present and kept."""
        return _kept(self.context, self.keep_context, batch, device)

    def embedding_kept(self, batch: int, device: torch.device) -> Tensor:
        """``[B]`` bool: where an embedding is present and kept."""
        return _kept(self.embedding, self.keep_embedding, batch, device)

    def dropped(
        self,
        p_context: float,
        p_embedding: float,
        generator: torch.Generator | None = None,
        *,
        draws: Tensor | None = None,
    ) -> Conditioning:
        """Each condition of each example dropped independently (training dropout).

        Args:
            p_context: probability of dropping the context.
            p_embedding: probability of dropping the embedding.
            generator: randomness of the drops.
            draws: ``[2, B]`` uniform draws to use instead of the generator's (a
                distributed trainer draws them for its global batch).
        """
        batch = self.batch_size
        if batch is None:
            return self
        device = _device(self)
        if draws is None:
            draws = torch.rand(2, batch, generator=generator)
        draws = draws.to(device)
        return replace(
            self,
            keep_context=self.context_kept(batch, device) & (draws[0] >= p_context),
            keep_embedding=self.embedding_kept(batch, device) & (draws[1] >= p_embedding),
        )

    def only(self, *, context: bool, embedding: bool) -> Conditioning:
        """The same batch with the context and/or the embedding switched off everywhere."""
        batch = self.batch_size
        if batch is None:
            return self
        device = _device(self)
        off = torch.zeros(batch, dtype=torch.bool, device=device)
        return replace(
            self,
            keep_context=self.context_kept(batch, device) if context else off,
            keep_embedding=self.embedding_kept(batch, device) if embedding else off,
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Conditioning:
        """Move the tensors (masks stay bool)."""

        def move(t: Tensor | None, cast: bool) -> Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if cast and dtype is not None else t.dtype)

        return Conditioning(
            move(self.context, True),
            move(self.embedding, True),
            move(self.keep_context, False),
            move(self.keep_embedding, False),
        )

    def with_context(self, context: Tensor | None) -> Conditioning:
        """The same conditions with ``context`` (``[B, Dc, T']``) in place of the context."""
        return replace(self, context=context)

    def crop(self, lo: int, hi: int) -> Conditioning:
        """The conditions of frames ``[lo, hi)``: the context cropped, the rest as it is."""
        return self.with_context(None if self.context is None else self.context[..., lo:hi])

    def index(self, rows: Tensor | slice) -> Conditioning:
        """The conditions of a subset of the batch."""

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[rows]

        return Conditioning(
            pick(self.context),
            pick(self.embedding),
            pick(self.keep_context),
            pick(self.keep_embedding),
        )

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        """Concatenate along the batch (all parts must have the same conditions present)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        sizes = [p.batch_size for p in parts]
        if any(s is None for s in sizes):
            if all(s is None for s in sizes):
                return parts[0]
            raise ValueError("cannot concatenate conditionings with and without conditions")

        def join(name: str) -> Tensor | None:
            items = [getattr(p, name) for p in parts]
            if all(t is None for t in items):
                return None
            if any(t is None for t in items):
                if name.startswith("keep_"):
                    items = [
                        _all_kept(p) if t is None else t for t, p in zip(items, parts, strict=True)
                    ]
                else:
                    raise ValueError(f"{name} is present in some parts only")
            return torch.cat(items)

        return Conditioning(
            join("context"), join("embedding"), join("keep_context"), join("keep_embedding")
        )


def _all_kept(cond: Conditioning) -> Tensor:
    return torch.ones(cond.batch_size or 0, dtype=torch.bool, device=_device(cond))


def _device(cond: Conditioning) -> torch.device:
    for item in (cond.context, cond.embedding, cond.keep_context, cond.keep_embedding):
        if item is not None:
            return item.device
    return torch.device("cpu")


def _kept(value: Tensor | None, keep: Tensor | None, batch: int, device: torch.device) -> Tensor:
    if value is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    if value.shape[0] != batch:
        raise ValueError(f"condition has batch {value.shape[0]}, input has {batch}")
    if keep is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    return keep.to(device)


def context_input(cond: Conditioning | None, x: Tensor, channels: int) -> Tensor:
    """The channels a backbone concatenates to its input: masked context and a flag.

    Args:
        cond: the conditioning (None: no context).
        x: the noisy input ``[B, D, T]``.
        channels: the backbone's context channels ``Dc`` (0: it takes no context).

    Returns:
        ``[B, Dc + 1, T]``: the context where kept (zeros elsewhere), then a 0/1 flag row.
    """
    batch, _, length = x.shape
    kept = (cond or Conditioning()).context_kept(batch, x.device)
    if channels == 0:
        if cond is not None and cond.context is not None:
            raise ValueError("this backbone was built without context conditioning")
        return x.new_zeros(batch, 1, length)
    flag = kept.to(x.dtype)[:, None, None].expand(batch, 1, length)
    if cond is None or cond.context is None:
        return torch.cat([x.new_zeros(batch, channels, length), flag], dim=1)
    context = cond.context
    if context.shape[1] != channels or context.shape[2] != length:
        raise ValueError(
            f"context must be [B, {channels}, {length}] to match the input, "
            f"got {list(context.shape)}"
        )
    return torch.cat([context.to(x.dtype) * flag, flag], dim=1)  # (B, Dc + 1, T)


def embedding_input(cond: Conditioning | None, batch: int, dim: int, like: Tensor) -> Tensor:
    """The embedding a backbone mixes into its noise embedding: masked, plus a flag.

    Returns:
        ``[B, dim + 1]``: the embedding where kept (zeros elsewhere), then a 0/1 flag.
    """
    kept = (cond or Conditioning()).embedding_kept(batch, like.device)
    flag = kept.to(like.dtype)[:, None]
    if dim == 0:
        if cond is not None and cond.embedding is not None:
            raise ValueError("this backbone was built without an embedding input")
        return like.new_zeros(batch, 1)
    if cond is None or cond.embedding is None:
        return torch.cat([like.new_zeros(batch, dim), flag], dim=1)
    if cond.embedding.shape[1] != dim:
        raise ValueError(f"embedding must be [B, {dim}], got {list(cond.embedding.shape)}")
    return torch.cat([cond.embedding.to(like.dtype) * flag, flag], dim=1)
