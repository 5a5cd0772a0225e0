"""The codecs under bf16 autocast (how the pipeline runs them on CUDA) agree with fp32."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from openriff.cae import from_preset


def relative(half: Tensor, full: Tensor) -> float:
    return ((half.float() - full).norm() / full.norm()).item()


@pytest.mark.parametrize("preset", ["diffariff-tiny", "diffariff-tiny-frequency", "stereo-tiny"])
def test_encoding_and_decoding_under_bf16_autocast_agree_with_fp32(preset: str) -> None:
    torch.manual_seed(0)
    model = from_preset(preset).eval()
    g = torch.Generator().manual_seed(1)
    wave = 0.2 * torch.randn(1, model.channels, 3 * model.chunk_latents * model.hop_length,
                             generator=g)  # fmt: skip
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with torch.no_grad():
        latents = model.encode(wave)
        with bf16:
            half = model.encode(wave)
        assert 0 < relative(half, latents) < 0.05
        if model.decoding == "magnitude":
            # What the network decodes; the phases are then found in fp32 either way (and
            # phases continued from decoded frequencies drift apart with any rounding).
            full_previews = model.previews(latents)
            with bf16:
                half_previews = model.previews(latents)
            for h, f in zip(half_previews, full_previews, strict=True):
                assert h is not None
                assert f is not None
                assert relative(h, f) < 0.05
        full_audio = model.decode(latents, generator=torch.Generator().manual_seed(2))
        with bf16:
            half_audio = model.decode(latents, generator=torch.Generator().manual_seed(2))
    assert half_audio.dtype == torch.float32
    assert torch.isfinite(half_audio).all()
    if model.decoding != "magnitude":
        assert relative(half_audio, full_audio) < 0.1
