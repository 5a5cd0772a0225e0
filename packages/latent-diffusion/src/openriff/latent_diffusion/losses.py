"""Training objectives over a Denoiser: EDM, improved consistency training, v-objective.

Each loss has two parts: ``draw(batch, generator, progress)`` picks the noise levels of a
batch, and ``loss(denoiser, x0, cond, levels, noise) -> [B]`` gives per-example values (the
trainer averages). Levels and noise are drawn separately so that a distributed run can
draw them for its global batch and keep its shard, reproducing a single-process run.
``progress`` (0 to 1, the share of training done) drives curricula.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning

DenoiseFn = Callable[[Tensor, Tensor, "Conditioning | None"], Tensor]


def _view(values: Tensor, like: Tensor) -> Tensor:
    return values.view((-1,) + (1,) * (like.ndim - 1))


def _weighted_denoising(
    denoiser: DenoiseFn,
    x0: Tensor,
    cond: Conditioning | None,
    levels: Tensor,
    noise: Tensor,
    sigma_data: float,
) -> Tensor:
    """Per-example ``(sigma^2 + sd^2) / (sigma sd)^2 * mean((D(x0 + sigma n) - x0)^2)``."""
    sigma = levels.to(x0.device, torch.float32)
    weight = (sigma.square() + sigma_data**2) / (sigma * sigma_data).square()
    denoised = denoiser(x0 + _view(sigma, x0) * noise, sigma, cond)
    return weight * (denoised.float() - x0.float()).square().flatten(1).mean(1)


@dataclass(frozen=True)
class EDMLoss:
    """EDM's denoising loss (Karras et al. 2022, Table 1 and eq. 8).

    ``ln sigma ~ N(p_mean, p_std^2)``, weight ``(sigma^2 + sd^2) / (sigma sd)^2``, which
    makes every noise level's loss start at unit scale.
    """

    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_data: float = 0.5

    def draw(self, batch: int, generator: torch.Generator | None, progress: float = 0.0) -> Tensor:
        """Noise levels ``[batch]``."""
        return (torch.randn(batch, generator=generator) * self.p_std + self.p_mean).exp()

    def __call__(
        self,
        denoiser: DenoiseFn,
        x0: Tensor,
        cond: Conditioning | None,
        levels: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """Per-example loss ``[B]`` of clean data ``x0`` ``[B, ...]`` at ``levels``."""
        return _weighted_denoising(denoiser, x0, cond, levels, noise, self.sigma_data)


@dataclass(frozen=True)
class VLoss:
    """The v-objective on the cosine schedule (bass paper 3.2), through :class:`VPrecond`.

    ``t ~ U(0, 1)``; the squared error of the predicted ``v`` equals the squared error of
    the clean estimate times ``1 / beta^2 = (sigma^2 + 1) / sigma^2``, which is how it is
    computed here. ``t`` is kept inside the levels of the wrapped model (``sigma_min`` to
    ``sigma_max``) so that the weight stays finite.
    """

    sigma_min: float = 1e-3
    sigma_max: float = 1e3

    def draw(self, batch: int, generator: torch.Generator | None, progress: float = 0.0) -> Tensor:
        """Noise levels ``[batch]`` of times uniform in [0, 1] (clipped to the model's range)."""
        t_lo, t_hi = (math.atan(s) * 2 / math.pi for s in (self.sigma_min, self.sigma_max))
        u = torch.rand(batch, generator=generator, dtype=torch.float64)
        return torch.tan((t_lo + u * (t_hi - t_lo)) * math.pi / 2).float()

    def __call__(
        self,
        denoiser: DenoiseFn,
        x0: Tensor,
        cond: Conditioning | None,
        levels: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """Per-example loss ``[B]`` of clean data ``x0`` at ``levels``."""
        # 1 / beta^2 is EDM's weight with sigma_data = 1.
        return _weighted_denoising(denoiser, x0, cond, levels, noise, 1.0)


@dataclass(frozen=True)
class ConsistencyLoss:
    """Improved consistency training (Song & Dhariwal 2023) with continuous noise levels.

    As in Music2Latent and C-DiT (DiT follow-up paper 4.2): the student level ``sigma`` is
    log-normal, the teacher sits one step lower on the Karras ``rho`` curve in its
    continuous index ``u in [0, 1]``, and the step shrinks exponentially from ``1 / s0``
    to ``1 / s1`` over training (``progress`` 0 to 1). The teacher is the same network
    without gradient; the distance is pseudo-Huber with ``c = huber_c * sqrt(numel)`` and
    each pair is weighted by ``1 / (sigma - sigma_teacher)``. The student stays one step
    above ``sigma_min`` so that the weight stays bounded.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    p_mean: float = -1.1
    p_std: float = 2.0
    s0: float = 10.0
    s1: float = 1280.0
    huber_c: float = 0.00054

    def index_to_sigma(self, u: Tensor) -> Tensor:
        """Noise level at continuous index ``u`` of the Karras curve (0: sigma_min)."""
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return (lo + u * (hi - lo)) ** self.rho

    def sigma_to_index(self, sigma: Tensor) -> Tensor:
        """Inverse of :meth:`index_to_sigma`."""
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return (sigma ** (1 / self.rho) - lo) / (hi - lo)

    def step(self, progress: float) -> float:
        """Teacher step in index units at ``progress`` in [0, 1] of training."""
        progress = min(max(progress, 0.0), 1.0)
        return float((1 / self.s0) * (self.s0 / self.s1) ** progress)

    def draw(self, batch: int, generator: torch.Generator | None, progress: float = 0.0) -> Tensor:
        """Student and teacher levels ``[batch, 2]`` at ``progress`` of training."""
        log_sigma = torch.randn(batch, generator=generator, dtype=torch.float64)
        sigma = (self.p_mean + self.p_std * log_sigma).exp().clamp(self.sigma_min, self.sigma_max)
        step = self.step(progress)
        u = self.sigma_to_index(sigma).clamp(step, 1.0)
        return torch.stack([self.index_to_sigma(u), self.index_to_sigma(u - step)], dim=1).float()

    def __call__(
        self,
        denoiser: DenoiseFn,
        x0: Tensor,
        cond: Conditioning | None,
        levels: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """Per-example loss ``[B]`` of clean data ``x0`` at ``levels`` ``[B, 2]``."""
        levels = levels.to(x0.device, torch.float32)
        sigma, teacher_sigma = levels[:, 0], levels[:, 1]
        student = denoiser(x0 + _view(sigma, x0) * noise, sigma, cond)
        with torch.no_grad():
            teacher = denoiser(x0 + _view(teacher_sigma, x0) * noise, teacher_sigma, cond)
        diff = (student.float() - teacher.float()).flatten(1)
        c = self.huber_c * math.sqrt(diff.shape[1])
        distance = (diff.square().sum(1) + c * c).sqrt() - c
        return distance / (sigma - teacher_sigma)
