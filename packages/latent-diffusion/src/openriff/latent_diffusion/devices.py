"""Checking a device name a user gave, before any work is done on it."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device ``name`` names, if this machine has it.

    Raises:
        ValueError: one line naming the device and why it cannot be used (an unknown
            name, CUDA without a visible GPU, a GPU index past the last one).
    """
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown device {str(name)!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(name)!r}: torch sees no CUDA GPU on this machine; use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(name)!r}: this machine has {count} CUDA GPU(s)")
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise ValueError(f"device {str(name)!r} is not available here: use cpu or cuda")
