import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from openriff.cae import (
    PRESETS,
    ConvCAE,
    ConvCAEConfig,
    LatentCodec,
    from_preset,
    from_pretrained,
    save_pretrained,
)
from openriff.cae.codec import PREVIEW_FLOOR, windows
from openriff.cae.config import from_dict, to_dict
from openriff.cae.spectral import magnitude, to_spectrogram
from openriff.cae.windowed import fade_weights


@pytest.fixture(scope="module")
def tiny(device: torch.device) -> ConvCAE:
    torch.manual_seed(0)
    model = from_preset("diffariff-tiny")
    assert isinstance(model, ConvCAE)
    return model.to(device).eval()


def audio(channels: int, samples: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, channels, samples, generator=g) * 0.2).to(device)


def test_satisfies_the_latent_codec_contract(tiny: ConvCAE) -> None:
    assert isinstance(tiny, LatentCodec)
    assert (tiny.sample_rate, tiny.channels, tiny.latent_dim, tiny.hop_length) == (
        48_000,
        1,
        64,
        4096,
    )


@pytest.mark.parametrize("samples", [4800, 4096, 4097, 12_345, 48_000])
def test_shapes_bounds_and_exact_lengths(tiny: ConvCAE, samples: int, device: torch.device) -> None:
    wave = audio(1, samples, device)
    latents = tiny.encode(wave)
    assert latents.shape == (2, 64, math.ceil(samples / 4096))
    assert bool(torch.isfinite(latents).all())
    assert latents.abs().max().item() < 1.0
    out = tiny.decode(latents, generator=torch.Generator(device).manual_seed(0), length=samples)
    assert out.shape == (2, 1, samples)
    assert bool(torch.isfinite(out).all())
    assert tiny.decode(latents, generator=torch.Generator(device).manual_seed(0)).shape == (
        2,
        1,
        latents.shape[-1] * 4096,
    )


@pytest.mark.slow
def test_sixty_seconds_in_windows(tiny: ConvCAE, device: torch.device) -> None:
    samples = 60 * 48_000 + 17
    wave = audio(1, samples, device)[:1]
    latents = tiny.encode(wave)
    assert latents.shape == (1, 64, math.ceil(samples / 4096))
    assert latents.abs().max().item() < 1.0
    out = tiny.decode(latents, steps=1, generator=torch.Generator(device).manual_seed(1))
    assert out.shape == (1, 1, latents.shape[-1] * 4096)
    assert bool(torch.isfinite(out).all())


def test_stereo_input_is_downmixed_for_a_mono_model(tiny: ConvCAE, device: torch.device) -> None:
    stereo = audio(2, 9000, device)
    torch.testing.assert_close(tiny.encode(stereo), tiny.encode(stereo.mean(1, keepdim=True)))


def test_silent_and_clipped_audio_encode(tiny: ConvCAE, device: torch.device) -> None:
    silent = torch.zeros(1, 1, 8192, device=device)
    clipped = (audio(1, 8192, device)[:1] * 20).clamp(-1, 1)
    for wave in (silent, clipped):
        latents = tiny.encode(wave)
        assert bool(torch.isfinite(latents).all())


