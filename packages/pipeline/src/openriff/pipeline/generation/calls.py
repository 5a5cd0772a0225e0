"""One generation call, and the latents it sampled."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.samplers import Denoiser
from openriff.pipeline.generation.options import Sampling


@dataclass
class Call:
    """One generation call: its options, seed, generators and style reference."""

    options: Sampling
    seed: int
    noise: torch.Generator  # sampling noise (and the sampler's own randomness)
    bridge: torch.Generator  # the bridge prior's draws
    sample_rate: int
    style: Tensor | None = field(default=None, repr=False)  # (1, D, T) latents
    pass_frames: int | None = None  # the longest sampling pass (frames), once sampled


@dataclass
class Sampled:
    """Latents of every output channel (``[B, D, T]`` each) and how they were made."""

    call: Call
    channels: list[Tensor]
    denoiser: Denoiser
    sigmas: Tensor

    def stacked(self) -> NDArray[np.float32]:
        """``[B, channels, D, T]``."""
        return to_numpy(torch.stack(self.channels, dim=1).float())


def to_numpy(audio: Tensor) -> NDArray[np.float32]:
    """A tensor as float32 NumPy on the CPU (no copy where it already is)."""
    out: NDArray[np.float32] = audio.cpu().numpy().astype(np.float32, copy=False)
    return out
