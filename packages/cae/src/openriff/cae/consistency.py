"""Consistency-model pieces of the CAE: scalings, noise levels, training loss, sampling.

The decoder of a CAE is a consistency model ``f(x_sigma, sigma | latents)`` that maps a
noisy spectrogram straight to a clean one (DiT follow-up paper, 3.3). It is trained with
improved consistency training (Song & Dhariwal 2023) in the continuous form Music2Latent
uses:

* EDM scalings with ``c_skip(sigma_min) = 1`` and ``c_out(sigma_min) = 0``, so
  ``f(x, sigma_min) = x`` holds by construction (the boundary condition);
* noise levels drawn log-normally (``P_mean``, ``P_std``) on ``[sigma_min, sigma_max]``;
* the teacher level one step below on the Karras ``rho`` curve, in its continuous index
  ``u in [0, 1]``, with a step that shrinks exponentially over training from ``1 / s0``
  to ``1 / s1`` (the continuous counterpart of iCT's doubling of the number of steps);
* the teacher is the same network without gradient (no EMA teacher), the distance is the
  pseudo-Huber distance and each pair is weighted by ``1 / (sigma - sigma_teacher)``
  (and by ``1 / sqrt(numel)``, a constant that only sets the scale against other terms).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from openriff.cae.noise import Noise


@dataclass(frozen=True)
class ConsistencyConfig:
    """Noise levels and consistency-training hyper-parameters.

    Attributes:
        sigma_min: smallest noise level; the boundary ``f(x, sigma_min) = x``.
        sigma_max: largest noise level; one-step decoding starts here.
        sigma_data: standard deviation assumed for the data (EDM scalings).
        rho: curvature of the Karras noise-level curve.
        p_mean: mean of ``log sigma`` when sampling training noise levels.
        p_std: standard deviation of ``log sigma`` when sampling training noise levels.
        s0: the teacher step at the start of training is ``1 / s0`` of the curve.
        s1: the teacher step at the end of training is ``1 / s1`` of the curve.
        huber_c: pseudo-Huber constant per element; ``c = huber_c * sqrt(numel)``
            per sample (0.00054 in iCT).
        sigma_max_fraction: share of training examples placed at ``sigma_max`` instead of
            drawn log-normally. One-step decoding starts there, and log-normal draws
            almost never reach it (about 1 in 20 above sigma = 10).
        consistency_warmup: share of training over which the consistency term's weight
            ramps linearly from 0 to 1 (0: full weight from the start). Its gradients
            concentrate at small noise levels and, early on, drown the signal that teaches
            the autoencoder to use its latents; a short ramp lets encoding come first.
        spectral_weight: weight of the multi-resolution STFT distance between the
            waveforms of the student's estimate and of the target (0 drops it; see
            :meth:`~openriff.cae.codec.SpectrogramCodec.objective`).
        preview_weight: weight of the L1 distance between the decoder's log-magnitude
            preview and the target's log magnitudes (0 drops it).
        preview_convergence_weight: weight of the spectral convergence of the preview,
            ``||exp(preview) - (|X| + floor)|| / ||(|X| + floor)||`` over compressed
            magnitudes (0 drops it). The log-L1 term weighs every bin alike, so on tonal
            stems, whose energy sits in a few harmonics among a thousand near-silent bins,
            it mostly teaches the noise floor; this term is ruled by the loud bins, the ones
            that carry pitch.
        frequency_weight: weight of the frequency term of a model with a frequency head
            (``ConvCAEConfig.frequency_head``): the L1 distance between the head's bin
            offsets and the target's :func:`~openriff.cae.spectral.instantaneous_frequency`,
            averaged with the target's squared compressed magnitudes as weights, so that
            the partials' peaks count and the noise floor's random phases do not.
        feature_gradient: scale of the gradient that the consistency model's terms send
            back into the decoder features and the encoder (1: plain end-to-end training;
            0: the autoencoder learns from the preview term alone).
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0
    p_mean: float = -1.1
    p_std: float = 2.0
    s0: float = 10.0
    s1: float = 1280.0
    huber_c: float = 0.00054
    sigma_max_fraction: float = 0.25
    consistency_warmup: float = 0.0
    spectral_weight: float = 1.0
    preview_weight: float = 1.0
    preview_convergence_weight: float = 0.0
    frequency_weight: float = 1.0
    feature_gradient: float = 1.0


