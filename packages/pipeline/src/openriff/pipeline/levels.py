"""Levels: contexts in at one loudness, stems out at the level that fits the context.

A model hears its contexts at the loudness it was trained on, and its stems come out at
the stem-to-context loudness ratio of its training data. So:

* :func:`loudness` is ITU-R BS.1770 integrated loudness (pyloudnorm), in LUFS. Below
  pyloudnorm's 400 ms block it falls back to the RMS level in dBFS (a peak-safe proxy:
  the same scale within a few dB for music), and silence is ``-inf``;
* :func:`gain_to` is the gain (dB) that brings a recording to a loudness, capped so the
  result never peaks above :data:`INPUT_PEAK` (a quiet recording with one loud transient
  is not blown up) and left at 0 for silence;
* :class:`Levels` is what a bundle records (``bundle.json`` ``"levels"``): the context
  loudness it was trained at and the median stem-to-context ratio of its training pairs;
* :func:`fit_output` sets generated stems to ``context loudness + ratio``; where that
  would peak above :data:`OUTPUT_PEAK`, :func:`limit` (a look-ahead peak limiter) takes
  the peaks down by up to :data:`MAX_LIMIT_DB` and any further excess is scaled away, and
  the settings say how much of each: no written file clips, and a bass whose crest factor
  is high still reaches the loudness that fits its context.

The limiter is ours, not a library's: pedalboard's (JUCE's) is GPL-3.0 and ends in a hard
clipper; this one is a minimum filter and a moving average over the gain a sample needs,
which provably never lets a sample over the ceiling (see :func:`limit`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

SAMPLE_RATE = 48_000
# ITU-R BS.1770's gating block: shorter input has no integrated loudness.
BLOCK_SECONDS = 0.4
# Peak ceilings (linear): inputs may be raised up to this peak; outputs never exceed the
# second (-0.1 dBFS, below full scale so 16- and 24-bit files never clip on rounding).
INPUT_PEAK = 4.0
OUTPUT_PEAK = 10 ** (-0.1 / 20)
MAX_GAIN_DB = 40.0
# Scaled peaks aim this far below the ceiling, so float32 rounding stays under it.
_MARGIN = 1.0 - 1e-5
# The most gain reduction the limiter applies to a stem's peaks; beyond it the stem is
# scaled down instead (and comes out quieter than fits). A bass under a loud master (-5
# dBFS RMS) needs about 17 dB: its lows carry peaks that BS.1770's K-weighting hardly hears.
MAX_LIMIT_DB = 20.0
LOOKAHEAD_SECONDS = 0.005
HOLD_SECONDS = 0.05
# A context quieter than this is silence: generation leaves it as it is.
SILENCE_LUFS = -70.0


def loudness(wave: ArrayLike, sample_rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness (LUFS) of ``[S]`` or ``[C, S]`` audio; ``-inf`` for silence.

    Shorter than 400 ms (no BS.1770 gating block): the RMS level in dBFS instead.
    """
    array = np.asarray(wave)
    if array.ndim == 1:
        array = array[None]
    meter = Meter(sample_rate)
    for first in range(0, array.shape[-1], _CHUNK):
        meter.add(array[:, first : first + _CHUNK])
    return meter.loudness()


def peak(wave: ArrayLike) -> float:
    """The largest absolute sample of ``wave`` (0 for no samples), a chunk at a time."""
    array = np.atleast_2d(np.asarray(wave))
    array = array.reshape(-1, array.shape[-1])
    most = 0.0
    for first in range(0, array.shape[-1], _CHUNK):
        most = max(most, float(np.max(np.abs(array[:, first : first + _CHUNK]), initial=0.0)))
    return most


# BS.1770 channel weights (L, R, C, Ls, Rs), as pyloudnorm applies them.
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_CHUNK = 2**18  # samples filtered or limited at once: memory stays bounded at any length


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


def gain_to(wave: ArrayLike, target: float, sample_rate: int = SAMPLE_RATE) -> float:
    """The gain in dB that brings ``wave`` to ``target`` LUFS (0 for silence).

    Capped at +40 dB, and so that the peak stays at or below :data:`INPUT_PEAK`.
    """
    return gain_for(loudness(wave, sample_rate), peak(wave), target)


def gain_for(level: float, sample_peak: float, target: float) -> float:
    """:func:`gain_to` of audio whose loudness and peak are known (a :class:`Meter`'s)."""
    if not math.isfinite(level) or level < SILENCE_LUFS:
        return 0.0
    gain = min(target - level, MAX_GAIN_DB)
    if sample_peak > 0:
        gain = min(gain, 20 * math.log10(INPUT_PEAK / sample_peak))
    return gain


def db_to_gain(db: float) -> float:
    """Linear amplitude of ``db`` decibels."""
    return float(10 ** (db / 20))


