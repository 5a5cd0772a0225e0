"""Inference precision: names, the scope's state, and bf16 autocast agreeing with fp32."""

from __future__ import annotations

import pytest
import torch
from test_backbones import inputs, randomize_outputs

from openriff.latent_diffusion import Conditioning, EDMPrecond, create_backbone
from openriff.latent_diffusion.precision import precision_scope, resolve_precision


def test_auto_is_bf16_on_cuda_and_fp32_elsewhere() -> None:
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_the_scope_autocasts_and_leaves_the_process_as_it_was() -> None:
    before = torch.get_float32_matmul_precision()
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with precision_scope("cpu", "bf16"):
        assert (a @ b).dtype == torch.bfloat16
        assert torch.is_autocast_enabled("cpu")
    with precision_scope("cpu", "fp32"):
        assert (a @ b).dtype == torch.float32
    assert not torch.is_autocast_enabled("cpu")
    assert torch.get_float32_matmul_precision() == before


@pytest.mark.parametrize("name", ["unet1d", "dit"])
def test_a_denoiser_under_bf16_autocast_agrees_with_fp32(name: str) -> None:
    # The preconditioning keeps fp32 (the skip path carries most of the estimate at low
    # noise); the backbone's products run in bf16, so the results differ, slightly.
    torch.manual_seed(0)
    model = randomize_outputs(create_backbone(name, "tiny"), 3).eval()
    denoiser = EDMPrecond(model)
    x, _, cond = inputs(model.config, 2, 27)
    for level in (0.05, 1.0, 20.0):
        sigma = torch.full((2,), level)
        noisy = x * level
        with torch.no_grad():
            full = denoiser(noisy, sigma, cond)
            with precision_scope("cpu", "bf16"):
                half = denoiser(noisy, sigma, cond)
        assert half.dtype == torch.float32
        error = ((half - full).norm() / full.norm()).item()
        assert 0 < error < 0.02, (level, error)


def test_guided_conditions_agree_under_bf16() -> None:
    torch.manual_seed(0)
    model = randomize_outputs(create_backbone("dit", "tiny"), 4).eval()
    x, c_noise, cond = inputs(model.config, 3, 16)
    dropped = Conditioning(cond.context, cond.embedding, torch.tensor([True, False, True]))
    with torch.no_grad():
        full = model(x, c_noise, dropped)
        with precision_scope("cpu", "bf16"):
            half = model(x, c_noise, dropped)
    assert half.dtype == torch.bfloat16
    assert ((half.float() - full).norm() / full.norm()).item() < 0.05
