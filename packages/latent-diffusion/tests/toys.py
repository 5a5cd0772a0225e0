"""Exact denoisers of known distributions: samplers and guidance checked without training."""

from __future__ import annotations

import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning


class GaussianDenoiser:
    """Data ~ N(mu, diag(s^2)): ``D(x, sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu)``."""

    sigma_min = 0.002
    sigma_max = 80.0
    sigma_data = 1.0

    def __init__(self, mu: Tensor, s: Tensor) -> None:
        self.mu, self.s = mu.double(), s.double()
        self.calls = 0

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        self.calls += 1
        sigma = sigma.double().view((-1,) + (1,) * (x.ndim - 1))
        s2 = self.s.square()
        return (self.mu + s2 / (s2 + sigma.square()) * (x.double() - self.mu)).to(x.dtype)


class MixtureDenoiser:
    """Two classes with means ``means[k]`` and shared isotropic std ``s``, equally likely.

    The class is the embedding (one-hot ``[B, 2]``). Where the embedding is kept the exact
    conditional denoiser is returned, elsewhere the exact denoiser of the mixture.
    """

    sigma_min = 0.002
    sigma_max = 80.0
    sigma_data = 1.0

    def __init__(self, means: Tensor, s: float) -> None:
        self.means, self.s = means.double(), s
        self.batch_sizes: list[int] = []

    def conditional(self, x: Tensor, sigma: Tensor, k: Tensor) -> Tensor:
        mu = self.means[k]  # (B, D)
        return mu + self.s**2 / (self.s**2 + sigma.square()) * (x - mu)

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        self.batch_sizes.append(x.shape[0])
        x, sigma = x.double(), sigma.double()[:, None]
        var = self.s**2 + sigma.square()
        # Posterior class probabilities of the noisy point.
        logits = torch.stack(
            [-(x - m).square().sum(1) / (2 * var[:, 0]) for m in self.means], dim=1
        )
        post = logits.softmax(dim=1)  # (B, 2)
        ones = torch.ones(x.shape[0], dtype=torch.long, device=x.device)
        d0, d1 = self.conditional(x, sigma, 0 * ones), self.conditional(x, sigma, ones)
        uncond = post[:, :1] * d0 + post[:, 1:] * d1
        if cond is None or cond.embedding is None:
            return uncond.float()
        kept = cond.embedding_kept(x.shape[0], x.device)[:, None]
        k = cond.embedding.argmax(1)
        return torch.where(kept, self.conditional(x, sigma, k), uncond).float()


class ProcessDenoiser:
    """Each of ``D`` channels is a zero-mean stationary Gaussian process over time with
    covariance ``exp(-(i - j)^2 / (2 l^2))``: ``D(x, sigma) = K (K + sigma^2 I)^-1 x``,
    built for whatever length it is called with (so a padded input is handled exactly)."""

    sigma_min = 0.002
    sigma_max = 80.0
    sigma_data = 1.0

    def __init__(self, scale: float = 3.0) -> None:
        self.scale = scale

    def covariance(self, length: int) -> Tensor:
        t = torch.arange(length, dtype=torch.float64)
        return torch.exp(-(t[:, None] - t[None]).square() / (2 * self.scale**2)) + 1e-6 * torch.eye(
            length
        )

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditioning | None = None) -> Tensor:
        k = self.covariance(x.shape[-1])
        eye = torch.eye(x.shape[-1], dtype=torch.float64)
        out = []
        for row, s in zip(x.double(), sigma.double(), strict=True):
            gain = torch.linalg.solve(k + s**2 * eye, k)  # (K + s^2 I)^-1 K, symmetric pair
            out.append(row @ gain)  # (D, T): x^T (K + s^2)^-1 K = (K (K + s^2)^-1 x)^T
        return torch.stack(out).to(x.dtype)
