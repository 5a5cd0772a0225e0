"""Latent-space controls at sampling time, on top of any Denoiser and sampler.

* :func:`inpaint` (and :func:`inpainting`, the same as a sampler): regenerate a masked
  part of a sequence, keeping the rest (with the mask at an end, outpainting);
* :func:`vary`: variations of given latents, starting part-way down the schedule;
* :class:`LoopDenoiser`: sequences whose end continues into their start;
* :class:`StyleGrounding`: pull the time-mean of the estimate towards a reference's (bass
  paper 3.3);
* :func:`sample_windowed`: any length from a model trained on windows, in one pass whose
  :class:`WindowedDenoiser` cross-fades the windows' estimates; with known frames
  (inpainting) and a start (variations): the one sampling routine of every generation
  mode.

Pseudo-stereo, a variation of one channel into another, is in
:mod:`openriff.latent_diffusion.stereo`.

A ``sampler`` argument is any function with the sampler signature of
:mod:`openriff.latent_diffusion.samplers`; extra keyword arguments go to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.samplers import Denoiser, Sampler

__all__ = [
    "LoopDenoiser",
    "Sampler",
    "StyleGrounding",
    "Window",
    "WindowedDenoiser",
    "inpaint",
    "inpainting",
    "plan_windows",
    "sample_windowed",
    "vary",
    "vary_schedule",
]


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


def inpainting(sampler: Sampler, known: Tensor, mask: Tensor) -> Sampler:
    """``sampler`` made to keep ``known`` where ``mask`` is True (see :func:`inpaint`).

    The result is a sampler itself, so it composes: ``vary(inpainting(...), ...)`` varies
    a sequence while keeping part of it.
    """

    def sample(
        denoiser: Denoiser,
        noise: Tensor,
        sigmas: Tensor,
        *,
        cond: Conditioning | None = None,
        generator: torch.Generator | None = None,
        **opts: Any,
    ) -> Tensor:
        return inpaint(
            sampler, denoiser, noise, sigmas, known, mask, cond=cond, generator=generator, **opts
        )

    return sample


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
            padded_cond = cond.with_context(F.pad(cond.context, pad, mode="circular"))
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


@dataclass(frozen=True)
class Window:
    """One window of a long sequence: frames ``[lo, hi)`` and their weights.

    Attributes:
        lo: first frame.
        hi: one past the last frame.
        weight: ``[hi - lo]`` share of this window's estimate where windows overlap: a
            raised-cosine ramp up over the overlap with the window before, down over the
            overlap with the window after, 1 elsewhere (complementary ramps sum to 1).
        rise: frames of overlap with the window before (0 for the first window).
    """

    lo: int
    hi: int
    weight: Tensor
    rise: int = 0

    @property
    def seam(self) -> float | None:
        """Frame (fractional) in the middle of the overlap with the window before.

        There the estimate passes from that window's to this one's; None for the first.
        """
        return self.lo + self.rise / 2 if self.rise else None


def _ramp(frames: int, device: torch.device | None) -> Tensor:
    """``[frames]`` raised cosine strictly inside (0, 1), rising; ``1 - ramp`` is its mirror."""
    steps = torch.arange(1, frames + 1, dtype=torch.float32, device=device)
    return 0.5 - 0.5 * torch.cos(torch.pi * steps / (frames + 1))


def plan_windows(
    frames: int,
    window: int | None,
    mask: Tensor | None = None,
    *,
    loop: bool = False,
    device: torch.device | None = None,
) -> list[Window]:
    """The windows that cover ``frames`` frames, each at most ``window`` long.

    Windows overlap by a quarter of their length; the last one ends at the last frame.
    Windows whose frames are all known (``mask``) are left out: their frames are kept as
    they are. A loop, or a sequence no longer than ``window``, is one window.

    Args:
        frames: length of the sequence.
        window: the longest pass (the training length), or None for one pass.
        mask: ``[frames]`` bool, True where frames are known, or None.
        loop: one pass whatever the length (the denoiser is circular).
        device: where the weights live.
    """
    spans = [(0, frames)]
    if window is not None and frames > window and not loop:
        hop = window - max(1, window // 4)
        spans = [(lo, lo + window) for lo in [*range(0, frames - window, hop), frames - window]]
    fixed = None if mask is None else mask.to(device=device, dtype=torch.bool)
    out = []
    for i, (lo, hi) in enumerate(spans):
        if fixed is not None and bool(fixed[lo:hi].all()):
            continue
        weight = torch.ones(hi - lo, device=device)
        rise = spans[i - 1][1] - lo if i > 0 else 0
        if rise:
            weight[:rise] = _ramp(rise, device)
        if i + 1 < len(spans):
            overlap = hi - spans[i + 1][0]
            weight[-overlap:] = torch.minimum(weight[-overlap:], 1 - _ramp(overlap, device))
        out.append(Window(lo, hi, weight, rise))
    return out


class WindowedDenoiser(_Wrapper):
    """A denoiser over any length from one trained on windows.

    The estimate of every window, cross-faded where windows overlap (MultiDiffusion, Bar-Tal
    et al. 2023). All windows are denoised together at every step of one pass over the whole
    sequence, so each window sees its neighbours' current state in the overlaps, and nothing
    marks where one window ends. Generating window after window, each continuing the last by
    inpainting, leaves a seam even with an exact denoiser: on a Gaussian process the frames
    after each hand-over came out at 0.6 of the process's variance, with 4.6x its typical
    frame-to-frame step; this pass keeps both within sampling noise (tests).

    Args:
        denoiser: the Denoiser, applied to windows no longer than it was trained on.
        windows: from :func:`plan_windows`; the frames they leave out must be known
            (an inpainting wrapper replaces them).
    """

    def __init__(self, denoiser: Denoiser, windows: list[Window]) -> None:
        super().__init__(denoiser)
        self.windows = windows

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        """Weighted mean of the windows' estimates ``[B, D, T]``; ``x`` where none covers."""
        total = torch.zeros_like(x)  # (B, D, T)
        norm = torch.zeros(x.shape[-1], device=x.device, dtype=x.dtype)  # (T,)
        for w in self.windows:
            crop = None if cond is None else cond.crop(w.lo, w.hi)
            weight = w.weight.to(device=x.device, dtype=x.dtype)
            total[..., w.lo : w.hi] += weight * self.denoiser(x[..., w.lo : w.hi], sigma, crop)
            norm[w.lo : w.hi] += weight
        return torch.where(norm > 0, total / norm.clamp_min(1e-12), x)


