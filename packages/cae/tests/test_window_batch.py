"""Consistency decoding in batches of windows: the same audio as window by window."""

from collections.abc import Callable

import pytest
import torch

from openriff.cae import from_preset
from openriff.cae.codec import SpectrogramCodec
from openriff.cae.noise import Noise, WindowStreams, window_seeds
from openriff.cae.windowed import MEMORY_SHARE, MemoryBudget, decode_windows


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


def test_a_memory_budget_sets_the_batch_after_measuring_the_first_window(
    device: torch.device,
) -> None:
    # On a GPU the default batch is what fits in the free memory: the first window is
    # decoded alone and measured. Here with a made-up measure of 1000 bytes per frame of
    # each sequence: 20-frame windows of 2 sequences of batch 2 take 40 kB each.
    model = perturbed("stereo-tiny", device)
    latents = torch.rand(2, 64, 110, generator=torch.Generator().manual_seed(3)).to(device) * 2 - 1
    batches: list[int] = []
    measured: list[int] = []
    decode = model.decode_spectrogram

    def counted(z: torch.Tensor, *, steps: int, noise: Noise) -> torch.Tensor:
        batches.append(z.shape[0] // 4)  # windows: 2 sequences of batch 2 each
        return decode(z, steps=steps, noise=noise)

    def measure(run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
        out = run()
        measured.append(batches[-1])
        return out, 1000 * 2 * batches[-1] * out.shape[-1] // model.frames_per_latent

    model.decode_spectrogram = counted  # type: ignore[method-assign]
    seeds = window_seeds(7, seeded(device, 4))  # 110 frames: windows of 18, 20 x 5 and 16
    budget = MemoryBudget(free=int(3 * 40_000 / MEMORY_SHARE) + 1, measure=measure)
    got = decode_windows(model, [latents, latents.flip(0)], 2, seeds, 32, budget)
    assert measured == [1]  # the first window, alone
    assert batches == [1, 3, 2, 1]  # then three 40 kB windows per batch
    want = decode_windows(model, [latents, latents.flip(0)], 2, seeds, 1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert MemoryBudget(free=10, measure=measure).windows(1e9) == 1  # never fewer than one


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
