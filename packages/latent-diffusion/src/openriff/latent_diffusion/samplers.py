"""Samplers: short functions over a Denoiser and a decreasing noise schedule.

Every sampler has the signature
``sample_x(denoiser, noise, sigmas, *, cond=None, generator=None, callback=None, **opts)``:

* ``denoiser(x, sigma[B], cond) -> clean estimate`` (the Denoiser contract);
* ``noise`` is standard normal of any shape ``[B, ...]``; the sampler scales it by
  ``sigmas[0]``;
* ``sigmas`` is a float64 schedule, normally ending with 0 (``karras_sigmas``). A schedule
  that stops above 0 returns the sample at that level, which lets a trajectory be split
  (pseudo-stereo) and continued;
* randomness (churn, DDIM's eta, consistency re-noising) comes only from ``generator``;
* ``callback(info)`` is called after every step with ``{"i", "x", "sigma",
  "sigma_next", "denoised"}``.

The state ``x`` is kept in float32 (or the noise's dtype if wider) while the schedule
stays float64; each step's ``sigma`` is handed to the denoiser as a ``[B]`` tensor in
``x``'s dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning

Callback = Callable[[dict[str, Any]], None]


class Denoiser(Protocol):
    """``(x, sigma[B], cond) -> clean estimate``, plus its noise range and data scale."""

    sigma_min: float
    sigma_max: float
    sigma_data: float

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        """Estimate of the clean data behind ``x = x0 + sigma * noise``."""
        ...


class Sampler(Protocol):
    """The sampler signature shared by every ``sample_*`` function."""

    def __call__(
        self,
        denoiser: Denoiser,
        noise: Tensor,
        sigmas: Tensor,
        *,
        cond: Conditioning | None = ...,
        generator: torch.Generator | None = ...,
        callback: Callback | None = ...,
    ) -> Tensor:
        """Sample from ``noise * sigmas[0]`` down the schedule (extra options vary)."""
        ...


def _prepare(noise: Tensor, sigmas: Tensor) -> tuple[Tensor, Tensor]:
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D schedule of >= 2 levels, got {list(sigmas.shape)}")
    if not torch.isfinite(sigmas).all() or bool((sigmas[1:] > sigmas[:-1]).any()):
        raise ValueError("sigmas must be finite and non-increasing")
    if sigmas[-1] < 0:
        raise ValueError("sigmas must be >= 0")
    if noise.ndim < 1 or noise.shape[0] == 0:
        raise ValueError(f"noise needs a non-empty batch dimension, got {list(noise.shape)}")
    dtype = noise.dtype if noise.dtype == torch.float64 else torch.float32
    # The schedule stays on the CPU: the loop reads its levels as Python numbers, which
    # on a GPU would otherwise wait for the device at every step (a host sync).
    sigmas = sigmas.to(device="cpu", dtype=torch.float64)
    return noise.to(dtype) * float(sigmas[0]), sigmas


def _level(sigma: Tensor, x: Tensor) -> Tensor:
    """A schedule entry as the ``[B]`` tensor the denoiser takes."""
    return torch.full((x.shape[0],), float(sigma), device=x.device, dtype=x.dtype)


def _denoise(denoiser: Denoiser, x: Tensor, sigma: Tensor, cond: Conditioning | None) -> Tensor:
    return denoiser(x, _level(sigma, x), cond).to(x.dtype)


def _report(
    callback: Callback | None, i: int, x: Tensor, s: Tensor, s_next: Tensor, d: Tensor
) -> None:
    if callback is not None:
        callback({"i": i, "x": x, "sigma": float(s), "sigma_next": float(s_next), "denoised": d})


def _step(x: Tensor, d: Tensor, sigma: Tensor, sigma_next: Tensor, denoised: Tensor) -> Tensor:
    """An Euler step; to ``sigma = 0`` it is the estimate itself, without the round-off."""
    if sigma_next == 0:
        return denoised
    return x + d * float(sigma_next - sigma)


def _churn(
    x: Tensor,
    sigma: Tensor,
    steps: int,
    s_churn: float,
    s_tmin: float,
    s_tmax: float,
    s_noise: float,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """EDM Algorithm 2, lines 4-6: raise the noise from ``sigma`` to ``sigma_hat``."""
    if s_churn <= 0 or not s_tmin <= float(sigma) <= s_tmax:
        return x, sigma
    gamma = min(s_churn / steps, math.sqrt(2.0) - 1.0)
    sigma_hat = sigma * (1.0 + gamma)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x = x + eps * s_noise * math.sqrt(float(sigma_hat) ** 2 - float(sigma) ** 2)
    return x, sigma_hat


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
) -> Tensor:
    """First-order (Euler) integration of the probability-flow ODE, with optional churn.

    Args:
        denoiser: the Denoiser.
        noise: standard normal ``[B, ...]``.
        sigmas: float64 schedule ``[N + 1]``.
        cond: conditioning passed to the denoiser.
        generator: randomness of the churn noise.
        callback: called after every step.
        s_churn: EDM's total churn (0: deterministic ODE).
        s_tmin: churn only where ``s_tmin <= sigma <= s_tmax``.
        s_tmax: see ``s_tmin``.
        s_noise: scale of the churn noise.

    Returns:
        the sample at ``sigmas[-1]``, shaped like ``noise``.
    """
    x, sigmas = _prepare(noise, sigmas)
    steps = len(sigmas) - 1
    for i in range(steps):
        x, sigma = _churn(x, sigmas[i], steps, s_churn, s_tmin, s_tmax, s_noise, generator)
        denoised = _denoise(denoiser, x, sigma, cond)
        d = (x - denoised) / float(sigma)
        x = _step(x, d, sigma, sigmas[i + 1], denoised)
        _report(callback, i, x, sigma, sigmas[i + 1], denoised)
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
) -> Tensor:
    """EDM's second-order sampler (Karras et al. 2022, Algorithm 2).

    An Euler step, corrected by the average of the slopes at both ends, except for the
    last step to ``sigma = 0`` (which is Euler). Arguments as :func:`sample_euler`.
    """
    x, sigmas = _prepare(noise, sigmas)
    steps = len(sigmas) - 1
    for i in range(steps):
        x, sigma = _churn(x, sigmas[i], steps, s_churn, s_tmin, s_tmax, s_noise, generator)
        sigma_next = sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        d = (x - denoised) / float(sigma)
        x_next = _step(x, d, sigma, sigma_next, denoised)
        if sigma_next > 0:
            d_next = (x_next - _denoise(denoiser, x_next, sigma_next, cond)) / float(sigma_next)
            x_next = x + (d + d_next) * (0.5 * float(sigma_next - sigma))
        x = x_next
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_ddim(
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    eta: float = 0.0,
) -> Tensor:
    """DDIM (Song et al. 2021) written over noise levels ``sigma = beta / alpha``.

    In these coordinates DDIM moves to ``denoised + sigma_next * eps`` with the current
    noise estimate ``eps = (x - denoised) / sigma``; ``eta > 0`` swaps part of ``eps`` for
    fresh noise (``eta = 1`` is ancestral, DDPM-like sampling). Because the update only
    depends on the level ratio it is the same for every variance-preserving schedule, so a
    v-objective model behind :class:`~openriff.latent_diffusion.precond.VPrecond` samples
    exactly as DDIM does in its own ``(alpha, beta)`` coordinates. With ``eta = 0`` the
    update coincides with an Euler step.

    Args:
        denoiser: the Denoiser.
        noise: standard normal ``[B, ...]``.
        sigmas: float64 schedule ``[N + 1]`` (e.g. ``cosine_sigmas``).
        cond: conditioning passed to the denoiser.
        generator: randomness for ``eta > 0``.
        callback: called after every step.
        eta: stochasticity, 0 (deterministic) to 1 (ancestral).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    x, sigmas = _prepare(noise, sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        eps = (x - denoised) / float(sigma)
        # Ancestral split of sigma_next into a fresh part and a deterministic part, written
        # in VP quantities (alpha^2 = 1 / (1 + sigma^2)) as in the DDIM paper, eq. 16.
        var, var_next = float(sigma) ** 2, float(sigma_next) ** 2
        fresh = 0.0
        if eta > 0 and sigma_next > 0:
            # DDIM eq. 16 (in beta^2 = sigma^2 / (1 + sigma^2)), mapped back to sigma.
            b2, b2_next = var / (1 + var), var_next / (1 + var_next)
            vp_fresh = eta**2 * (b2_next / b2) * (1 - (1 - b2) / (1 - b2_next))
            fresh = vp_fresh * (1 + var_next)
        kept = math.sqrt(max(var_next - fresh, 0.0))
        x = denoised + kept * eps
        if fresh > 0:
            x = x + math.sqrt(fresh) * torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_consistency(
    denoiser: Denoiser,
    noise: Tensor,
    sigmas: Tensor,
    *,
    cond: Conditioning | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1).

    Jump to a clean estimate from each level, then re-noise it to the next level
    (``sqrt(sigma_next^2 - sigma_min^2)`` of fresh noise, so that a consistency function
    with its boundary at ``sigma_min`` sees the level it expects). With
    ``sigmas = [sigma_max, 0]`` this is one-step generation. Give it
    :func:`~openriff.latent_diffusion.schedules.consistency_sigmas`: a level at or below
    ``sigma_min`` adds nothing (the boundary condition returns its input).
    """
    x, sigmas = _prepare(noise, sigmas)
    sigma_min = float(getattr(denoiser, "sigma_min", 0.0))
    denoised = x
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, cond)
        x = denoised
        if sigma_next > 0:
            scale = math.sqrt(max(float(sigma_next) ** 2 - sigma_min**2, 0.0))
            x = denoised + scale * torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


SAMPLERS: dict[str, Sampler] = {
    "heun": sample_heun,
    "euler": sample_euler,
    "ddim": sample_ddim,
    "consistency": sample_consistency,
}
"""The samplers by name (the name a bundle, a sidecar or ``--sampler`` gives)."""