def test_decoding_is_deterministic_for_a_generator(tiny: ConvCAE, device: torch.device) -> None:
    latents = tiny.encode(audio(1, 40_000, device))
    a = tiny.decode(latents, steps=2, generator=torch.Generator(device).manual_seed(3))
    b = tiny.decode(latents, steps=2, generator=torch.Generator(device).manual_seed(3))
    c = tiny.decode(latents, steps=2, generator=torch.Generator(device).manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(tiny.encode(audio(1, 40_000, device)), latents)


def test_boundary_condition_of_the_consistency_function(
    tiny: ConvCAE, device: torch.device
) -> None:
    # f(x, sigma_min) = x whatever the weights (here: perturbed away from zero-init).
    model = from_preset("diffariff-tiny").to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(2, 2, 1024, 16, device=device)
    pyramid = model.features(torch.zeros(2, 64, 2, device=device))
    sigma = torch.full((2,), model.config.consistency.sigma_min, device=device)
    torch.testing.assert_close(model.denoise(x, sigma, pyramid), x)


def test_magnitude_decoding_turns_the_preview_into_audio_across_windows(
    device: torch.device,
) -> None:
    # A preview that is exactly right, whatever window it is asked for: latent channel 0
    # carries each frame's index, and the preview returns the true log magnitudes there.
    model = from_preset("diffariff-tiny").to(device).eval()
    n = 3 * model.chunk_latents + 5  # several windows, the last one short
    t = torch.arange(n * model.hop_length, device=device) / model.sample_rate
    f0 = 103.83 * 2 ** (torch.floor(t / 1.5) / 12)  # a new note every 1.5 s, off bin centres
    wave = 0.3 * torch.sin(2 * math.pi * torch.cumsum(f0, 0) / model.sample_rate)[None, None]
    log_magnitudes = (magnitude(to_spectrogram(wave, model.spectrogram)) + PREVIEW_FLOOR).log()

    def exact_previews(latents: torch.Tensor) -> tuple[torch.Tensor, None]:
        first = int(latents[0, 0, 0].item())
        frames = latents.shape[-1] * model.frames_per_latent
        start = first * model.frames_per_latent
        return log_magnitudes[..., start : start + frames], None

    model.previews = exact_previews  # type: ignore[method-assign]
    latents = torch.zeros(1, model.latent_dim, n, device=device)
    latents[0, 0] = torch.arange(n, dtype=torch.float32)
    out = model.decode(
        latents, decoding="magnitude", generator=torch.Generator(device).manual_seed(0)
    )
    assert out.shape == wave.shape
    got = magnitude(to_spectrogram(out, model.spectrogram))
    target = log_magnitudes.exp() - PREVIEW_FLOOR
    assert ((got - target).norm() / target.norm()).item() < 0.1
    # The seams between windows are where a per-window reconstruction would cancel.
    frame_error = (got - target).norm(dim=2) / target.norm(dim=2)  # (1, 1, frames)
    assert frame_error.max().item() < 0.3


def test_decoding_is_validated_and_set_by_the_preset(tiny: ConvCAE) -> None:
    assert tiny.decoding == "consistency"
    assert from_preset("diffariff-tiny-tonal").decoding == "magnitude"
    with pytest.raises(ValueError, match="decoding must be one of consistency, magnitude"):
        tiny.decode(torch.zeros(1, 64, 2), decoding="griffin")
    _kind, config = PRESETS["diffariff-tiny"]
    with pytest.raises(ValueError, match="'griffin'"):
        ConvCAE(dataclasses.replace(config, decoding="griffin"))
    # Either way the audio has the asked length.
    for decoding in ("consistency", "magnitude"):
        assert tiny.decode(torch.zeros(1, 64, 3), decoding=decoding, length=10_000).shape == (
            1,
            1,
            10_000,
        )


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (torch.zeros(1, 8192), "shaped"),
        (torch.zeros(1, 1, 0), "empty"),
        (torch.full((1, 1, 8192), float("nan")), "NaN"),
        (torch.zeros(1, 1, 8192, dtype=torch.int16), "floating"),
    ],
)
def test_bad_audio_is_refused(tiny: ConvCAE, wave: torch.Tensor, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        tiny.encode(wave)


@pytest.mark.parametrize(
    ("latents", "message"),
    [
        (torch.zeros(1, 32, 4), r"\[B, 64, T\]"),
        (torch.zeros(64, 4), r"\[B, 64, T\]"),
        (torch.zeros(1, 64, 0), "empty"),
        (torch.full((1, 64, 2), float("inf")), "infinite"),
    ],
)
def test_bad_latents_are_refused(tiny: ConvCAE, latents: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny.decode(latents)


def test_windows_cover_everything_once() -> None:
    for total in (1, 15, 16, 17, 100):
        parts = windows(total, 16, 2)
        kept = [i for _, _, lo, hi in parts for i in range(lo, hi)]
        assert kept == list(range(total))
        assert all(0 <= lo <= klo < khi <= hi <= total for lo, hi, klo, khi in parts)


def test_cross_fades_of_neighbours_sum_to_one() -> None:
    total, hop = 40, 8
    parts = windows(total, 16, 2)
    acc = torch.zeros(total * hop, dtype=torch.float64)
    for lo, hi, klo, khi in parts:
        w = fade_weights(lo, hi, klo, khi, total, hop)
        assert bool((w > 0).all())
        acc[lo * hop : hi * hop] += w
    # Full windows on both sides of the first seam: the ramps add up to exactly 1.
    torch.testing.assert_close(acc[: 30 * hop], torch.ones(30 * hop, dtype=torch.float64))


def test_diffariff_preset_is_sized_like_the_paper() -> None:
    kind, config = PRESETS["diffariff"]
    assert kind == "conv"
    assert isinstance(config, ConvCAEConfig)
    model = ConvCAE(config)
    params = sum(p.numel() for p in model.parameters())
    assert 54e6 < params < 62e6, params  # Diff-A-Riff 4.2.1: ~58 M
    assert model.hop_length == 4096
    assert 48_000 / model.hop_length == pytest.approx(11.72, abs=0.01)
    # 64x compression of mono audio: 4096 samples -> 64 latent values.
    assert model.hop_length / model.latent_dim == 64


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_configs_round_trip_through_json(name: str) -> None:
    _, config = PRESETS[name]
    data = json.loads(json.dumps(to_dict(config)))
    assert from_dict(type(config), data) == config


def test_unknown_preset_and_config_keys_are_named() -> None:
    with pytest.raises(ValueError, match="diffariff-tiny"):
        from_preset("nope")
    with pytest.raises(ValueError, match="unknown keys for ConvCAEConfig: wings"):
        from_dict(ConvCAEConfig, {"wings": 2})


def test_a_magnitude_autoencoder_has_no_consistency_model(
    tmp_path: Path, device: torch.device
) -> None:
    torch.manual_seed(0)
    full = from_preset("diffariff-tiny-tonal")
    torch.manual_seed(0)
    model = from_preset("diffariff-tiny-magnitude").to(device)
    assert isinstance(model, ConvCAE)
    assert isinstance(full, ConvCAE)
    assert model.unet is None
    assert full.unet is not None
    unet = sum(p.numel() for p in full.unet.parameters())
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in full.parameters()) - unet
    # Same seed, same encoder and decoder weights as the full model.
    torch.testing.assert_close(
        model.encoder.stem.weight, full.encoder.stem.weight.to(device), rtol=0, atol=0
    )

    # Its loss is the preview terms alone, whatever noise levels the trainer draws.
    wave = audio(1, 4 * model.hop_length, device)
    spec = to_spectrogram(wave, model.spectrogram)
    noise = torch.randn_like(spec)
    sigmas = torch.tensor([0.1, 50.0], device=device)
    loss = model(spec, noise, sigmas, sigmas / 2, torch.rand(2, device=device), 0.3)
    preview = model.decoder.preview(model.features(model.encode_spectrogram(spec)))
    torch.testing.assert_close(loss, model.preview_loss(preview, spec).mean())
    other = model(spec, torch.randn_like(spec), sigmas * 3, sigmas, torch.zeros(2), 0.9)
    torch.testing.assert_close(loss, other)
    loss.backward()
    assert model.encoder.stem.weight.grad is not None
    assert model.encoder.stem.weight.grad.abs().sum().item() > 0

    model.eval()
    latents = model.encode(wave)
    assert model.decode(latents, length=wave.shape[-1]).shape == wave.shape
    with pytest.raises(RuntimeError, match="no consistency model"):
        model.decode(latents, decoding="consistency")
    target = save_pretrained(model, tmp_path / "cae")
    assert json.loads((target / "config.json").read_text())["config"]["consistency_model"] is False
    loaded = from_pretrained(target, device=device)
    torch.testing.assert_close(loaded.encode(wave), latents, rtol=0, atol=0)


def test_a_magnitude_autoencoder_must_decode_and_train_magnitudes() -> None:
    _kind, config = PRESETS["diffariff-tiny-magnitude"]
    assert isinstance(config, ConvCAEConfig)
    with pytest.raises(ValueError, match="decodes magnitudes only"):
        dataclasses.replace(config, decoding="consistency")
    silent = dataclasses.replace(
        config.consistency, preview_weight=0.0, preview_convergence_weight=0.0
    )
    with pytest.raises(ValueError, match="preview terms alone"):
        dataclasses.replace(config, consistency=silent)


def test_save_and_load_round_trip(tiny: ConvCAE, tmp_path: Path, device: torch.device) -> None:
    target = save_pretrained(tiny, tmp_path / "cae")
    meta = json.loads((target / "config.json").read_text())
    assert meta["model"] == "conv"
    assert meta["config"]["latent_dim"] == 64
    loaded = from_pretrained(target, device=device)
    wave = audio(1, 10_000, device)
    torch.testing.assert_close(loaded.encode(wave), tiny.encode(wave), rtol=0, atol=0)
    latents = tiny.encode(wave)
    a = loaded.decode(latents, generator=torch.Generator(device).manual_seed(5))
    b = tiny.decode(latents, generator=torch.Generator(device).manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(FileExistsError, match="overwrite"):
        save_pretrained(tiny, target)
    save_pretrained(tiny, target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cae"]  # no temporary left over


def test_loading_names_what_is_missing(tmp_path: Path, tiny: ConvCAE) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        from_pretrained(tmp_path)
    target = save_pretrained(tiny, tmp_path / "cae")
    (target / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        from_pretrained(target)


def test_channel_adaptation_rules() -> None:
    from openriff.cae.contract import adapt_channels

    wave = torch.arange(4 * 3, dtype=torch.float32).reshape(1, 4, 3)
    torch.testing.assert_close(adapt_channels(wave, 1), wave.mean(1, keepdim=True))
    stereo = adapt_channels(wave, 2)
    torch.testing.assert_close(stereo[:, 0], (wave[:, 0] + wave[:, 2]) / 2)
    torch.testing.assert_close(stereo[:, 1], (wave[:, 1] + wave[:, 3]) / 2)
    assert adapt_channels(wave[:, :1], 2).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="cannot map 2 audio channels onto a 3-channel"):
        adapt_channels(wave[:, :2], 3)


def test_the_fine_grid_preset_keeps_the_latent_rate_and_size() -> None:
    torch.manual_seed(0)
    coarse, fine = (
        from_preset("diffariff-tiny-magnitude"),
        from_preset("diffariff-tiny-magnitude-8k"),
    )
    assert isinstance(fine, ConvCAE)
    assert isinstance(coarse, ConvCAE)
    assert fine.spectrogram.n_fft == 4 * coarse.spectrogram.n_fft == 8192
    # Same latents (64 x 11.7 Hz) from a 4x finer frequency grid and a 4x coarser time grid.
    assert fine.hop_length == coarse.hop_length == 4096
    assert fine.latent_dim == coarse.latent_dim == 64
    count = sum(p.numel() for p in fine.parameters())
    assert 1.0 < count / sum(p.numel() for p in coarse.parameters()) < 1.15
    wave = audio(1, 5 * 4096 + 100, torch.device("cpu"))[:1]
    with torch.no_grad():
        latents = fine.encode(wave)
        assert latents.shape == (1, 64, 6)
        out = fine.decode(
            latents, length=wave.shape[-1], generator=torch.Generator().manual_seed(0)
        )
    assert out.shape == wave.shape
    assert torch.isfinite(out).all()