def scalings(sigma: Tensor, config: ConsistencyConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``c_skip, c_out, c_in, c_noise`` for noise levels ``sigma`` (any shape).

    ``c_skip`` and ``c_out`` are shifted by ``sigma_min`` so that ``c_skip = 1`` and
    ``c_out = 0`` at ``sigma_min`` (consistency-model boundary condition).
    """
    sd2 = config.sigma_data**2
    shifted = sigma - config.sigma_min
    c_skip = sd2 / (shifted.square() + sd2)
    c_out = shifted * config.sigma_data / (sigma.square() + sd2).sqrt()
    c_in = 1.0 / (sigma.square() + sd2).sqrt()
    c_noise = sigma.log() / 4.0
    return c_skip, c_out, c_in, c_noise


def sigma_at(u: Tensor, config: ConsistencyConfig) -> Tensor:
    """Noise level at continuous index ``u`` in ``[0, 1]`` of the Karras curve."""
    lo = config.sigma_min ** (1.0 / config.rho)
    hi = config.sigma_max ** (1.0 / config.rho)
    return (lo + u * (hi - lo)) ** config.rho


def index_of(sigma: Tensor, config: ConsistencyConfig) -> Tensor:
    """Inverse of :func:`sigma_at`."""
    lo = config.sigma_min ** (1.0 / config.rho)
    hi = config.sigma_max ** (1.0 / config.rho)
    return (sigma ** (1.0 / config.rho) - lo) / (hi - lo)


def teacher_step(progress: float, config: ConsistencyConfig) -> float:
    """Width of the teacher step in index units at ``progress`` in ``[0, 1]`` of training."""
    progress = min(max(progress, 0.0), 1.0)
    return float((1.0 / config.s0) * (config.s0 / config.s1) ** progress)


def sample_training_sigmas(
    batch: int,
    progress: float,
    config: ConsistencyConfig,
    *,
    generator: torch.Generator | None,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Student and teacher noise levels ``(sigma, sigma_teacher)``, each ``[batch]``.

    ``sigma`` is log-normal, restricted to ``(sigma_min, sigma_max]``, except for a
    ``sigma_max_fraction`` share of examples placed at ``sigma_max``; the teacher sits one
    curriculum step lower on the index curve. The student stays at least one step above
    ``sigma_min`` (as the lowest student level of discrete iCT does): otherwise the gap
    ``sigma - sigma_teacher`` could be arbitrarily small and its ``1 / gap`` weight would
    blow up on noise the network cannot remove.
    """
    log_sigma = torch.randn(batch, generator=generator, device=device, dtype=torch.float64)
    at_max = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
    sigma = (config.p_mean + config.p_std * log_sigma).exp()
    sigma = torch.where(at_max < config.sigma_max_fraction, config.sigma_max, sigma)
    sigma = sigma.clamp(config.sigma_min * 1.0001, config.sigma_max)
    step = teacher_step(progress, config)
    u = index_of(sigma, config).clamp_min(step)
    return sigma_at(u, config).float(), sigma_at(u - step, config).float()


def consistency_weight(progress: float, config: ConsistencyConfig) -> float:
    """Weight of the consistency term at ``progress`` in ``[0, 1]`` of training."""
    if config.consistency_warmup <= 0.0:
        return 1.0
    return min(1.0, max(0.0, progress) / config.consistency_warmup)


def pseudo_huber(a: Tensor, b: Tensor, huber_c: float) -> Tensor:
    """Per-sample pseudo-Huber distance ``sqrt(|a - b|^2 + c^2) - c`` over all but dim 0."""
    diff = (a - b).flatten(1).float()
    c = huber_c * math.sqrt(diff.shape[1])
    return (diff.square().sum(1) + c * c).sqrt() - c


def consistency_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    noise: Tensor,
    sigma: Tensor,
    sigma_teacher: Tensor,
    config: ConsistencyConfig,
) -> tuple[Tensor, Tensor]:
    """Improved-consistency-training loss of each example, and the student's output.

    The caller draws ``noise`` (like ``x``) and the levels (:func:`sample_training_sigmas`)
    so that a distributed run can draw them for its global batch and take its shard.

    Args:
        model: the consistency function ``f(x_sigma, sigma[B]) -> x_0 estimate``, already
            bound to its conditioning (the latents of ``x``).
        x: clean data ``[B, ...]``.
        noise: standard normal noise shaped like ``x``.
        sigma: ``[B]`` student noise levels.
        sigma_teacher: ``[B]`` teacher noise levels, below ``sigma``.
        config: consistency settings (pseudo-Huber constant).

    Returns:
        ``([B] losses, student output like x)``; the output lets a model add terms of
        its own without another forward pass.
    """
    shape = (-1,) + (1,) * (x.ndim - 1)
    student = model(x + sigma.view(shape) * noise, sigma)
    with torch.no_grad():
        teacher = model(x + sigma_teacher.view(shape) * noise, sigma_teacher)
    # Dividing by sqrt(numel) puts the distance on a per-element (RMS) scale: the same for
    # any crop size, and comparable with the per-element spectral terms of the objective.
    # Alone, the consistency term trains the same either way (Adam is scale-invariant).
    weight = 1.0 / ((sigma - sigma_teacher) * math.sqrt(x[0].numel()))
    return weight * pseudo_huber(student, teacher, config.huber_c), student


def sample(
    model: Callable[[Tensor, Tensor], Tensor],
    shape: tuple[int, ...],
    steps: int,
    config: ConsistencyConfig,
    *,
    noise: Noise,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Multistep consistency sampling: denoise from ``sigma_max``, re-noise, repeat.

    With ``steps = 1`` this is ``f(sigma_max * z, sigma_max)``. Further steps re-noise the
    estimate to the next lower level of a ``steps + 1``-point Karras curve and denoise again.

    Args:
        model: the consistency function ``f(x_sigma, sigma[B])``.
        shape: of the sample, ``[B, ...]``.
        steps: denoising steps (>= 1).
        config: noise levels.
        noise: draws the starting noise and each re-noising, in that order
            (:func:`~openriff.cae.noise.gaussian` for one generator).
        device: of the noise levels.
        dtype: of the noise levels.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    levels = sigma_at(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), config)
    x = noise(shape) * config.sigma_max
    estimate = x
    for i in range(steps):
        sigma = torch.full((shape[0],), float(levels[i]), device=device, dtype=dtype)
        estimate = model(x, sigma)
        if i + 1 < steps:
            level = float(levels[i + 1])
            x = estimate + math.sqrt(max(level**2 - config.sigma_min**2, 0.0)) * noise(shape)
    return estimate