@dataclass(frozen=True)
class Levels:
    """The levels a model was trained at (``bundle.json`` ``"levels"``).

    Attributes:
        context_lufs: integrated loudness its contexts were normalised to (LUFS).
        stem_to_context_db: median loudness of a target stem minus that of its context in
            the training pairs (dB).
        augment_db: contexts were drawn within +/- this many dB of ``context_lufs``.
        source: how the values were obtained (``"prepare"``: recorded at preparation;
            otherwise a note on how they were measured).
    """

    context_lufs: float = -20.0
    stem_to_context_db: float = -6.0
    augment_db: float = 0.0
    source: str = "prepare"

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Levels | None:
        """The levels a bundle records, or None for a bundle that records none."""
        levels = info.get("levels")
        if levels is None:
            return None
        if not isinstance(levels, Mapping):
            raise ValueError(f"bundle.json 'levels' must be an object, got {levels!r}")
        try:
            out = cls(**levels)
        except TypeError as error:
            raise ValueError(f"bundle.json 'levels': {error}") from None
        for name in ("context_lufs", "stem_to_context_db", "augment_db"):
            value = getattr(out, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"bundle.json 'levels': {name} must be a number, got {value!r}")
            if not -100.0 <= value <= 100.0:
                raise ValueError(f"bundle.json 'levels': {name} out of range: {value}")
        return out

    def to_info(self) -> dict[str, Any]:
        """The JSON object a bundle stores."""
        return asdict(self)

    @property
    def stem_lufs(self) -> float:
        """Where a stem sits for a context at :attr:`context_lufs`."""
        return self.context_lufs + self.stem_to_context_db


def limit(
    wave: NDArray[np.float32],
    ceiling: float,
    sample_rate: int = SAMPLE_RATE,
    *,
    lookahead: float = LOOKAHEAD_SECONDS,
    hold: float = HOLD_SECONDS,
) -> tuple[NDArray[np.float32], float]:
    """``[C, S]`` audio with its peaks brought down to ``ceiling``, and the most reduction (dB).

    The gain each sample needs (``min(1, ceiling / |x|)``, linked across channels) is
    min-filtered over ``2 * lookahead + 2 * hold`` and then averaged over ``lookahead``:
    every gain in the average is at most the need of the sample it is applied to (the
    minimum filter spans the average's whole window around it), so no sample exceeds the
    ceiling, and the gain falls smoothly over ``lookahead`` before a peak and stays down
    ``hold`` around it instead of following the waveform (which would distort a bass).
    """
    channels = np.atleast_2d(np.asarray(wave, np.float32))
    out = np.empty_like(channels)
    least = 1.0
    for first, part, floor in limited(channels, 1.0, ceiling, sample_rate, lookahead=lookahead,
                                      hold=hold):  # fmt: skip
        out[:, first : first + part.shape[-1]] = part
        least = min(least, floor)
    return out.reshape(np.shape(wave)), _reduction_db(least)


