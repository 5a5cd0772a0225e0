"""Decoding noise: one independent stream per codec window, so windows decode in batches.

A consistency decoding draws noise (the starting point, each re-noising, the transformer
codec's re-noised context) window after window. Drawn from one generator in that order,
a window's noise would depend on which windows were decoded before it, and decoding
several windows as one batch would change the audio. Instead, :func:`window_seeds` draws
one seed per window from the caller's generator, and :class:`WindowStreams` gives each
window of a batch its own stream: a window's noise is the same whether it is decoded
alone or batched with others (and the same seed still gives the same audio).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Noise = Callable[[tuple[int, ...]], Tensor]
"""Draws standard normal noise of a shape (k-diffusion's noise sampler)."""

SEED_BOUND = 2**62


def gaussian(generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Noise:
    """Noise drawn from ``generator`` (the global generator if None)."""

    def draw(shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    return draw


def window_seeds(count: int, generator: torch.Generator | None) -> list[int]:
    """``count`` seeds drawn from ``generator`` (the global generator if None)."""
    device = generator.device if generator is not None else torch.device("cpu")
    seeds = torch.randint(0, SEED_BOUND, (count,), generator=generator, device=device)
    return [int(seed) for seed in seeds.tolist()]  # one host sync per decoding


class WindowStreams:
    """The noise of a batch of windows, each from its own stream.

    A draw of shape ``[G * R * B, ...]`` is ``G`` draws ``[B, ...]``, window after window,
    each from the generator of its seed and repeated ``R`` times (the channels of one
    recording, decoded with the same noise).

    Args:
        seeds: one per window of the batch, in batch order.
        device: where the noise is drawn.
        dtype: of the noise.
        repeat: ``R``, copies of each window's draw.
    """

    def __init__(
        self, seeds: Sequence[int], device: torch.device, dtype: torch.dtype, repeat: int = 1
    ) -> None:
        if not seeds:
            raise ValueError("need at least one window's seed")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.generators = [torch.Generator(device).manual_seed(seed) for seed in seeds]
        self.device = device
        self.dtype = dtype
        self.repeat = repeat

    def __call__(self, shape: tuple[int, ...]) -> Tensor:
        """Noise ``shape = [G * R * B, ...]``: each window's ``[B, ...]`` from its stream."""
        count = len(self.generators) * self.repeat
        if shape[0] % count:
            raise ValueError(f"a batch of {shape[0]} does not split into {count} windows")
        part = (shape[0] // count, *shape[1:])
        draws = [
            torch.randn(part, generator=g, device=self.device, dtype=self.dtype)
            for g in self.generators
        ]
        copies = [draw for draw in draws for _ in range(self.repeat)]
        return copies[0] if count == 1 else torch.cat(copies)
