"""Reading and writing audio files: any format soundfile reads, resampled with soxr.

Errors name the file and the problem. Writing goes to a temporary file in the target's
folder, renamed when complete, so no half-written file is ever left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr
import torch
from torch import Tensor

from openriff.cae.files import write_atomic

AUDIO_SUFFIXES = frozenset(f".{ext.lower()}" for ext in sf.available_formats()) | {".mp3"}


class AudioError(ValueError):
    """An audio file that cannot be used, with the file named in the message."""


def resample(wave: npt.NDArray[np.float32], rate_in: int, rate_out: int) -> npt.NDArray[np.float32]:
    """Resample ``[S, C]`` float audio with soxr (high quality)."""
    if rate_in == rate_out:
        return wave
    out: npt.NDArray[np.float32] = soxr.resample(wave, rate_in, rate_out, quality="HQ")
    return out


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` of an audio file without decoding it."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot read audio ({error})") from error
    return int(info.frames), int(info.samplerate), int(info.channels)


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    start: float = 0.0,
    duration: float | None = None,
) -> Tensor:
    """Load (a segment of) an audio file as float32 ``[C, S]`` at ``sample_rate``.

    Args:
        path: any file soundfile reads.
        sample_rate: rate to resample to.
        start: offset in seconds.
        duration: seconds to read (default: to the end).

    Raises:
        AudioError: unreadable, empty, or containing NaN/Inf, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    frames, rate, _ = audio_info(path)
    first = round(start * rate)
    last = frames if duration is None else min(frames, first + round(duration * rate))
    try:
        data, rate = sf.read(
            str(path), start=first, stop=last, dtype="float32", always_2d=True
        )  # (S, C)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot read audio ({error})") from error
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples" + (" in the segment" if start else ""))
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    data = resample(data, rate, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(data.T))


STREAM_BLOCK = 2**19  # samples of the file read at once by stream_audio


def stream_audio(
    path: str | os.PathLike[str], sample_rate: int, *, block: int = STREAM_BLOCK
) -> Iterator[Tensor]:
    """Read an audio file block by block as float32 ``[C, n]`` at ``sample_rate``.

    The blocks put together equal :func:`load_audio` of the whole file (soxr's stream
    resamples exactly as its one-shot call), in the memory of one block: a recording of
    any length can be measured or encoded as it is read. A generator: the file is opened
    when the first block is asked for, and checked as it is read.

    Raises:
        AudioError: unreadable, empty, or containing NaN/Inf, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    _, rate, channels = audio_info(path)
    stream = None
    if rate != sample_rate:
        stream = soxr.ResampleStream(rate, sample_rate, channels, dtype="float32", quality="HQ")
    read = 0
    try:
        with sf.SoundFile(str(path)) as handle:
            while True:
                data = handle.read(block, dtype="float32", always_2d=True)  # (n, C)
                last = data.shape[0] < block
                read += data.shape[0]
                if not np.isfinite(data).all():
                    raise AudioError(f"{path}: contains NaN or infinite samples")
                if stream is not None:
                    data = stream.resample_chunk(data, last=last)
                if data.shape[0]:
                    yield torch.from_numpy(np.ascontiguousarray(data.T))
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"{path}: cannot read audio ({error})") from error
    if read == 0:
        raise AudioError(f"{path}: no audio samples")


def save_audio(
    path: str | os.PathLike[str],
    wave: Tensor,
    sample_rate: int,
    *,
    subtype: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``[C, S]`` audio to WAV/FLAC/... (format from the suffix), atomically.

    Args:
        path: target file; its suffix picks the format.
        wave: float audio ``[C, S]``.
        sample_rate: sample rate of ``wave``.
        subtype: soundfile subtype (e.g. ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``).
        overwrite: replace an existing file.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; refusing to overwrite it")
    if wave.ndim != 2:
        raise ValueError(f"expected audio shaped [C, S], got {list(wave.shape)}")
    data = wave.detach().to("cpu", torch.float32).numpy().T  # (S, C)
    write_atomic(target, lambda tmp: sf.write(tmp, data, sample_rate, subtype=subtype))
    return target


def find_audio(root: str | os.PathLike[str]) -> list[Path]:
    """Audio files under ``root`` (recursively, sorted), by suffix."""
    root = Path(root)
    if not root.is_dir():
        raise AudioError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
