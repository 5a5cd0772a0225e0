"""Noise-level schedules for the samplers: decreasing float64 ``sigmas`` ending with 0.

All schedules live in the variance-exploding parameterisation of EDM (``x = x0 + sigma *
eps``); a variance-preserving schedule (``z = alpha x0 + beta eps``) maps onto it by
``sigma = beta / alpha`` (see :func:`cosine_sigmas`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _check(n: int, sigma_min: float, sigma_max: float) -> None:
    if n < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {n}")
    if not 0.0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")


def karras_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """The EDM schedule (Karras et al. 2022, eq. 5): ``n`` levels, then 0.

    ``sigma_i = (sigma_max^(1/rho) + i / (n - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``.

    Returns:
        float64 ``[n + 1]``, from ``sigma_max`` down to ``sigma_min``, then 0.
    """
    _check(n, sigma_min, sigma_max)
    ramp = torch.linspace(0.0, 1.0, n, dtype=torch.float64, device=device)
    if n == 1:
        ramp = torch.zeros(1, dtype=torch.float64, device=device)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def consistency_sigmas(
    n: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """Multistep consistency sampling levels: ``n`` above ``sigma_min``, then 0.

    For Song et al. 2023, Algorithm 1: the Karras spacing of ``n + 1`` levels from
    ``sigma_max`` to ``sigma_min``, without the last. A consistency function returns its
    input at ``sigma_min`` (the boundary condition), so a step from there would repeat the
    previous step's clean estimate: :func:`karras_sigmas` makes ``n`` steps worth
    ``n - 1``.

    Returns:
        float64 ``[n + 1]``, from ``sigma_max`` down to a level above ``sigma_min``, then 0.
    """
    _check(n, sigma_min, sigma_max)
    levels = karras_sigmas(n + 1, sigma_min, sigma_max, rho, device)
    return torch.cat([levels[:n], levels.new_zeros(1)])


def cosine_sigmas(
    n: int,
    sigma_min: float = 1e-3,
    sigma_max: float = 1e3,
    device: torch.device | str | None = None,
) -> Tensor:
    """Uniform steps in time of the cosine schedule (bass paper 3.2), as VE levels.

    The cosine schedule has ``alpha = cos(pi t / 2)``, ``beta = sin(pi t / 2)``, so
    ``sigma = tan(pi t / 2)``; ``t`` runs uniformly between the times of ``sigma_max`` and
    ``sigma_min`` (``t = 1`` itself is pure noise, ``sigma = inf``, hence the clip).

    Returns:
        float64 ``[n + 1]``, from ``sigma_max`` down to ``sigma_min``, then 0.
    """
    _check(n, sigma_min, sigma_max)
    t_hi, t_lo = math.atan(sigma_max) * 2 / math.pi, math.atan(sigma_min) * 2 / math.pi
    t = torch.linspace(t_hi, t_lo, n, dtype=torch.float64, device=device)
    if n == 1:
        t = t[:1]
    sigmas = torch.tan(t * math.pi / 2)
    return torch.cat([sigmas, sigmas.new_zeros(1)])
