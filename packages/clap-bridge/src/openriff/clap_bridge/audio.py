"""Reading audio for CLAP: any file soundfile reads -> 48 kHz mono float32, or a clear error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from numpy.typing import NDArray

CLAP_RATE = 48_000


class AudioError(ValueError):
    """Audio that cannot be embedded; the message names the file and the problem."""


def to_clap_rate(wave: NDArray[Any], sample_rate: int, what: str = "audio") -> NDArray[np.float32]:
    """``[S]`` or ``[S, C]`` audio at ``sample_rate`` -> ``[S']`` mono float32 at 48 kHz.

    Channels are averaged. Raises :class:`AudioError` for empty or non-finite audio.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise AudioError(f"{what}: expected [samples] or [samples, channels], got {wave.shape}")
    if wave.size == 0:
        raise AudioError(f"{what}: the audio is empty (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError(f"{what}: the audio contains NaN or infinite samples")
    if sample_rate <= 0:
        raise AudioError(f"{what}: invalid sample rate {sample_rate}")
    if sample_rate != CLAP_RATE:
        wave = soxr.resample(wave, sample_rate, CLAP_RATE, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(wave)


def load_clap_audio(path: str | os.PathLike[str]) -> NDArray[np.float32]:
    """Read a file as 48 kHz mono float32 ``[S]``."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: not readable as audio ({error})") from error
    return to_clap_rate(wave, int(rate), str(path))
