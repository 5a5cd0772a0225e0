"""Training objectives as data: each names its preconditioning, loss and sampling schedule.

A model's ``objective`` (``ModelConfig.objective``) chooses all three from
:data:`OBJECTIVES`, so training, loading and sampling never branch on its name:

* ``edm``: EDM preconditioning and loss (Karras et al. 2022), sampled over the Karras
  schedule (Diff-A-Riff 4.2);
* ``consistency``: consistency training (Song et al. 2023; the DiT follow-up 4.3), sampled
  over the Karras spacing with every intermediate level above ``sigma_min``
  (:func:`~openriff.latent_diffusion.schedules.consistency_sigmas`);
* ``v``: v-prediction on the cosine schedule (bass paper 3.2), sampled over uniform steps
  in time of that schedule (:func:`~openriff.latent_diffusion.schedules.cosine_sigmas`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from openriff.latent_diffusion.losses import ConsistencyLoss, EDMLoss, VLoss
from openriff.latent_diffusion.precond import ConsistencyPrecond, EDMPrecond, VPrecond
from openriff.latent_diffusion.schedules import consistency_sigmas, cosine_sigmas, karras_sigmas

Precond = EDMPrecond | ConsistencyPrecond | VPrecond
Loss = EDMLoss | ConsistencyLoss | VLoss


@dataclass(frozen=True)
class NoiseRange:
    """The noise levels a model works in (``ModelConfig``'s three sigmas)."""

    sigma_min: float
    sigma_max: float
    sigma_data: float


@dataclass(frozen=True)
class Objective:
    """What goes with one training objective.

    Attributes:
        precond: ``(backbone, noise range) -> Denoiser``.
        loss: ``(noise range, draw) -> loss``; ``draw`` holds ``p_mean`` / ``p_std`` of the
            log-normal noise-level draw where given (empty for the default draw).
        schedule: ``(steps, sigma_min, sigma_max) -> sigmas`` (float64, ending with 0).
        log_normal_draw: whether the loss draws log-normal noise levels (``p_mean`` /
            ``p_std`` apply); the v-objective draws uniform times instead.
        samplers: the samplers (``SAMPLERS`` names) its denoiser is meant for: ODE
            solvers integrate a denoiser's estimates, a consistency sampler jumps to a
            consistency function's; each on the other's model gives a poor sample.
        sampling: default sampling settings of its models (``sampler``, ``steps``), below
            whatever a bundle recommends: 5 consistency steps (DiT follow-up 4.2).
    """

    precond: Callable[[nn.Module, NoiseRange], Precond]
    loss: Callable[[NoiseRange, dict[str, float]], Loss]
    schedule: Callable[[int, float, float], Tensor]
    log_normal_draw: bool
    samplers: frozenset[str]
    sampling: tuple[tuple[str, str | int], ...] = ()


def _edm_precond(backbone: nn.Module, r: NoiseRange) -> Precond:
    return EDMPrecond(backbone, r.sigma_min, r.sigma_max, r.sigma_data)


def _consistency_precond(backbone: nn.Module, r: NoiseRange) -> Precond:
    return ConsistencyPrecond(backbone, r.sigma_min, r.sigma_max, r.sigma_data)


def _v_precond(backbone: nn.Module, r: NoiseRange) -> Precond:
    return VPrecond(backbone, r.sigma_min, r.sigma_max)


def _edm_loss(r: NoiseRange, draw: dict[str, float]) -> Loss:
    return EDMLoss(sigma_data=r.sigma_data, **draw)


def _consistency_loss(r: NoiseRange, draw: dict[str, float]) -> Loss:
    return ConsistencyLoss(sigma_min=r.sigma_min, sigma_max=r.sigma_max, **draw)


def _v_loss(r: NoiseRange, draw: dict[str, float]) -> Loss:
    return VLoss(sigma_min=r.sigma_min, sigma_max=r.sigma_max)


_SOLVERS = frozenset({"heun", "euler", "ddim"})
_JUMPS = frozenset({"consistency"})

OBJECTIVES: dict[str, Objective] = {
    "edm": Objective(_edm_precond, _edm_loss, karras_sigmas, True, _SOLVERS),
    "consistency": Objective(
        _consistency_precond,
        _consistency_loss,
        consistency_sigmas,
        True,
        _JUMPS,
        (("sampler", "consistency"), ("steps", 5)),
    ),
    "v": Objective(_v_precond, _v_loss, cosine_sigmas, False, _SOLVERS),
}
