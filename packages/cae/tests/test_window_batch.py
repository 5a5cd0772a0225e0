"""Consistency decoding in batches of windows: the same audio as window by window."""

import pytest
import torch

from openriff.cae import from_preset
from openriff.cae.codec import SpectrogramCodec
from openriff.cae.noise import WindowStreams, window_seeds


def perturbed(preset: str, device: torch.device) -> SpectrogramCodec:
    torch.manual_seed(0)
    model = from_preset(preset).to(device).eval()
    with torch.no_grad():  # leave the zero-init so the consistency model's output matters
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def seeded(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


@pytest.mark.parametrize("preset", ["diffariff-tiny", "stereo-tiny"])
def test_windows_decode_the_same_batched_or_one_by_one(preset: str, device: torch.device) -> None:
    model = perturbed(preset, device)
    # 70 frames in windows of 16 (+2 each side): lengths 18, 20, 20, 20, 8.
    latents = torch.rand(2, 64, 70, generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1
    one = model.decode(latents, steps=2, generator=seeded(device, 5), window_batch=1)
    assert one.shape == (2, model.channels, 70 * model.hop_length)
    for batch in (2, 32, None):  # None: the device's default
        batched = model.decode(latents, steps=2, generator=seeded(device, 5), window_batch=batch)
        torch.testing.assert_close(batched, one, rtol=1e-4, atol=1e-5)
    # Each window's noise is its own: another seed changes every window.
    other = model.decode(latents, steps=2, generator=seeded(device, 6), window_batch=32)
    hop = model.hop_length
    for lo, hi in ((0, 14), (18, 30), (34, 46), (50, 62), (66, 70)):  # no overlaps
        assert not torch.allclose(other[..., lo * hop : hi * hop], one[..., lo * hop : hi * hop])
    with pytest.raises(ValueError, match="window_batch must be >= 1"):
        model.decode(latents, window_batch=0)


def test_sequences_decode_as_channels_with_the_same_noise(device: torch.device) -> None:
    # A mono codec's pseudo-stereo: both channels' windows in one batch, each sequence
    # with the noise it would get decoded alone.
    model = perturbed("diffariff-tiny", device)
    g = torch.Generator().manual_seed(2)
    a, b = (torch.rand(1, 64, 40, generator=g).to(device) * 2 - 1 for _ in range(2))
    both = model.decode_channels(
        [a, b], steps=2, generator=seeded(device, 7), decoding="consistency", window_batch=8
    )
    alone = [model.decode(z, steps=2, generator=seeded(device, 7), window_batch=1) for z in (a, b)]
    torch.testing.assert_close(both, torch.cat(alone, dim=1), rtol=1e-4, atol=1e-5)
    same = model.decode_channels([a, a], steps=2, generator=seeded(device, 7), window_batch=8)
    torch.testing.assert_close(same[:, 0], same[:, 1], rtol=0, atol=0)


def test_window_streams_draw_each_window_from_its_seed() -> None:
    seeds = window_seeds(3, torch.Generator().manual_seed(0))
    assert len(set(seeds)) == 3
    assert seeds == window_seeds(3, torch.Generator().manual_seed(0))
    draws = WindowStreams(seeds, torch.device("cpu"), torch.float32)
    first, second = draws((6, 4)), draws((3, 5))
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        torch.testing.assert_close(first[2 * i : 2 * i + 2], torch.randn(2, 4, generator=g))
        torch.testing.assert_close(second[i : i + 1], torch.randn(1, 5, generator=g))
    with pytest.raises(ValueError, match="does not split into 3 windows"):
        draws((4, 4))
    twice = WindowStreams(seeds[:2], torch.device("cpu"), torch.float32, repeat=2)((8, 3))
    for i, seed in enumerate(seeds[:2]):
        want = torch.randn(2, 3, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(twice[4 * i : 4 * i + 2], want)
        torch.testing.assert_close(twice[4 * i + 2 : 4 * i + 4], want)
