"""Audio for the embedders (extra ``[audio]``: soundfile and soxr, imported when used)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
# Files that may sit in an audio folder without being an error.
IGNORED_SUFFIXES = (".json", ".txt", ".md", ".csv", ".npy", ".npz")


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the problem."""


def audio_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Audio files below ``folder`` (sorted); other files are an error, except sidecars."""
    root = Path(folder)
    if not root.is_dir():
        raise AudioError(f"{root}: not a folder")
    found, strangers = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            found.append(path)
        elif suffix not in IGNORED_SUFFIXES:
            strangers.append(path)
    if strangers:
        raise AudioError(f"{strangers[0]}: not an audio file (in the audio folder {root})")
    if not found:
        raise AudioError(f"{root}: no audio files (and no .npy embeddings)")
    return found


def to_mono(wave: NDArray[np.float32], rate: int, target: int, what: str) -> NDArray[np.float32]:
    """``[S]`` or ``[S, C]`` at ``rate`` -> mono ``[S']`` at ``target``; errors name ``what``."""
    import soxr

    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"{what}: empty or wrongly shaped audio {wave.shape}")
    if not np.isfinite(wave).all():
        raise AudioError(f"{what}: the audio contains NaN or infinite samples")
    if rate != target:
        wave = soxr.resample(wave, rate, target, quality="HQ").astype(np.float32)
    return wave


def load_mono(path: str | os.PathLike[str], target: int) -> NDArray[np.float32]:
    """Read a file as mono float32 at ``target`` Hz."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: not readable as audio ({error})") from error
    return to_mono(wave, int(rate), target, str(path))
