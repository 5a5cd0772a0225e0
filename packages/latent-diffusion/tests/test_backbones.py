"""Backbones: presets, shapes at any length, conditioning flags, registry, scalings."""

from __future__ import annotations

import math

import pytest
import torch

from openriff.latent_diffusion import (
    BACKBONES,
    Conditioning,
    ConsistencyLoss,
    ConsistencyPrecond,
    EDMLoss,
    EDMPrecond,
    VPrecond,
    create_backbone,
    estimate_sigma_data,
)


def count(name: str, preset: str) -> int:
    with torch.device("meta"):
        model = create_backbone(name, preset)
    return sum(p.numel() for p in model.parameters())


def test_paper_presets_have_the_paper_sizes() -> None:
    # Diff-A-Riff: 500 M in total with a 58 M CAE; DiT follow-up: about 280 M.
    assert abs(count("unet1d", "diffariff") / 440e6 - 1) < 0.05
    assert abs(count("dit", "paper") / 280e6 - 1) < 0.05
    assert count("unet1d", "tiny") < 1e6
    assert count("dit", "tiny") < 1e6


def randomize_outputs(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give the zero-initialised layers random weights, so every path matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def inputs(config, batch: int, length: int, seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.channels, length, generator=g)
    cond = Conditioning(
        context=torch.randn(batch, config.context_channels, length, generator=g),
        embedding=torch.randn(batch, config.embedding_dim, generator=g),
    )
    return x, torch.rand(batch, generator=g), cond


@pytest.mark.parametrize("name", ["unet1d", "dit"])
def test_any_length_and_zero_initial_output(name: str) -> None:
    torch.manual_seed(0)
    model = create_backbone(name, "tiny")
    for length in (1, 5, 13, 37, 64):
        x, c_noise, cond = inputs(model.config, 3, length)
        out = model(x, c_noise, cond)
        assert out.shape == x.shape
        assert not out.any()  # the output layer starts at zero
    randomize_outputs(model, 1)
    x, c_noise, cond = inputs(model.config, 2, 13)
    out = model(x, c_noise, cond)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert out.abs().sum() > 0


@pytest.mark.parametrize("name", ["unet1d", "dit"])
def test_a_bf16_backbone_runs_and_agrees_with_fp32(name: str) -> None:
    # The U-Net's position-bias MLP took float32 distances into bf16 weights and crashed.
    torch.manual_seed(0)
    model = randomize_outputs(create_backbone(name, "tiny"), 2).eval()
    x, c_noise, cond = inputs(model.config, 2, 21)
    with torch.no_grad():
        full = model(x, c_noise, cond)
        half = model.to(torch.bfloat16)(
            x.bfloat16(), c_noise.bfloat16(),
            Conditioning(context=cond.context.bfloat16(), embedding=cond.embedding.bfloat16()),
        )  # fmt: skip
    assert half.dtype == torch.bfloat16
    error = (half.float() - full).norm() / full.norm()
    assert error < 0.05, float(error)


@pytest.mark.parametrize("name", ["unet1d", "dit"])
def test_dropped_conditions_equal_absent_ones(name: str) -> None:
    torch.manual_seed(0)
    model = randomize_outputs(create_backbone(name, "tiny"), 2).eval()
    x, c_noise, cond = inputs(model.config, 4, 9)
    off = torch.zeros(4, dtype=torch.bool)
    with torch.no_grad():
        dropped = model(x, c_noise, Conditioning(cond.context, cond.embedding, off, off))
        absent = model(x, c_noise, None)
        full = model(x, c_noise, cond)
        # A zero context is not "no context": the flag tells them apart.
        zero = model(x, c_noise, Conditioning(torch.zeros_like(cond.context), cond.embedding))
    assert torch.allclose(dropped, absent, atol=1e-6)
    assert not torch.allclose(full, absent, atol=1e-4)
    assert not torch.allclose(
        zero, model(x, c_noise, Conditioning(None, cond.embedding)), atol=1e-4
    )
    # Per-example masks: dropping example 0's context changes example 0 only.
    keep = torch.tensor([False, True, True, True])
    with torch.no_grad():
        part = model(x, c_noise, Conditioning(cond.context, cond.embedding, keep_context=keep))
    assert torch.allclose(part[1:], full[1:], atol=1e-5)
    assert not torch.allclose(part[:1], full[:1], atol=1e-4)


def test_bad_inputs_are_named() -> None:
    model = create_backbone("dit", "tiny")
    x, c_noise, cond = inputs(model.config, 2, 8)
    with pytest.raises(ValueError, match="context must be"):
        model(x, c_noise, Conditioning(context=torch.randn(2, model.config.context_channels, 7)))
    with pytest.raises(ValueError, match="embedding must be"):
        model(x, c_noise, Conditioning(embedding=torch.randn(2, 3)))
    with pytest.raises(ValueError, match="expected x shaped"):
        model(torch.randn(2, 3, 8), c_noise, cond)
    with pytest.raises(ValueError, match="batch size"):
        Conditioning(context=torch.randn(2, 8, 4), embedding=torch.randn(3, 16))


def test_registry_and_overrides() -> None:
    assert {"unet1d", "dit"} <= set(BACKBONES)
    model = create_backbone("dit", "tiny", depth=1, context_channels=0)
    assert len(model.blocks) == 1
    x, c_noise, cond = inputs(create_backbone("dit", "tiny").config, 2, 4)
    with pytest.raises(ValueError, match="without context"):
        model(x, c_noise, cond)
    with pytest.raises(KeyError, match="unknown backbone"):
        create_backbone("wavenet", "tiny")
    with pytest.raises(KeyError, match="unknown preset"):
        create_backbone("dit", "huge")
    with pytest.raises(TypeError, match="no field"):
        create_backbone("dit", "tiny", layers=3)


@pytest.mark.parametrize("precond", [EDMPrecond, ConsistencyPrecond])
def test_preconditioning_scalings(precond) -> None:  # type: ignore[no-untyped-def]
    wrapped = precond(create_backbone("unet1d", "tiny"), sigma_data=0.7)
    sigma = torch.tensor([0.002, 0.1, 1.0, 80.0])
    c_skip, c_out, c_in, c_noise = wrapped.scalings(sigma)
    shift = 0.002 if precond is ConsistencyPrecond else 0.0
    assert torch.allclose(c_skip, 0.49 / ((sigma - shift) ** 2 + 0.49))
    assert torch.allclose(c_out, (sigma - shift) * 0.7 / (sigma**2 + 0.49).sqrt())
    assert torch.allclose(c_in, 1 / (sigma**2 + 0.49).sqrt())
    assert torch.allclose(c_noise, sigma.log() / 4)


def test_consistency_boundary_condition_holds_for_any_network() -> None:
    model = ConsistencyPrecond(randomize_outputs(create_backbone("dit", "tiny"), 3))
    x, _, cond = inputs(model.backbone.config, 2, 6)
    out = model(x, torch.full((2,), model.sigma_min), cond)
    assert torch.allclose(out, x, atol=1e-6)
    assert not torch.allclose(model(x, torch.full((2,), 1.0), cond), x, atol=1e-3)


def test_v_preconditioning_reads_v_as_a_clean_estimate() -> None:
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(5, 3, 7, generator=g), torch.randn(5, 3, 7, generator=g)
    sigma = torch.tensor([0.01, 0.3, 1.0, 4.0, 50.0])
    alpha = 1 / (1 + sigma**2).sqrt()
    beta = sigma * alpha
    v = alpha[:, None, None] * eps - beta[:, None, None] * x0

    class Oracle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, t, cond):  # type: ignore[no-untyped-def]
            # It sees z = alpha x0 + beta eps and t with sigma = tan(pi t / 2).
            assert torch.allclose(torch.tan(t * math.pi / 2), sigma, rtol=1e-4)
            assert torch.allclose(
                z, alpha[:, None, None] * x0 + beta[:, None, None] * eps, atol=1e-5
            )
            return v

    out = VPrecond(Oracle())(x0 + sigma[:, None, None] * eps, sigma)
    assert torch.allclose(out, x0, atol=1e-4)


