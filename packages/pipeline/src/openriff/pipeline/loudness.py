"""Integrated loudness (ITU-R BS.1770, in LUFS) and sample peak, a chunk at a time.

:func:`loudness` equals pyloudnorm's ``Meter.integrated_loudness`` (tested), in bounded
memory at any length: :class:`Meter` takes the audio a chunk at a time, so a file can be
measured as it is read (:mod:`openriff.pipeline.streamed`). Below pyloudnorm's 400 ms
block it falls back to the RMS level in dBFS (a peak-safe proxy: the same scale within
a few dB for music), and silence is ``-inf``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

SAMPLE_RATE = 48_000
# ITU-R BS.1770's gating block: shorter input has no integrated loudness.
BLOCK_SECONDS = 0.4
CHUNK = 2**18  # samples filtered (or limited, :mod:`.levels`) at once


def loudness(wave: ArrayLike, sample_rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness (LUFS) of ``[S]`` or ``[C, S]`` audio; ``-inf`` for silence.

    Shorter than 400 ms (no BS.1770 gating block): the RMS level in dBFS instead.
    """
    array = np.asarray(wave)
    if array.ndim == 1:
        array = array[None]
    meter = Meter(sample_rate)
    for first in range(0, array.shape[-1], CHUNK):
        meter.add(array[:, first : first + CHUNK])
    return meter.loudness()


def peak(wave: ArrayLike) -> float:
    """The largest absolute sample of ``wave`` (0 for no samples), a chunk at a time."""
    array = np.atleast_2d(np.asarray(wave))
    array = array.reshape(-1, array.shape[-1])
    most = 0.0
    for first in range(0, array.shape[-1], CHUNK):
        most = max(most, float(np.max(np.abs(array[:, first : first + CHUNK]), initial=0.0)))
    return most


# BS.1770 channel weights (L, R, C, Ls, Rs), as pyloudnorm applies them.
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)


class Meter:
    """BS.1770 integrated loudness and sample peak of audio given a chunk at a time.

    :meth:`add` chunks ``[C, n]`` in order; :meth:`loudness` then equals :func:`loudness`
    of them put together, in the memory of a chunk: the K-weighting filters (pyloudnorm's,
    whose ``Meter.integrated_loudness`` it equals, tested) carry their state from chunk to
    chunk, and each gating block is summed as soon as its samples are in. pyloudnorm
    itself copies the whole signal in float64 and filters it at once: 4 GB for a
    30-minute stereo stem.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        from pyloudnorm import IIRfilter

        self.sample_rate = sample_rate
        self.samples = 0
        self.peak = 0.0
        self._stages = [  # K-weighting
            IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf"),
            IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"),
        ]
        self._states: list[list[NDArray[np.float64]]] = []  # per channel, per stage
        self._kept = np.zeros((0, 0))  # (C, m) filtered samples from `_start` on
        self._start = 0
        self._powers: list[NDArray[np.float64]] = []  # (C,) mean square of each block
        self._squares = 0.0  # of the raw samples: the RMS level of audio under a block
        self._heard = False  # a non-zero sample

    def _bounds(self, block: int) -> tuple[int, int]:
        """Samples ``[lo, hi)`` of gating block ``block`` (pyloudnorm's arithmetic)."""
        lo = int(BLOCK_SECONDS * (block * 0.25) * self.sample_rate)
        return lo, int(BLOCK_SECONDS * (block * 0.25 + 1) * self.sample_rate)

    def add(self, chunk: ArrayLike) -> None:
        """The next ``[C, n]`` (or ``[n]``) samples."""
        from scipy.signal import lfilter

        array = np.asarray(chunk)
        if array.ndim == 1:
            array = array[None]
        if array.shape[-1] == 0:
            return
        if not self._states:
            self._states = [[np.zeros(max(len(s.a), len(s.b)) - 1) for s in self._stages]
                            for _ in range(array.shape[0])]  # fmt: skip
            self._kept = np.zeros((array.shape[0], 0))
        most = max(float(array.max()), -float(array.min()))
        self.peak = max(self.peak, most)
        self._heard = self._heard or most > 0
        if self.samples < BLOCK_SECONDS * self.sample_rate:  # only audio under a block needs it
            self._squares += float(np.sum(np.square(array, dtype=np.float64)))
        kept = self._kept.shape[-1]
        buffer = np.empty((array.shape[0], kept + array.shape[-1]))
        buffer[:, :kept] = self._kept
        for c, states in enumerate(self._states):
            piece = np.asarray(array[c], dtype=np.float64)
            for i, stage in enumerate(self._stages):
                piece, states[i] = lfilter(stage.b, stage.a, piece, zi=states[i])
                piece *= stage.passband_gain
            buffer[c, kept:] = piece
        self._kept = buffer
        self.samples += array.shape[-1]
        lo, hi = self._bounds(len(self._powers))
        while hi <= self.samples:
            self._powers.append(self._power(lo, hi))
            lo, hi = self._bounds(len(self._powers))
        self._kept, self._start = self._kept[:, lo - self._start :], lo

    def _power(self, lo: int, hi: int) -> NDArray[np.float64]:
        segment = self._kept[:, lo - self._start : hi - self._start]
        return np.sum(np.square(segment), axis=1) / (BLOCK_SECONDS * self.sample_rate)

    def loudness(self) -> float:
        """Integrated loudness (LUFS) so far; ``-inf`` for silence, RMS dBFS under 400 ms."""
        total, rate = self.samples, self.sample_rate
        if total == 0 or not self._heard:
            return -math.inf
        if total < BLOCK_SECONDS * rate:
            rms = math.sqrt(self._squares / (total * len(self._states)))
            return 20 * math.log10(rms) if rms > 0 else -math.inf
        step = BLOCK_SECONDS * (1.0 - 0.75)
        count = int(np.round((total / rate - BLOCK_SECONDS) / step)) + 1
        powers = list(self._powers[:count])
        for block in range(len(powers), count):  # the last blocks end with the audio
            lo, hi = self._bounds(block)
            powers.append(self._power(lo, min(hi, total)))
        value = _gated_loudness(np.stack(powers, axis=1))
        return value if math.isfinite(value) else -math.inf


def _gated_loudness(z: NDArray[np.float64]) -> float:
    """BS.1770-4 gated loudness (LUFS) of block mean squares ``[C, blocks]``."""
    weights = np.asarray(_CHANNEL_WEIGHTS[: z.shape[0]])[:, None]
    # No block above a gate: the mean of nothing is NaN, and the loudness -inf (silence).
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        blocks = -0.691 + 10.0 * np.log10((weights * z).sum(0))
        above = blocks >= -70.0
        relative = -0.691 + 10.0 * np.log10((weights[:, 0] * z[:, above].mean(1)).sum()) - 10.0
        gated = np.nan_to_num(z[:, (blocks > relative) & (blocks > -70.0)].mean(1))
        return float(-0.691 + 10.0 * np.log10((weights[:, 0] * gated).sum()))
