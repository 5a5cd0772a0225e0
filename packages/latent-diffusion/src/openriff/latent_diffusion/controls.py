"""Latent-space controls at sampling time, on top of any Denoiser and sampler.

* :func:`inpaint`: regenerate a masked part of a sequence, keeping the rest (with the mask
  at an end, outpainting: continuing a sequence);
* :func:`vary`: variations of given latents, starting part-way down the schedule;
* :class:`LoopDenoiser`: sequences whose end continues into their start;
* :class:`StyleGrounding`: pull the time-mean of the estimate towards a reference's (bass
  paper 3.3);
* :func:`sample_pseudo_stereo`: one trajectory, split into two stochastic continuations
  for the last ``width`` share of the steps (Diff-A-Riff 4.3.1).

A ``sampler`` argument is any function with the sampler signature of
:mod:`openriff.latent_diffusion.samplers`; extra keyword arguments go to it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.samplers import Denoiser


class Sampler(Protocol):
    """The sampler signature."""

    def __call__(
        self,
        denoiser: Denoiser,
        noise: Tensor,
        sigmas: Tensor,
        *,
        cond: Conditioning | None = ...,
        generator: torch.Generator | None = ...,
        **opts: Any,
    ) -> Tensor:
        """Sample from ``noise * sigmas[0]`` down the schedule."""
        ...


class _Wrapper:
    """A Denoiser around a Denoiser, keeping its noise range."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self.sigma_min = denoiser.sigma_min
        self.sigma_max = denoiser.sigma_max
        self.sigma_data = denoiser.sigma_data


class _InpaintDenoiser(_Wrapper):
    def __init__(
        self, denoiser: Denoiser, known: Tensor, mask: Tensor, generator: torch.Generator | None
    ) -> None:
        super().__init__(denoiser)
        self.known, self.mask, self.generator = known, mask, generator

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        eps = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        level = sigma.to(x.dtype).view((-1,) + (1,) * (x.ndim - 1))
        # The known region is re-noised to the current level and replaced in the input...
        x = torch.where(self.mask, self.known + level * eps, x)
        # ...and in the estimate, so the sampler's state holds it at every step.
        return torch.where(self.mask, self.known, self.denoiser(x, sigma, cond))


def inpaint(
    sampler: Sampler,
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    known: Tensor,
    mask: Tensor,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    **opts: Any,
) -> Tensor:
    """Generate where ``mask`` is False and keep ``known`` where it is True.

    At every step the known region of the sampler's state is re-noised to the current
    level (fresh noise) before the denoiser sees it, and the denoiser's estimate is
    replaced there by ``known``; the result holds ``known`` exactly in the known region.

    Args:
        sampler: a sampler function.
        denoiser: the Denoiser.
        noise: standard normal ``[B, D, T]``.
        sigmas: the schedule.
        known: ``[B, D, T]`` latents (only the masked part is used).
        mask: bool, broadcastable to ``[B, D, T]`` (e.g. ``[1, 1, T]``), True where known.
        cond: conditioning.
        generator: randomness of the sampler and of the re-noising.
        **opts: passed to the sampler.
    """
    mask = torch.broadcast_to(mask.to(torch.bool), noise.shape)
    known = known.to(noise.dtype)
    wrapped = _InpaintDenoiser(denoiser, known, mask, generator)
    out = sampler(wrapped, noise, sigmas, cond=cond, generator=generator, **opts)
    return torch.where(mask, known, out)


def vary(
    sampler: Sampler,
    denoiser: Denoiser,
    latents: Tensor,
    sigmas: Tensor,
    strength: float,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    **opts: Any,
) -> Tensor:
    """A variation of ``latents``: noise them part-way and sample from there.

    Args:
        sampler: a sampler function.
        denoiser: the Denoiser.
        latents: ``[B, D, T]`` latents to vary.
        sigmas: the schedule.
        strength: share of the schedule's steps to run, in (0, 1]; the latents are noised
            to the level where those steps start. Near 0 the result stays close to
            ``latents``; 1 starts from (almost) pure noise.
        cond: conditioning.
        generator: randomness of the noising and of the sampler.
        **opts: passed to the sampler.
    """
    sigmas = vary_schedule(sigmas, strength)
    level = float(sigmas[0])
    eps = torch.randn(
        latents.shape, generator=generator, device=latents.device, dtype=latents.dtype
    )
    # The sampler multiplies its noise by sigmas[0]: hand it (latents + level eps) / level.
    return sampler(denoiser, latents / level + eps, sigmas, cond=cond, generator=generator, **opts)