def limited(
    wave: NDArray[np.float32],
    scale: float,
    ceiling: float,
    sample_rate: int = SAMPLE_RATE,
    *,
    lookahead: float = LOOKAHEAD_SECONDS,
    hold: float = HOLD_SECONDS,
) -> Iterator[tuple[int, NDArray[np.float32], float]]:
    """:func:`limit` of ``wave [C, S] * scale``, a chunk at a time, in the memory of a chunk.

    Yields ``(first sample, [C, n] limited chunk, the chunk's least gain)``. Each chunk is
    computed with the filters' reach on either side, from the samples as they were: the
    caller may write each chunk back into ``wave`` before asking for the next.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    radius = max(1, round(lookahead * sample_rate / 2))
    span = 2 * radius + 1 + 2 * round(hold * sample_rate)
    reach = span // 2 + radius  # samples either side that a sample's gain depends on
    total = wave.shape[-1]
    tail = wave[:, :0].astype(np.float32)  # the samples before `first`, as they were
    for first in range(0, total, _CHUNK):
        stop, lo = min(total, first + _CHUNK), max(0, first - reach)
        # float32 throughout (a long stem is large): the ceiling sits 1e-5 below
        # OUTPUT_PEAK, far above float32 rounding.
        ahead = wave[:, first : min(total, stop + reach)]
        seg = np.concatenate([tail[:, tail.shape[-1] - (first - lo) :], ahead], axis=1)
        seg *= np.float32(scale)  # (C, m)
        magnitude = np.max(np.abs(seg), axis=0)  # the loudest channel at each sample
        need = np.minimum(np.float32(1.0), np.float32(ceiling) / np.maximum(magnitude, 1e-30))
        gain = uniform_filter1d(minimum_filter1d(need, span, mode="nearest"), 2 * radius + 1,
                                mode="nearest")  # fmt: skip
        np.minimum(gain, need, out=gain)  # the average's rounding could exceed the need
        keep = slice(first - lo, stop - lo)
        tail = wave[:, max(0, stop - reach) : stop].astype(np.float32)  # before it is written
        yield first, seg[:, keep] * gain[keep], float(gain[keep].min(initial=1.0))


def _reduction_db(least_gain: float) -> float:
    return max(0.0, -20 * math.log10(max(least_gain, 1e-30)))


def fit_output(
    stems: NDArray[np.float32],
    target_lufs: float,
    sample_rate: int = SAMPLE_RATE,
    *,
    in_place: bool = False,
) -> tuple[NDArray[np.float32], list[dict[str, float | None]]]:
    """Stems ``[N, C, S]`` at ``target_lufs`` each, none peaking above :data:`OUTPUT_PEAK`.

    A stem that would peak above the ceiling at the target is peak-limited
    (:func:`limit`) and raised again by the loudness the limiting took (a few rounds), as
    long as the limiter's reduction stays within :data:`MAX_LIMIT_DB`; beyond that it is
    left quieter than the target. Each round measures the limited stem a chunk at a time
    (:func:`limited`, :class:`Meter`); ``in_place`` writes the result into ``stems``
    instead of a copy: then the memory is that of the stems plus a chunk, at any length.

    Returns:
        the stems and, per stem, its ``gain_db`` (before limiting), the loudness it came
        out at (``lufs``), ``limited_db`` (the limiter's largest gain reduction) and
        ``peak_limited_db``: how far below the target it came out (0 when it did not).
    """
    report = []
    ceiling = OUTPUT_PEAK * _MARGIN
    stems = stems if in_place else stems.copy()
    for stem in stems:
        level = loudness(stem, sample_rate)
        if not math.isfinite(level):  # silence stays silence
            report.append({"gain_db": 0.0, "lufs": None, "limited_db": 0.0,
                           "peak_limited_db": 0.0})  # fmt: skip
            continue
        # The gain at which the limiter would reduce the peaks by MAX_LIMIT_DB.
        most = MAX_LIMIT_DB - 20 * math.log10(peak(stem) / ceiling)
        gain = min(target_lufs - level, MAX_GAIN_DB, most)
        best: tuple[float, float, float] | None = None
        for _ in range(4):
            meter, least = Meter(sample_rate), 1.0
            for _, part, floor in limited(stem, db_to_gain(gain), ceiling, sample_rate):
                meter.add(part)
                least = min(least, floor)
            after = meter.loudness()
            # Raising a steady tone into the limiter only limits it more: keep the last
            # round that still gained at least half its added gain in loudness.
            if best is not None and after - best[2] < 0.5 * (gain - best[0]):
                break
            best = (gain, _reduction_db(least), after)
            short = target_lufs - after
            if abs(short) < 0.1 or gain >= min(most, MAX_GAIN_DB):
                break
            gain = min(gain + short, MAX_GAIN_DB, most)
        assert best is not None
        gain, reduction, after = best
        for first, part, _ in limited(stem, db_to_gain(gain), ceiling, sample_rate):
            stem[:, first : first + part.shape[-1]] = part
        report.append({
            "gain_db": round(gain, 3),
            "lufs": round(after, 3),
            "limited_db": round(reduction, 3),
            # Within 0.1 dB is on target (the rounds stop there).
            "peak_limited_db": round(after - target_lufs, 3) if after < target_lufs - 0.1 else 0.0,
        })  # fmt: skip
    return stems, report


def scale_within_peak(
    wave: NDArray[np.float32], gain_db: float
) -> tuple[NDArray[np.float32], float]:
    """``wave`` times ``gain_db``, and the gain applied (dB).

    Scaled down further where it would peak above :data:`OUTPUT_PEAK`.
    """
    gain_db = _within_peak(peak(wave), gain_db)
    return (wave * db_to_gain(gain_db)).astype(np.float32), gain_db


def _within_peak(sample_peak: float, gain_db: float) -> float:
    """``gain_db``, lowered so that a peak of ``sample_peak`` stays under the output ceiling."""
    if sample_peak * db_to_gain(gain_db) > OUTPUT_PEAK:
        gain_db += 20 * math.log10(OUTPUT_PEAK * _MARGIN / (sample_peak * db_to_gain(gain_db)))
    return gain_db


def level_stems(
    audio: NDArray[np.float32], target: float | None, *, in_place: bool = False
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Stems ``[N, C, S]`` at ``target`` LUFS (None: as generated), never clipping.

    No stem peaks above :data:`OUTPUT_PEAK`; the dict says what was done, for the
    settings. ``in_place``: into ``audio`` (a long stem is not copied).
    """
    if target is None:
        audio = audio if in_place else audio.copy()
        kept = []
        for stem in audio:
            gain = _within_peak(peak(stem), 0.0)
            np.multiply(stem, np.float32(db_to_gain(gain)), out=stem)
            kept.append({"gain_db": round(gain, 3), "peak_limited_db": round(gain, 3)})
        return audio, {"target_lufs": None, "stems": kept}
    out, stems = fit_output(audio, target, in_place=in_place)
    return out, {"target_lufs": round(target, 3), "stems": stems}
