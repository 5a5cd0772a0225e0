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
from collections.abc import Mapping
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
    if array.size == 0 or not np.any(array):
        return -math.inf
    if array.shape[-1] < BLOCK_SECONDS * sample_rate:
        rms = float(np.sqrt(np.mean(np.square(array, dtype=np.float64))))
        return 20 * math.log10(rms) if rms > 0 else -math.inf
    value = _gated_loudness(_block_powers(array, sample_rate))
    return value if math.isfinite(value) else -math.inf


# BS.1770 channel weights (L, R, C, Ls, Rs), as pyloudnorm applies them.
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_CHUNK = 2**20  # samples filtered at once: memory stays bounded for any length


def _block_powers(array: NDArray[np.floating[Any]], sample_rate: int) -> NDArray[np.float64]:
    """Mean squares ``[C, blocks]`` of the K-weighted signal in BS.1770's gating blocks.

    pyloudnorm's ``Meter.integrated_loudness`` (whose K-weighting filters and block bounds
    these are, and whose result :func:`loudness` equals) copies the whole signal in float64
    and filters it at once: 4 GB for a 30-minute stereo stem. Here each channel is
    filtered a chunk at a time, carrying the filters' state, and each block is summed as
    soon as its samples are in.
    """
    from pyloudnorm import IIRfilter
    from scipy.signal import lfilter

    stages = [IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sample_rate, "high_shelf"),
              IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")]  # K-weighting  # fmt: skip
    channels, total = array.shape
    step = BLOCK_SECONDS * (1.0 - 0.75)
    count = int(np.round((total / sample_rate - BLOCK_SECONDS) / step)) + 1
    j = np.arange(count)
    lo = (BLOCK_SECONDS * (j * 0.25) * sample_rate).astype(np.int64)
    hi = np.minimum((BLOCK_SECONDS * (j * 0.25 + 1) * sample_rate).astype(np.int64), total)
    z = np.zeros((channels, count))
    for c in range(channels):
        states = [np.zeros(max(len(s.a), len(s.b)) - 1) for s in stages]
        kept, start, block = np.zeros(0), 0, 0  # filtered samples from `start` on
        for first in range(0, total, _CHUNK):
            piece = np.asarray(array[c, first : first + _CHUNK], dtype=np.float64)
            for i, s in enumerate(stages):
                piece, states[i] = lfilter(s.b, s.a, piece, zi=states[i])
                piece = s.passband_gain * piece
            kept = np.concatenate([kept, piece])
            end = first + piece.shape[0]
            while block < count and (hi[block] <= end or end == total):
                segment = kept[lo[block] - start : hi[block] - start]
                z[c, block] = np.sum(np.square(segment)) / (BLOCK_SECONDS * sample_rate)
                block += 1
            drop = (lo[block] if block < count else end) - start
            kept, start = kept[drop:], start + drop
    return z


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
    level = loudness(wave, sample_rate)
    if not math.isfinite(level) or level < SILENCE_LUFS:
        return 0.0
    gain = min(target - level, MAX_GAIN_DB)
    peak = float(np.max(np.abs(np.asarray(wave, dtype=np.float64)), initial=0.0))
    if peak > 0:
        gain = min(gain, 20 * math.log10(INPUT_PEAK / peak))
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
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    # float32 throughout (a long stem is large): the ceiling sits 1e-5 below OUTPUT_PEAK,
    # far above float32 rounding.
    channels = np.atleast_2d(np.asarray(wave, np.float32))
    magnitude = np.abs(channels[0])  # (S,), the loudest channel at each sample
    for channel in channels[1:]:
        np.maximum(magnitude, np.abs(channel), out=magnitude)
    need = np.minimum(np.float32(1.0), np.float32(ceiling) / np.maximum(magnitude, 1e-30))
    del magnitude
    radius = max(1, round(lookahead * sample_rate / 2))
    span = 2 * radius + 1 + 2 * round(hold * sample_rate)
    gain = uniform_filter1d(minimum_filter1d(need, span, mode="nearest"), 2 * radius + 1,
                            mode="nearest")  # fmt: skip
    np.minimum(gain, need, out=gain)  # the average's rounding, not its design, could exceed it
    out = (channels * gain).astype(np.float32, copy=False).reshape(np.shape(wave))
    reduction = max(0.0, -20 * math.log10(max(float(gain.min(initial=1.0)), 1e-30)))
    return out, reduction


