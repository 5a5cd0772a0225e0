"""Pseudo-stereo from a mono model (Diff-A-Riff 4.3.1).

The second channel shares the first's trajectory until the last ``width`` share of the
steps: :func:`pseudo_stereo` over any sampling routine (generation passes
:func:`~openriff.latent_diffusion.controls.sample_windowed`), and
:func:`sample_pseudo_stereo` over a plain sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.controls import vary
from openriff.latent_diffusion.samplers import Denoiser, Sampler

VariedSampling = Callable[[Tensor | None, float], Tensor]
"""``(init, strength) -> [B, D, T]``: a sampling from noise (``init`` None) or a variation."""


def pseudo_stereo(sample: VariedSampling, width: float) -> list[Tensor]:
    """The latents of each channel: one, or two for a ``width`` above 0.

    Diff-A-Riff 4.3.1 denoises once until ``(1 - width)`` of the steps are done, then
    concludes a stochastic denoising twice. Here the second channel re-enters at that same
    level from the first channel's result: the result is re-noised (fresh noise) to the
    level where the last ``width`` share of the steps starts and denoised again, i.e. a
    :func:`vary` of strength ``width``. It splits at the paper's level, but works with the
    deterministic samplers too (Heun, our default, would give two equal channels under the
    literal recipe), and with windows and inpainting, since each channel is a whole
    :func:`sample_windowed` pass with the same known frames.

    Args:
        sample: ``(init, strength) -> [B, D, T]``, e.g. :func:`sample_windowed` with every
            other argument bound.
        width: share of the steps the second channel runs again, in [0, 1].
    """
    if not 0.0 <= width <= 1.0:
        raise ValueError(f"width must be in [0, 1], got {width}")
    left = sample(None, 1.0)
    return [left] if width == 0 else [left, sample(left, width)]


def sample_pseudo_stereo(
    sampler: Sampler,
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    width: float,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    **opts: Any,
) -> Tensor:
    """Two channels that share one trajectory until the last ``width`` share of the steps.

    :func:`pseudo_stereo` over a plain sampler; the paper's user study used
    ``width = 0.4``. Width 0 gives two identical channels, width 1 two independent ones.

    Args:
        sampler: a sampler function.
        denoiser: the Denoiser.
        noise: standard normal ``[B, D, T]``.
        sigmas: the schedule.
        width: share of the steps run again for the second channel, in [0, 1].
        cond: conditioning.
        generator: randomness of the sampler and of the re-noising.
        **opts: passed to the sampler.

    Returns:
        ``[B, 2, ...]``: the two channels' latents.
    """

    def sample(init: Tensor | None, strength: float) -> Tensor:
        if init is None:
            return sampler(denoiser, noise, sigmas, cond=cond, generator=generator, **opts)
        return vary(sampler, denoiser, init, sigmas, strength, cond=cond, generator=generator,
                    **opts)  # fmt: skip

    channels = pseudo_stereo(sample, width)
    right = channels[-1]  # the left one again at width 0
    return torch.stack([channels[0], right], dim=1)
