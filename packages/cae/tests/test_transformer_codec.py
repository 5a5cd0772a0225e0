import math
from pathlib import Path

import pytest
import torch

from openriff.cae import (
    PRESETS,
    LatentCodec,
    TransformerCAE,
    from_preset,
    from_pretrained,
    save_pretrained,
)
from openriff.cae.noise import Noise, gaussian


@pytest.fixture(scope="module")
def tiny(device: torch.device) -> TransformerCAE:
    torch.manual_seed(0)
    model = from_preset("stereo-tiny")
    assert isinstance(model, TransformerCAE)
    return model.to(device).eval()


def noise(device: torch.device) -> Noise:
    return gaussian(torch.Generator(device).manual_seed(0), device, torch.float32)


def audio(channels: int, samples: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, channels, samples, generator=g) * 0.2).to(device)


def test_stereo_contract_and_128x_compression(tiny: TransformerCAE) -> None:
    assert isinstance(tiny, LatentCodec)
    assert (tiny.channels, tiny.latent_dim, tiny.hop_length) == (2, 64, 4096)
    # 4096 stereo samples (8192 values) -> 64 latent values.
    assert tiny.channels * tiny.hop_length / tiny.latent_dim == 128


@pytest.mark.parametrize("samples", [4800, 4097, 20_000, 70_001])
def test_shapes_bounds_and_exact_lengths(
    tiny: TransformerCAE, samples: int, device: torch.device
) -> None:
    latents = tiny.encode(audio(2, samples, device))
    assert latents.shape == (2, 64, math.ceil(samples / 4096))
    assert latents.abs().max().item() < 1.0
    out = tiny.decode(latents, generator=torch.Generator(device).manual_seed(0), length=samples)
    assert out.shape == (2, 2, samples)
    assert bool(torch.isfinite(out).all())


@pytest.mark.slow
def test_sixty_seconds(tiny: TransformerCAE, device: torch.device) -> None:
    samples = 60 * 48_000 + 5
    latents = tiny.encode(audio(2, samples, device)[:1])
    assert latents.shape == (1, 64, math.ceil(samples / 4096))
    out = tiny.decode(latents, generator=torch.Generator(device).manual_seed(0), length=samples)
    assert out.shape == (1, 2, samples)
    assert bool(torch.isfinite(out).all())


def test_mono_input_is_copied_to_both_channels(tiny: TransformerCAE, device: torch.device) -> None:
    mono = audio(1, 9000, device)
    torch.testing.assert_close(tiny.encode(mono), tiny.encode(mono.expand(-1, 2, -1)))


def test_decoding_is_deterministic_and_two_step(tiny: TransformerCAE, device: torch.device) -> None:
    latents = tiny.encode(audio(2, 30_000, device))
    a = tiny.decode(latents, steps=2, generator=torch.Generator(device).manual_seed(1))
    b = tiny.decode(latents, steps=2, generator=torch.Generator(device).manual_seed(1))
    c = tiny.decode(latents, steps=1, generator=torch.Generator(device).manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_blocks_decode_causally(device: torch.device) -> None:
    model = from_preset("stereo-tiny").to(device).eval()
    with torch.no_grad():
        for p in model.parameters():  # leave the zero-init so every path matters
            p.add_(0.02 * torch.randn_like(p))
    latents = torch.rand(1, 64, 6, device=device) * 2 - 1
    changed = latents.clone()
    changed[..., 4:] = -changed[..., 4:]  # only the last block (block_latents = 2)
    a = model.decode_spectrogram(latents, steps=1, noise=noise(device))
    b = model.decode_spectrogram(changed, steps=1, noise=noise(device))
    frames = 4 * model.frames_per_latent
    torch.testing.assert_close(a[..., :frames], b[..., :frames], rtol=0, atol=0)
    assert not torch.allclose(a[..., frames:], b[..., frames:])


def test_hidden_context_has_no_influence(device: torch.device) -> None:
    model = from_preset("stereo-tiny").to(device).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 1024, 16, generator=g).to(device)
    ctx1 = torch.randn(2, 4, 1024, 16, generator=g).to(device)
    ctx2 = torch.randn(2, 4, 1024, 16, generator=g).to(device)
    feats = model.features(torch.zeros(2, 64, 4, device=device))
    sigma = torch.full((2,), 1.0, device=device)
    hidden = torch.tensor([False, True], device=device)
    with torch.no_grad():
        a = model.denoise(x, sigma, feats, ctx1, hidden)
        b = model.denoise(x, sigma, feats, ctx2, hidden)
    torch.testing.assert_close(a[0], b[0])  # context hidden: identical
    assert not torch.allclose(a[1], b[1])  # context visible: it matters


def test_boundary_condition(device: torch.device) -> None:
    model = from_preset("stereo-tiny").to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, 4, 1024, 16, device=device)
    feats = model.features(torch.zeros(2, 64, 2, device=device))
    sigma = torch.full((2,), model.consistency.sigma_min, device=device)
    torch.testing.assert_close(model.denoise(x, sigma, feats, None), x)


def test_training_crop_must_hold_two_blocks(tiny: TransformerCAE, device: torch.device) -> None:
    spec = torch.zeros(1, 4, 1024, 8, device=device)
    one = torch.ones(1, device=device)
    with pytest.raises(ValueError, match="crops of 2 blocks"):
        tiny(spec, spec, one, one * 0.5, one)


def test_save_and_load(tiny: TransformerCAE, tmp_path: Path, device: torch.device) -> None:
    loaded = from_pretrained(save_pretrained(tiny, tmp_path / "stereo"), device=device)
    assert isinstance(loaded, TransformerCAE)
    wave = audio(2, 10_000, device)
    assert torch.equal(loaded.encode(wave), tiny.encode(wave))


def test_stereo_preset_size() -> None:
    kind, config = PRESETS["stereo"]
    assert kind == "transformer"
    model = TransformerCAE(config)  # type: ignore[arg-type]
    assert model.channels == 2
    assert 200e6 < sum(p.numel() for p in model.parameters()) < 300e6


def test_magnitude_decoding_reads_the_preview(tiny: TransformerCAE, device: torch.device) -> None:
    latents = tiny.encode(audio(2, 20_000, device))  # (2, 64, 5)
    preview = tiny.preview_spectrogram(latents)
    assert preview.shape == (2, 2, 1024, 5 * 8)
    torch.testing.assert_close(preview, tiny.preview(tiny.features(latents)))
    a = tiny.decode(latents, decoding="magnitude", generator=torch.Generator(device).manual_seed(0))
    b = tiny.decode(latents, decoding="magnitude", generator=torch.Generator(device).manual_seed(0))
    assert a.shape == (2, 2, 5 * 4096)
    assert torch.equal(a, b)
    assert not torch.equal(
        a, tiny.decode(latents, generator=torch.Generator(device).manual_seed(0))
    )
