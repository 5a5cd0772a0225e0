"""Preconditioning: wrappers that turn a Backbone into a Denoiser.

A Backbone maps ``(c_in * x, c_noise, cond) -> F``; its wrapper returns the clean
estimate ``D(x, sigma) = c_skip x + c_out F`` (Karras et al. 2022, eq. 7). The three
parameterisations differ only in their scalings:

* :class:`EDMPrecond`: EDM's (``sigma_data`` configurable or estimated from data);
* :class:`ConsistencyPrecond`: EDM's shifted so that ``D(x, sigma_min) = x`` exactly, the
  consistency-model boundary condition (Song et al. 2023; DiT follow-up paper 3.3);
* :class:`VPrecond`: a v-prediction network trained on the cosine schedule (bass paper
  3.2), read as a denoiser so that every sampler runs it (k-diffusion's ``VDenoiser``).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

from openriff.latent_diffusion.conditioning import Conditioning


class Backbone(Protocol):
    """``forward(x[B, D, T], c_noise[B], cond) -> [B, D, T]`` (ARCHITECTURE.md)."""

    def __call__(self, x: Tensor, c_noise: Tensor, cond: Conditioning | None) -> Tensor:
        """Raw network output for the scaled input ``x`` at noise embedding ``c_noise``."""
        ...


def estimate_sigma_data(latents: Tensor) -> float:
    """Standard deviation of a sample of data latents ``[N, ...]`` (EDM's ``sigma_data``)."""
    if latents.numel() < 2:
        raise ValueError("need at least two values to estimate sigma_data")
    if not torch.isfinite(latents).all():
        raise ValueError("latents contain NaN or infinite values")
    return float(latents.double().std())


class _Precond(nn.Module):
    """Shared body: scalings by subclass, then ``c_skip x + c_out F(c_in x, c_noise)``."""

    def __init__(
        self, backbone: nn.Module, sigma_min: float, sigma_max: float, sigma_data: float
    ) -> None:
        super().__init__()
        if not 0.0 < sigma_min < sigma_max or sigma_data <= 0:
            raise ValueError("need 0 < sigma_min < sigma_max and sigma_data > 0")
        self.backbone = backbone
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.sigma_data = float(sigma_data)

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``c_skip, c_out, c_in, c_noise`` for ``sigma`` (any shape)."""
        raise NotImplementedError

    def forward(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        """Clean estimate of ``x = x0 + sigma * noise``.

        Args:
            x: ``[B, D, T]`` noisy latents (any rank the backbone takes).
            sigma: ``[B]`` noise levels (a scalar tensor or float is broadcast).
            cond: conditioning for the backbone.
        """
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        view = (-1,) + (1,) * (x.ndim - 1)
        c_skip, c_out, c_in, c_noise = (c.view(view) for c in self.scalings(sigma))
        dtype = next(self.backbone.parameters()).dtype
        out = self.backbone((c_in * x.float()).to(dtype), c_noise.flatten(), cond).float()
        return (c_skip * x.float() + c_out * out).to(x.dtype)


class EDMPrecond(_Precond):
    """EDM preconditioning (Karras et al. 2022, Table 1).

    Args:
        backbone: the network.
        sigma_min: lowest noise level the model is used at.
        sigma_max: highest noise level (sampling starts there).
        sigma_data: data standard deviation (:func:`estimate_sigma_data`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
    ) -> None:
        super().__init__(backbone, sigma_min, sigma_max, sigma_data)

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """EDM's ``c_skip, c_out, c_in, c_noise``."""
        sd2 = self.sigma_data**2
        total = (sigma.square() + sd2).sqrt()
        return sd2 / total.square(), sigma * self.sigma_data / total, 1.0 / total, sigma.log() / 4


class ConsistencyPrecond(_Precond):
    """Consistency-model scalings with the boundary condition at ``sigma_min``.

    ``c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2)``,
    ``c_out = (sigma - sigma_min) sd / sqrt(sigma^2 + sd^2)``: ``c_skip(sigma_min) = 1``
    and ``c_out(sigma_min) = 0``, so ``D(x, sigma_min) = x`` for any network.
    """

    def __init__(
        self,
        backbone: nn.Module,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        sigma_data: float = 0.5,
    ) -> None:
        super().__init__(backbone, sigma_min, sigma_max, sigma_data)

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Shifted EDM scalings."""
        sd2 = self.sigma_data**2
        shifted = sigma - self.sigma_min
        c_skip = sd2 / (shifted.square() + sd2)
        c_out = shifted * self.sigma_data / (sigma.square() + sd2).sqrt()
        return c_skip, c_out, 1.0 / (sigma.square() + sd2).sqrt(), sigma.log() / 4


class VPrecond(_Precond):
    """A v-prediction network on the cosine schedule, as a Denoiser.

    The network sees ``z = alpha x0 + beta eps`` with ``alpha = cos(pi t / 2)``,
    ``beta = sin(pi t / 2)`` and predicts ``v = alpha eps - beta x0``. With
    ``sigma = beta / alpha`` and ``x = z / alpha`` this is ``c_in = alpha``,
    ``c_skip = alpha^2``, ``c_out = -beta`` and ``c_noise = t``: EDM's scalings with
    ``sigma_data = 1`` and a negated ``c_out``. Sample it with ``sample_ddim`` over
    ``cosine_sigmas``, or with any other sampler.
    """

    def __init__(
        self, backbone: nn.Module, sigma_min: float = 1e-3, sigma_max: float = 1e3
    ) -> None:
        super().__init__(backbone, sigma_min, sigma_max, 1.0)

    def scalings(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``alpha^2, -beta, alpha, t`` for ``sigma = beta / alpha``."""
        alpha = 1.0 / (sigma.square() + 1.0).sqrt()
        beta = sigma * alpha
        t = torch.atan(sigma) * (2.0 / math.pi)
        return alpha.square(), -beta, alpha, t