def sample_windowed(
    sampler: Sampler,
    denoiser: Denoiser,
    shape: tuple[int, int, int],
    sigmas: Tensor,
    *,
    window: int | None = None,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    known: Tensor | None = None,
    mask: Tensor | None = None,
    init: Tensor | None = None,
    strength: float = 1.0,
    loop: bool = False,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    **opts: Any,
) -> Tensor:
    """Latents ``[B, D, T]`` of any length, in one pass of ``sampler``.

    A sequence longer than ``window`` is denoised by a :class:`WindowedDenoiser`.

    Every generation mode is this routine with different arguments: plain sampling (no
    ``known``, no ``init``), inpainting (``known`` and ``mask``), variations (``init`` and
    ``strength``, see :func:`vary`), loops (``loop`` with a :class:`LoopDenoiser`). The
    noise is drawn from ``generator`` once for the whole sequence, so a seed gives the same
    result for the same arguments.

    Args:
        sampler: a sampler function.
        denoiser: the Denoiser.
        shape: ``(B, D, T)`` of the result.
        sigmas: the schedule (any device: samplers read it on the CPU).
        window: the longest pass in frames, or None for one pass.
        cond: conditioning over all ``T`` frames (each window gets its crop).
        generator: randomness of the noise, the sampler and the re-noising.
        known: ``[B or 1, D, T]`` latents kept where ``mask`` is True.
        mask: ``[T]`` bool, True where ``known`` is kept.
        init: ``[B or 1, D, T]`` latents to vary (else start from noise).
        strength: share of the schedule a variation runs, in (0, 1].
        loop: one circular pass.
        device: where to sample.
        dtype: dtype of the latents.
        **opts: passed to the sampler (``callback``, churn, ...).
    """
    batch, dim, frames = shape
    if mask is not None and known is None:
        raise ValueError("a mask needs the known latents it keeps")
    windows = plan_windows(frames, window, mask, loop=loop, device=torch.device(device))
    sample = sampler
    if known is not None and mask is not None:
        known = known.to(device=device, dtype=dtype).expand(batch, -1, -1)  # (B, D, T)
        if not windows:  # every frame is known
            return known.clone()
        if bool(mask.any()):
            sample = inpainting(sampler, known, mask.to(device).view(1, 1, -1))
    if len(windows) > 1:
        denoiser = WindowedDenoiser(denoiser, windows)
    if init is None:
        noise = torch.randn(batch, dim, frames, generator=generator, device=device)
        return sample(denoiser, noise.to(dtype), sigmas, cond=cond, generator=generator, **opts)
    start = init.to(device=device, dtype=dtype).expand(batch, -1, -1)  # (B, D, T)
    return vary(sample, denoiser, start, sigmas, strength, cond=cond, generator=generator, **opts)
