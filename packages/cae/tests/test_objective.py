"""The training objective's extra terms and the feature-gradient scale (codec.objective)."""

import dataclasses

import pytest
import torch

from openriff.cae import PRESETS, ConvCAE, TransformerCAE
from openriff.cae.codec import PREVIEW_FLOOR, SpectrogramCodec
from openriff.cae.evaluation import multiresolution_stft_distance
from openriff.cae.spectral import from_spectrogram, magnitude, to_spectrogram


def tiny(name: str, **consistency: float) -> SpectrogramCodec:
    kind, config = PRESETS[name]
    config = dataclasses.replace(
        config, consistency=dataclasses.replace(config.consistency, **consistency)
    )
    torch.manual_seed(0)
    return ConvCAE(config) if kind == "conv" else TransformerCAE(config)


def spectrogram(model: SpectrogramCodec, latents: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    wave = 0.2 * torch.randn(2, model.channels, latents * model.hop_length, generator=g)
    return to_spectrogram(wave, model.spectrogram)


def test_objective_terms_are_what_they_say() -> None:
    model = tiny("diffariff-tiny", spectral_weight=0.7, preview_weight=0.3)
    target = spectrogram(model, 2)
    exact = (magnitude(target) + PREVIEW_FLOOR).log()
    ct = torch.tensor([0.5, 1.5])
    # Perfect student and preview: only the consistency term is left.
    loss = model.objective(ct, target, target, 1.0, exact)
    assert loss.item() == pytest.approx(1.0, abs=1e-5)
    # A preview off by 0.25 everywhere and a student at half the compressed magnitude.
    loss = model.objective(torch.zeros(2), 0.5 * target, target, 1.0, exact + 0.25)
    half = from_spectrogram(0.5 * target, model.spectrogram)
    wave = from_spectrogram(target, model.spectrogram)
    spectral = multiresolution_stft_distance(half, wave).mean().item()
    assert spectral > 0.1
    assert loss.item() == pytest.approx(0.7 * spectral + 0.3 * 0.25, rel=1e-4)
    # No preview given (or weight 0): no preview term.
    assert model.objective(ct, target, target, 1.0).item() == pytest.approx(1.0, abs=1e-5)


def test_preview_convergence_is_ruled_by_loud_bins() -> None:
    model = tiny("diffariff-tiny", spectral_weight=0.0, preview_weight=0.0)
    model.consistency = dataclasses.replace(model.consistency, preview_convergence_weight=2.0)
    # A tone: its energy sits in a few harmonics, as a bass line's does.
    t = torch.arange(2 * model.hop_length) / model.sample_rate
    tone = sum(torch.sin(2 * torch.pi * 110.0 * k * t) / k for k in range(1, 8))
    noise = 1e-3 * torch.randn(2, 1, t.numel(), generator=torch.Generator().manual_seed(0))
    target = to_spectrogram(0.3 * tone + noise, model.spectrogram)
    exact = (magnitude(target) + PREVIEW_FLOOR).log()
    zero = torch.zeros(2)
    assert model.objective(zero, target, target, 1.0, exact).item() == pytest.approx(0, abs=1e-5)
    # Every magnitude 1.5 times too large: a convergence of 0.5, times the weight.
    too_loud = model.objective(zero, target, target, 1.0, exact + torch.tensor(1.5).log())
    assert too_loud.item() == pytest.approx(2.0 * 0.5, rel=1e-4)
    # The same log error on the loudest 1 % of bins costs far more than on the quietest 50 %.
    flat = exact.flatten(1)
    order = flat.argsort(dim=1)
    cut = flat.shape[1] // 100

    def cost(bins: torch.Tensor) -> float:
        wrong = flat.clone()
        wrong.scatter_(1, bins, wrong.gather(1, bins) + 1.0)
        return model.objective(zero, target, target, 1.0, wrong.view_as(exact)).item()

    assert cost(order[:, -cut:]) > 5 * cost(order[:, : flat.shape[1] // 2])


@pytest.mark.parametrize("name", ["diffariff-tiny", "stereo-tiny"])
def test_feature_gradient_scales_what_the_consistency_model_sends_back(name: str) -> None:
    def encoder_gradient(model: SpectrogramCodec) -> torch.Tensor:
        spec = spectrogram(model, model.training_latents)
        g = torch.Generator().manual_seed(1)
        noise = torch.randn(spec.shape, generator=g)
        sigma = torch.tensor([0.8, 20.0])
        model.zero_grad()
        torch.autograd.backward(model(spec, noise, sigma, 0.9 * sigma, torch.ones(2), 1.0))
        grads = [p.grad.flatten() for n, p in model.named_parameters() if n.startswith("enc")]
        return torch.cat([g for g in grads if g is not None])

    def trained_a_little(**consistency: float) -> SpectrogramCodec:
        # Zero-initialised outputs would block every gradient: perturb all weights.
        model = tiny(name, **consistency)
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=g))
        return model

    # Without the preview term the encoder learns only through the consistency model...
    full = encoder_gradient(trained_a_little(preview_weight=0.0, feature_gradient=1.0))
    tenth = encoder_gradient(trained_a_little(preview_weight=0.0, feature_gradient=0.1))
    detached = encoder_gradient(trained_a_little(preview_weight=0.0, feature_gradient=0.0))
    assert full.abs().max() > 0
    torch.testing.assert_close(tenth, 0.1 * full, rtol=1e-3, atol=1e-4 * full.abs().max().item())
    assert detached.abs().max().item() == 0.0
    # ... and the preview term reaches it directly.
    preview_only = encoder_gradient(trained_a_little(preview_weight=1.0, feature_gradient=0.0))
    assert preview_only.abs().max() > 0


@pytest.mark.parametrize("name", ["diffariff-tiny", "stereo-tiny"])
def test_preview_has_the_shape_of_the_magnitudes(name: str) -> None:
    model = tiny(name)
    spec = spectrogram(model, model.training_latents)
    latents = model.encode_spectrogram(spec)
    features = model.features(latents)
    preview = (
        model.decoder.preview(features) if isinstance(model, ConvCAE) else model.preview(features)
    )
    assert preview.shape == magnitude(spec).shape
