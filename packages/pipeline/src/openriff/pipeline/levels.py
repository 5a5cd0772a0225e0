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
* :func:`fit_output` sets generated stems to ``context loudness + ratio`` and scales down
  any stem that would peak above :data:`OUTPUT_PEAK`, saying so: no written file clips.
"""

from __future__ import annotations

import math
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
# A context quieter than this is silence: generation leaves it as it is.
SILENCE_LUFS = -70.0


def loudness(wave: ArrayLike, sample_rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness (LUFS) of ``[S]`` or ``[C, S]`` audio; ``-inf`` for silence.

    Shorter than 400 ms (no BS.1770 gating block): the RMS level in dBFS instead.
    """
    array = np.asarray(wave, dtype=np.float64)
    if array.ndim == 1:
        array = array[None]
    if array.size == 0 or not np.any(array):
        return -math.inf
    if array.shape[-1] < BLOCK_SECONDS * sample_rate:
        rms = float(np.sqrt(np.mean(array**2)))
        return 20 * math.log10(rms) if rms > 0 else -math.inf
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    value = float(meter.integrated_loudness(array.T))  # (S, C)
    return value if math.isfinite(value) else -math.inf


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


def fit_output(
    stems: NDArray[np.float32], target_lufs: float, sample_rate: int = SAMPLE_RATE
) -> tuple[NDArray[np.float32], list[dict[str, float | None]]]:
    """Stems ``[N, C, S]`` at ``target_lufs`` each, none peaking above :data:`OUTPUT_PEAK`.

    Returns:
        the stems and, per stem, its ``gain_db``, the loudness it was given (``lufs``) and
        ``peak_limited_db``: how far it was scaled down below the target so as not to clip
        (0 when it was not).
    """
    out = np.empty_like(stems)
    report = []
    for i, stem in enumerate(stems):
        level = loudness(stem, sample_rate)
        gain = 0.0 if not math.isfinite(level) else min(target_lufs - level, MAX_GAIN_DB)
        out[i], applied = scale_within_peak(stem, gain)
        report.append({
            "gain_db": round(applied, 3),
            # Loudness scales with the gain; silence has none (None in JSON, not -inf).
            "lufs": round(level + applied, 3) if math.isfinite(level) else None,
            "peak_limited_db": round(applied - gain, 3),
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