def vary_schedule(sigmas: Tensor, strength: float) -> Tensor:
    """The tail of ``sigmas`` a variation of ``strength`` runs (see :func:`vary`).

    ``strength`` in (0, 1] is the share of the steps to run (at least one).
    """
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    steps = len(sigmas) - 1
    start = min(steps - 1, round((1.0 - strength) * steps))
    return sigmas[start:]


class LoopDenoiser(_Wrapper):
    """Makes the sequence circular: the end of the result continues into its start.

    The input is padded on both sides with ``margin`` frames taken from the other end
    (circular padding), denoised, and cropped back, so every frame, the first and last
    included, is estimated with neighbours on both sides as if the sequence repeated. The
    margin should cover the backbone's receptive field that matters (a few frames for a
    conv U-Net at the latent rate; attention sees the whole padded window anyway). The
    context, if any, is padded the same way.

    Args:
        denoiser: the Denoiser.
        margin: frames of circular padding on each side.
    """

    def __init__(self, denoiser: Denoiser, margin: int) -> None:
        super().__init__(denoiser)
        if margin < 1:
            raise ValueError(f"margin must be >= 1, got {margin}")
        self.margin = margin

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        """Clean estimate of the circularly padded input, cropped back to ``x``'s length."""
        length = x.shape[-1]
        if self.margin > length:
            raise ValueError(f"margin {self.margin} is longer than the sequence ({length})")
        pad = (self.margin, self.margin)
        padded_cond = cond
        if cond is not None and cond.context is not None:
            context = F.pad(cond.context, pad, mode="circular")
            padded_cond = Conditioning(
                context, cond.embedding, cond.keep_context, cond.keep_embedding
            )
        out = self.denoiser(F.pad(x, pad, mode="circular"), sigma, padded_cond)
        return out[..., self.margin : self.margin + length]


class StyleGrounding(_Wrapper):
    """Pull the time-mean of each estimate towards a reference's (bass paper 3.3).

    ``D' = D - mean_t(D) + b^2 mean_t(ref) + (1 - b^2) mean_t(D)``, with the noise rate
    ``b^2 = sigma^2 / (sigma^2 + sigma_data^2)``: strong at high noise (where the overall
    character is decided), fading as details form.

    Args:
        denoiser: the Denoiser.
        reference: latents ``[B or 1, D, T_ref]`` of the style reference, or their
            time-mean ``[B or 1, D]``.
        strength: scales ``b^2`` (1 as in the paper; 0 turns grounding off).
    """

    def __init__(self, denoiser: Denoiser, reference: Tensor, strength: float = 1.0) -> None:
        super().__init__(denoiser)
        self.target = reference.mean(-1) if reference.ndim == 3 else reference  # (B, D)
        self.strength = float(strength)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        """The wrapped estimate with its time-mean pulled towards the reference's."""
        out = self.denoiser(x, sigma, cond)
        mean = out.mean(-1, keepdim=True)  # (B, D, 1)
        s2 = sigma.to(out.dtype).square().view(-1, 1, 1)
        rate = self.strength * s2 / (s2 + self.sigma_data**2)
        target = self.target.to(out)[..., None]
        return out - mean + rate * target + (1.0 - rate) * mean


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
    """Two channels sharing one trajectory until the last ``width`` share of the steps.

    Diff-A-Riff 4.3.1: denoise once until ``(1 - width)`` of the steps are done, then
    finish twice, independently, with a stochastic sampler (e.g. ``sample_ddim`` with
    ``eta > 0``, ``sample_euler`` with churn, ``sample_consistency``); the paper's user
    study used ``width = 0.4``. A deterministic sampler gives two identical channels.

    Args:
        sampler: a stochastic sampler function.
        denoiser: the Denoiser.
        noise: standard normal ``[B, D, T]``.
        sigmas: the schedule.
        width: share of the steps run per channel, in [0, 1].
        cond: conditioning.
        generator: randomness of the sampler.
        **opts: passed to the sampler.

    Returns:
        ``[B, 2, ...]``: the two channels' latents.
    """
    if not 0.0 <= width <= 1.0:
        raise ValueError(f"width must be in [0, 1], got {width}")
    steps = len(sigmas) - 1
    split = steps - round(width * steps)
    x = noise
    if split > 0:
        x = sampler(denoiser, noise, sigmas[: split + 1], cond=cond, generator=generator, **opts)
    if split == steps:
        return torch.stack([x, x], dim=1)
    start = sigmas[split]
    both = torch.cat([x, x]) / float(start) if split > 0 else torch.cat([x, x])
    both_cond = Conditioning.cat([cond, cond]) if cond is not None else None
    out = sampler(denoiser, both, sigmas[split:], cond=both_cond, generator=generator, **opts)
    left, right = out.chunk(2)
    return torch.stack([left, right], dim=1)
