"""Multi-condition guidance against exact denoisers of a two-class Gaussian mixture."""

from __future__ import annotations

import pytest
import torch
from toys import GaussianDenoiser, MixtureDenoiser

from openriff.latent_diffusion import (
    Conditioning,
    MultiConditionGuidance,
    karras_sigmas,
    sample_heun,
)

DIM = 16
N = 10_000


@pytest.fixture(scope="module")
def mixture() -> MixtureDenoiser:
    means = torch.zeros(2, DIM)
    means[0, 0], means[1, 0] = -2.0, 2.0
    return MixtureDenoiser(means, s=0.5)


def one_hot(classes: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(classes, 2).float()


def sample(denoiser, cond: Conditioning, seed: int = 0) -> torch.Tensor:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(N, DIM, generator=g, dtype=torch.float64)
    return sample_heun(denoiser, noise, karras_sigmas(40, 0.002, 80.0), cond=cond)


def test_strength_one_is_conditional_sampling(mixture) -> None:  # type: ignore[no-untyped-def]
    cond = Conditioning(embedding=one_hot(torch.ones(N, dtype=torch.long)))
    guided = MultiConditionGuidance(mixture, context_scale=1.0, embedding_scale=1.0)
    a = sample(guided, cond)
    b = sample(mixture, cond)
    assert torch.allclose(a, b, atol=1e-6)
    # ...and conditional sampling draws from class 1: N(means[1], 0.5^2).
    assert abs(float(a[:, 0].mean()) - 2.0) < 0.03
    assert abs(float(a[:, 0].std()) - 0.5) < 0.03 * 0.5 * 2


def test_guided_estimate_is_the_cfg_formula(mixture) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, DIM, generator=g) * 3
    sigma = torch.rand(64, generator=g) * 5 + 0.1
    cond = Conditioning(embedding=one_hot(torch.randint(0, 2, (64,), generator=g)))
    for w in (0.0, 1.0, 2.5, 4.0):
        guided = MultiConditionGuidance(mixture, context_scale=1.0, embedding_scale=w)(
            x, sigma, cond
        )
        uncond = mixture(x, sigma, cond.only(context=False, embedding=False))
        condl = mixture(x, sigma, cond)
        assert torch.allclose(guided, uncond + w * (condl - uncond), atol=1e-5)


def test_larger_strength_pushes_samples_away_from_the_other_class(mixture) -> None:  # type: ignore[no-untyped-def]
    cond = Conditioning(embedding=one_hot(torch.ones(N, dtype=torch.long)))
    means = []
    for w in (1.0, 2.0, 4.0):
        out = sample(MultiConditionGuidance(mixture, 1.0, w), cond)
        means.append(float(out[:, 0].mean()))
        # Only the class axis moves: the others keep the class mean 0.
        assert float(out[:, 1:].mean(0).abs().max()) < 0.05
    assert means[0] < means[1] < means[2]
    assert means[2] > 2.0 + 0.05


def test_two_conditions_are_evaluated_in_one_batched_call() -> None:
    calls: list[tuple[int, list[bool], list[bool]]] = []

    class Probe(GaussianDenoiser):
        def __call__(self, x, sigma, cond=None):  # type: ignore[no-untyped-def]
            kc = cond.context_kept(x.shape[0], x.device).tolist()
            ke = cond.embedding_kept(x.shape[0], x.device).tolist()
            calls.append((x.shape[0], kc, ke))
            # An estimate that shows which conditions were seen.
            return (
                x * 0
                + torch.tensor(kc, dtype=x.dtype)[:, None, None] * 10
                + torch.tensor(ke, dtype=x.dtype)[:, None, None]
            )

    probe = Probe(torch.zeros(1), torch.ones(1))
    cond = Conditioning(context=torch.ones(2, 3, 5), embedding=torch.ones(2, 4))
    x, sigma = torch.zeros(2, 3, 5), torch.ones(2)
    out = MultiConditionGuidance(probe, context_scale=1.5, embedding_scale=3.0)(x, sigma, cond)
    assert len(calls) == 1  # three subsets, one forward pass
    assert calls[0][0] == 6
    # D = D0 + wc (Dc - D0) + we (Dce - Dc) with D0 = 0, Dc = 10, Dce = 11.
    assert torch.allclose(out, torch.full_like(out, 1.5 * 10 + 3.0 * 1))
    calls.clear()
    MultiConditionGuidance(probe, context_scale=1.0, embedding_scale=2.0)(x, sigma, cond)
    assert calls[0][0] == 4  # D0 has weight 0 and is skipped


def test_rescale_and_interval(mixture) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, DIM, generator=g) * 3
    cond = Conditioning(embedding=one_hot(torch.randint(0, 2, (32,), generator=g)))
    sigma = torch.full((32,), 2.0)
    plain = MultiConditionGuidance(mixture, 1.0, 5.0)(x, sigma, cond)
    full = mixture(x, sigma, cond)
    rescaled = MultiConditionGuidance(mixture, 1.0, 5.0, rescale_phi=1.0)(x, sigma, cond)
    # phi = 1 gives the guided estimate the conditional estimate's std, per example.
    assert torch.allclose(rescaled.std(1), full.std(1), rtol=1e-4)
    half = MultiConditionGuidance(mixture, 1.0, 5.0, rescale_phi=0.5)(x, sigma, cond)
    assert torch.allclose(half, 0.5 * rescaled + 0.5 * plain, atol=1e-5)
    # Outside the interval the conditional estimate is used unchanged.
    levels = torch.tensor([0.5, 2.0, 8.0]).repeat_interleave(torch.tensor([10, 12, 10]))
    out = MultiConditionGuidance(mixture, 1.0, 5.0, interval=(1.0, 4.0))(x, levels, cond)
    inside = (levels >= 1.0) & (levels <= 4.0)
    assert torch.allclose(out[~inside], mixture(x, levels, cond)[~inside], atol=1e-6)
    assert torch.allclose(
        out[inside], MultiConditionGuidance(mixture, 1.0, 5.0)(x, levels, cond)[inside], atol=1e-6
    )


def test_clipped_denoiser_keeps_the_estimate_in_its_bound() -> None:
    from openriff.latent_diffusion.guidance import ClippedDenoiser

    wide = GaussianDenoiser(torch.full((4,), 3.0), torch.ones(4))  # estimates near 3
    clipped = ClippedDenoiser(wide, 1.5)
    x, sigma = torch.full((2, 4), 3.0), torch.full((2,), 0.5)
    assert float(wide(x, sigma).max()) > 2.9
    assert torch.equal(clipped(x, sigma), wide(x, sigma).clamp(-1.5, 1.5))
    assert (clipped.sigma_min, clipped.sigma_max) == (wide.sigma_min, wide.sigma_max)
    with pytest.raises(ValueError, match="bound must be > 0"):
        ClippedDenoiser(wide, 0.0)