def fit_output(
    stems: NDArray[np.float32], target_lufs: float, sample_rate: int = SAMPLE_RATE
) -> tuple[NDArray[np.float32], list[dict[str, float | None]]]:
    """Stems ``[N, C, S]`` at ``target_lufs`` each, none peaking above :data:`OUTPUT_PEAK`.

    A stem that would peak above the ceiling at the target is peak-limited
    (:func:`limit`) and raised again by the loudness the limiting took (a few rounds), as
    long as the limiter's reduction stays within :data:`MAX_LIMIT_DB`; beyond that it is
    left quieter than the target.

    Returns:
        the stems and, per stem, its ``gain_db`` (before limiting), the loudness it came
        out at (``lufs``), ``limited_db`` (the limiter's largest gain reduction) and
        ``peak_limited_db``: how far below the target it came out (0 when it did not).
    """
    out = np.empty_like(stems)
    report = []
    ceiling = OUTPUT_PEAK * _MARGIN
    for i, stem in enumerate(stems):
        level = loudness(stem, sample_rate)
        if not math.isfinite(level):  # silence stays silence
            out[i] = stem
            report.append({"gain_db": 0.0, "lufs": None, "limited_db": 0.0,
                           "peak_limited_db": 0.0})  # fmt: skip
            continue
        peak = float(np.max(np.abs(stem))) / ceiling
        # The gain at which the limiter would reduce the peaks by MAX_LIMIT_DB.
        most = MAX_LIMIT_DB - 20 * math.log10(peak)
        gain = min(target_lufs - level, MAX_GAIN_DB, most)
        best: tuple[float, NDArray[np.float32], float, float] | None = None
        for _ in range(4):
            wave, limited = limit(stem * np.float32(db_to_gain(gain)), ceiling, sample_rate)
            after = loudness(wave, sample_rate)
            # Raising a steady tone into the limiter only limits it more: keep the last
            # round that still gained at least half its added gain in loudness.
            if best is not None and after - best[3] < 0.5 * (gain - best[0]):
                break
            best = (gain, wave, limited, after)
            short = target_lufs - after
            if abs(short) < 0.1 or gain >= min(most, MAX_GAIN_DB):
                break
            gain = min(gain + short, MAX_GAIN_DB, most)
        assert best is not None
        gain, out[i], limited, after = best
        report.append({
            "gain_db": round(gain, 3),
            "lufs": round(after, 3),
            "limited_db": round(limited, 3),
            # Within 0.1 dB is on target (the rounds stop there).
            "peak_limited_db": round(after - target_lufs, 3) if after < target_lufs - 0.1 else 0.0,
        })  # fmt: skip
    return out, report


def scale_within_peak(
    wave: NDArray[np.float32], gain_db: float
) -> tuple[NDArray[np.float32], float]:
    """``wave`` times ``gain_db``, and the gain applied (dB).

    Scaled down further where it would peak above :data:`OUTPUT_PEAK`.
    """
    peak = float(np.max(np.abs(wave), initial=0.0)) * db_to_gain(gain_db)
    if peak > OUTPUT_PEAK:
        gain_db += 20 * math.log10(OUTPUT_PEAK * _MARGIN / peak)
    return (wave * db_to_gain(gain_db)).astype(np.float32), gain_db


def level_stems(
    audio: NDArray[np.float32], target: float | None
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Stems ``[N, C, S]`` at ``target`` LUFS (None: as generated), never clipping.

    No stem peaks above :data:`OUTPUT_PEAK`; the dict says what was done, for the
    settings.
    """
    if target is None:
        pairs = [scale_within_peak(stem, 0.0) for stem in audio]
        out = np.stack([stem for stem, _ in pairs]) if pairs else audio
        kept = [{"gain_db": round(gain, 3), "peak_limited_db": round(gain, 3)}
                for _, gain in pairs]  # fmt: skip
        return out, {"target_lufs": None, "stems": kept}
    out, stems = fit_output(audio, target)
    return out, {"target_lufs": round(target, 3), "stems": stems}
