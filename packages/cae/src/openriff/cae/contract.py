"""The codec contract: what every codec of OpenRiff offers, and the input checks they share.

:class:`LatentCodec` is the contract of ARCHITECTURE.md ("Contracts"): any-length
``encode`` and ``decode`` at 48 kHz. Two optional abilities are protocols of their own,
checked with ``isinstance``: :class:`ChannelDecoder` (several latent sequences decoded as
one recording's channels) and :class:`ReaderEncoder` (a recording encoded as it is read,
never whole in memory). :class:`~openriff.cae.codec.SpectrogramCodec` has all three.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from openriff.cae.streaming import Progress

SampleReader = Callable[[int, int], Tensor]
"""``read(lo, hi)``: samples ``[lo, hi)`` of a recording as ``[B, C, hi - lo]``, 0 past its end."""


@runtime_checkable
class LatentCodec(Protocol):
    """What every codec of OpenRiff offers (ARCHITECTURE.md, "Contracts")."""

    @property
    def sample_rate(self) -> int:
        """Audio samples per second (48000)."""
        ...

    @property
    def channels(self) -> int:
        """Audio channels the codec encodes (1: mono, 2: stereo)."""
        ...

    @property
    def latent_dim(self) -> int:
        """Latent channels ``D``."""
        ...

    @property
    def hop_length(self) -> float:
        """Audio samples per latent frame (an int for OpenRiff's own CAEs)."""
        ...

    @property
    def latent_bound(self) -> float | None:
        """The encoder's latents lie in ``[-bound, bound]`` (None: no known bound).

        A generator may clip its estimates to it: latents outside it were never decoded
        in training, and the decoder's output there is unconstrained.
        """
        ...

    def encode(self, wave: Tensor) -> Tensor:
        """``[B, C, S]`` -> ``[B, D, T]``."""
        ...

    def decode(
        self,
        latents: Tensor,
        *,
        steps: int = 1,
        generator: torch.Generator | None = None,
        length: int | None = None,
    ) -> Tensor:
        """``[B, D, T]`` -> ``[B, C, S]``, ``S`` = ``length`` when given, else ``T * hop``.

        ``length`` is the number of samples that was encoded: decoding gives it back exactly.
        """
        ...


@runtime_checkable
class ChannelDecoder(Protocol):
    """A codec that decodes several latent sequences as the channels of one recording.

    :class:`SpectrogramCodec` is one: shared phases or shared noise, so a mono codec's
    pseudo-stereo channels stay coherent. Codecs without it decode each sequence alone.
    """

    def decode_channels(
        self,
        channels: Sequence[Tensor],
        *,
        steps: int = 1,
        generator: torch.Generator | None = None,
        length: int | None = None,
        decoding: str | None = None,
        on_block: Progress | None = None,
    ) -> Tensor:
        """``[B, D, T]`` each -> ``[B, n * C, length]``."""
        ...


@runtime_checkable
class ReaderEncoder(Protocol):
    """A codec that encodes a recording it reads window by window (not held in memory).

    :class:`SpectrogramCodec` is one; others encode a whole recording at once.
    """

    def encode_from(self, read: SampleReader, samples: int) -> Tensor:
        """``read(lo, hi) -> [B, C, hi - lo]`` over ``samples`` -> ``[B, D, T]``."""
        ...


def adapt_channels(wave: Tensor, channels: int) -> Tensor:
    """Match the model's channel count ``M``: downmix extra channels, copy mono.

    With more input channels than ``M``, output channel ``i`` is the mean of input
    channels ``i, i + M, i + 2M, ...`` (a mono model gets the mean of all channels; a
    stereo model gets even channels on the left and odd ones on the right). A mono input
    to a multi-channel model is copied to every channel. Anything else is an error.
    """
    have = wave.shape[1]
    if have == channels:
        return wave
    if have == 1:
        return wave.expand(-1, channels, -1)
    if have < channels:
        raise ValueError(f"cannot map {have} audio channels onto a {channels}-channel model")
    groups = [wave[:, i::channels].mean(dim=1) for i in range(channels)]
    return torch.stack(groups, dim=1)


def check_wave(wave: Tensor) -> None:
    """Raise a clear error for input a codec cannot encode."""
    if wave.ndim != 3:
        raise ValueError(f"expected audio shaped [B, C, S], got {list(wave.shape)}")
    if wave.shape[0] == 0 or wave.shape[1] == 0 or wave.shape[2] == 0:
        raise ValueError(f"audio is empty: shape {list(wave.shape)}")
    if not wave.is_floating_point():
        raise TypeError(f"audio must be floating point, got {wave.dtype}")
    if not torch.isfinite(wave).all():
        raise ValueError("audio contains NaN or infinite samples")
