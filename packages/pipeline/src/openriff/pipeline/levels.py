"""Levels: contexts in at one loudness, stems out at the level that fits the context.

A model hears its contexts at the loudness it was trained on, and its stems come out at
the stem-to-context loudness ratio of its training data. So:

* :func:`~openriff.pipeline.loudness.loudness` is ITU-R BS.1770 integrated loudness
  (pyloudnorm's, a chunk at a time: :mod:`openriff.pipeline.loudness`), in LUFS;
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
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from openriff.pipeline.loudness import CHUNK as _CHUNK
from openriff.pipeline.loudness import SAMPLE_RATE, Meter, loudness, peak

__all__ = [
    "INPUT_PEAK", "MAX_GAIN_DB", "MAX_LIMIT_DB", "OUTPUT_PEAK", "SILENCE_LUFS", "Levels",
    "Meter", "db_to_gain", "fit_output", "gain_for", "gain_to", "level_stems", "limit",
    "limited", "loudness", "peak", "scale_within_peak",
]  # fmt: skip

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
