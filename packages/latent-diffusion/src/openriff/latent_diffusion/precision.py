"""Numeric precision of inference: fp32, or bf16 autocast with fp32 where it matters.

``"bf16"`` runs the convolutions and matrix products in bfloat16 under
:func:`torch.autocast`, which keeps the reductions that need the range (norms, softmax)
in fp32; the preconditioning (:mod:`~openriff.latent_diffusion.precond`), the samplers'
updates and the codecs' spectral transforms stay in fp32 because their inputs do. On
CUDA ``"fp32"`` lets matrix products use TF32 (``torch.set_float32_matmul_precision
("high")``) for the duration of the scope. ``"auto"`` is bf16 on CUDA and fp32 elsewhere:
a CPU without native bf16 units runs bf16 autocast slower than fp32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""Name -> the dtype matrix products run in."""

CHOICES = ("auto", *PRECISIONS)


def resolve_precision(name: str, device: torch.device | str) -> str:
    """``name`` checked, with ``"auto"`` made concrete for ``device``.

    Raises:
        ValueError: an unknown name.
    """
    if name == "auto":
        return "bf16" if torch.device(device).type == "cuda" else "fp32"
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}: use {', '.join(CHOICES)}")
    return name


@contextmanager
def precision_scope(device: torch.device | str, name: str) -> Iterator[None]:
    """Run the block at precision ``name`` (after :func:`resolve_precision`) on ``device``.

    The TF32 setting is restored when the block ends, so a library call leaves the
    process as it found it.
    """
    device = torch.device(device)
    dtype = PRECISIONS[resolve_precision(name, device)]
    previous = torch.get_float32_matmul_precision()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    try:
        if dtype == torch.float32:
            yield
        else:
            with torch.autocast(device.type, dtype=dtype):
                yield
    finally:
        torch.set_float32_matmul_precision(previous)