def test_losses() -> None:
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(6, 2, 5, generator=g)
    noise = torch.randn(6, 2, 5, generator=g)
    edm = EDMLoss(sigma_data=0.5)
    levels = edm.draw(10_000, g)
    assert abs(float(levels.log().mean()) + 1.2) < 0.05
    assert abs(float(levels.log().std()) - 1.2) < 0.05
    sigma = edm.draw(6, g)
    # A denoiser that returns its input is off by sigma * noise: loss = weight * sigma^2 E[n^2].
    identity = edm(lambda x, s, c: x, x0, None, sigma, noise)
    weight = (sigma**2 + 0.25) / (sigma * 0.5) ** 2
    assert torch.allclose(
        identity, weight * sigma**2 * noise.square().flatten(1).mean(1), rtol=1e-5
    )
    assert torch.allclose(edm(lambda x, s, c: x0, x0, None, sigma, noise), torch.zeros(6))

    ct = ConsistencyLoss()
    pairs = ct.draw(1000, g, progress=0.0)
    assert bool((pairs[:, 1] < pairs[:, 0]).all())
    assert float(pairs.min()) >= ct.sigma_min * 0.999
    gaps = ct.sigma_to_index(pairs[:, 0].double()) - ct.sigma_to_index(pairs[:, 1].double())
    assert torch.allclose(gaps, torch.full_like(gaps, 0.1), atol=1e-4)
    late = ct.draw(1000, g, progress=1.0)
    late_gaps = ct.sigma_to_index(late[:, 0].double()) - ct.sigma_to_index(late[:, 1].double())
    assert torch.allclose(late_gaps, torch.full_like(late_gaps, 1 / 1280), atol=1e-4)
    # Student and teacher that agree give zero; otherwise the pseudo-Huber distance over
    # the gap.
    pairs = ct.draw(6, g)
    assert torch.allclose(ct(lambda x, sig, c: x0, x0, None, pairs, noise), torch.zeros(6))
    shifted = ct(lambda x, sig, c: x0 + sig.view(-1, 1, 1), x0, None, pairs, noise)
    gap = pairs[:, 0] - pairs[:, 1]
    c = 0.00054 * math.sqrt(10)
    assert torch.allclose(shifted, ((gap**2 * 10 + c * c).sqrt() - c) / gap, rtol=1e-4)


def test_sigma_data_estimate() -> None:
    data = torch.randn(4000, 8, generator=torch.Generator().manual_seed(6)) * 0.37
    assert estimate_sigma_data(data) == pytest.approx(0.37, rel=0.02)
    with pytest.raises(ValueError, match="NaN"):
        estimate_sigma_data(torch.tensor([1.0, float("nan")]))
