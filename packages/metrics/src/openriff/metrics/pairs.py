"""One signal per (context, accompaniment) pair, as APA embeds it (extra ``[audio]``).

Both parts are matched in loudness (ITU-R BS.1770 integrated loudness, pyloudnorm),
summed, the mix is normalised to ``target_lufs`` (-20 LUFS) and scaled down if its peak
would exceed ``peak`` (below full scale). If one part is silent (loudness below the
BS.1770 absolute gate, -70 LUFS), the mix is the other part alone, normalised the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.audio import AudioError

SILENCE_LUFS = -70.0


def _loudness(meter: Any, wave: NDArray[np.float32], what: str) -> float:
    if wave.shape[0] < int(0.4 * meter.rate) + 1:
        raise AudioError(f"{what}: shorter than the 400 ms BS.1770 measurement block")
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(wave.astype(np.float64)))


def _gain_to(wave: NDArray[np.float64], loudness: float, target: float) -> NDArray[np.float64]:
    return wave * 10.0 ** ((target - loudness) / 20.0)


def mix_pair(
    context: NDArray[np.float32],
    accompaniment: NDArray[np.float32],
    sample_rate: int,
    *,
    target_lufs: float = -20.0,
    peak: float = 0.99,
) -> NDArray[np.float32]:
    """The loudness-matched mix of two mono signals ``[S]`` (trimmed to the shorter).

    Raises:
        AudioError: if both parts are silent or shorter than 400 ms.
    """
    try:
        import pyloudnorm
    except ImportError as error:
        raise ImportError(
            "mixing pairs for APA needs the [audio] extra: pip install 'openriff-metrics[audio]'"
        ) from error

    n = min(context.shape[0], accompaniment.shape[0])
    parts = [np.asarray(context[:n], np.float64), np.asarray(accompaniment[:n], np.float64)]
    meter = pyloudnorm.Meter(sample_rate)
    levels = [
        _loudness(meter, p.astype(np.float32), w)
        for p, w in zip(parts, ("context", "accompaniment"), strict=True)
    ]
    audible = [(p, lvl) for p, lvl in zip(parts, levels, strict=True) if lvl > SILENCE_LUFS]
    if not audible:
        raise AudioError("both the context and the accompaniment are silent")
    mix = sum((_gain_to(p, lvl, target_lufs) for p, lvl in audible), np.zeros(n))
    mix_level = _loudness(meter, mix.astype(np.float32), "mix")
    if mix_level > SILENCE_LUFS:
        mix = _gain_to(mix, mix_level, target_lufs)
    top = float(np.abs(mix).max())
    if top > peak:
        mix = mix * (peak / top)
    return mix.astype(np.float32)
