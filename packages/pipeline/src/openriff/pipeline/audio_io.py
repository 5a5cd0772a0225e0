"""Audio in and out of generation: checked inputs, mixes, files, spectrogram plots.

Inputs (a context, a stem to edit, a reference) are a file path or an array ``[S]`` /
``[C, S]``; every problem (missing or unreadable file, no samples, NaN, a sample rate or
channel count the models cannot use) is a ``ValueError`` naming the input. Rates from 8 to
384 kHz are resampled to 48 kHz (below 32 kHz with a warning: the band is narrow); more
than two channels are folded down to stereo (:func:`fold_down`: 5.1 and 7.1 as ITU-R
BS.775 does, other layouts by alternating channels). Outputs are
written atomically: all files of one generation go to temporary names first and are
renamed together when every one of them is complete.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias, Union

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.files import open_to_umask
from openriff.pipeline.loudness import CHUNK  # the grid of every chunked pass

SAMPLE_RATE = 48_000
# Telephone-band audio is the lowest rate taken; below NARROW_SAMPLE_RATE it is taken
# with a warning, since the models heard full-band (48 kHz) music in training.
MIN_SAMPLE_RATE = 8_000
NARROW_SAMPLE_RATE = 32_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8  # up to 7.1; more than 2 are folded down to stereo
# ITU-R BS.775 fold-down gain of the centre and surround channels (-3 dB); the LFE is left out.
SURROUND_GAIN = 0.5**0.5
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
MIX_PEAK = 0.99  # a mix peaking above this is scaled down to it
AudioInput: TypeAlias = Union[str, "os.PathLike[str]", NDArray[np.floating[Any]], Tensor]
"""An audio input: a path, or an array / tensor ``[S]`` or ``[C, S]`` (with its rate)."""
Chunks: TypeAlias = Callable[[], Iterator[NDArray[np.float32]]]
"""Audio as ``[C, n]`` chunks of :data:`CHUNK` samples (the last shorter), from its start;
each call reads it again (from memory, or from a file: :mod:`openriff.pipeline.streamed`)."""


def load_input(source: AudioInput, name: str, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """Read an input as float32 ``[C, S]`` at 48 kHz.

    Args:
        source: a path, or an array ``[S]``/``[C, S]`` at ``sample_rate``.
        name: what the input is, for error messages ("context", "reference", ...).
        sample_rate: rate of an array input.

    Raises:
        ValueError: the input cannot be used; the message names it and the problem.
    """
    from openriff.cae.audio import AudioError, load_audio, resample

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            check_file_format(path, name)
            # Missing, unreadable, empty or NaN files: openriff-cae's errors name the file.
            return fold_down(load_audio(path, SAMPLE_RATE))
        except AudioError as error:
            raise ValueError(f"{name} {error}") from error
    array = np.asarray(source, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be audio shaped [S] or [C, S], got {array.shape}")
    check_format(name, sample_rate, array.shape[0])
    if array.shape[-1] == 0:
        raise ValueError(f"{name}: no audio samples (0 s)")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite samples")
    data = resample(np.ascontiguousarray(array.T), sample_rate, SAMPLE_RATE)  # (S, C)
    return fold_down(torch.from_numpy(np.ascontiguousarray(data.T)))


def fold_down(wave: Tensor) -> Tensor:
    """``[C, S]`` audio with more than two channels as stereo ``[2, S]`` (else unchanged).

    Six channels are 5.1 and eight are 7.1 in the WAVE order (L, R, C, LFE, then the
    surround pairs, left first): each side is its front channel plus the centre and its
    surround channels at -3 dB, and the LFE is left out (ITU-R BS.775). Other counts:
    even channels to the left, odd ones to the right, averaged (the codecs' own rule,
    :func:`openriff.cae.contract.adapt_channels`).
    """
    channels = wave.shape[0]
    if channels <= 2:
        return wave
    if channels in (6, 8):
        centre = SURROUND_GAIN * wave[2]
        left = wave[0] + centre + SURROUND_GAIN * wave[4::2].sum(0)
        right = wave[1] + centre + SURROUND_GAIN * wave[5::2].sum(0)
        return torch.stack([left, right])
    return torch.stack([wave[0::2].mean(0), wave[1::2].mean(0)])


def check_file_format(path: Path, name: str) -> None:
    """Refuse an existing file whose rate or channels the models cannot use, before decoding.

    Raises:
        AudioError: unreadable header (openriff-cae's, naming the file).
        ValueError: as :func:`check_format`, naming ``name`` and the file.
    """
    from openriff.cae.audio import audio_info

    if path.is_file():
        _, rate, channels = audio_info(path)
        check_format(f"{name} {path}", rate, channels)


def check_format(label: str, rate: int, channels: int) -> None:
    """Refuse a sample rate or channel count the models cannot use; warn of a narrow band."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{label}: sample rate {rate} Hz is not supported "
            f"(use {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz; 48 kHz is native)"
        )
    if rate < NARROW_SAMPLE_RATE:
        warnings.warn(
            f"{label} is {rate} Hz: it holds nothing above {rate / 2000:g} kHz, while the "
            "model heard full-band music in training",
            stacklevel=4,
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(
            f"{label}: {channels} channels are not supported (1 to {MAX_CHANNELS}; arrays "
            "are [C, S], so a [S, C] array must be transposed)"
        )


def match_channels(wave: NDArray[np.float32], channels: int) -> NDArray[np.float32]:
    """``[C, S]`` audio with ``channels`` channels, adapted as the codecs adapt their input.

    Mono is copied, extra channels are averaged (:func:`openriff.cae.contract.adapt_channels`).
    """
    from openriff.cae.contract import adapt_channels

    adapted = adapt_channels(torch.from_numpy(np.asarray(wave, np.float32))[None], channels)
    return np.ascontiguousarray(adapted[0].numpy())


def mix(parts: Sequence[NDArray[np.float32]]) -> tuple[NDArray[np.float32], float]:
    """Sum ``[C, S]`` parts (channels matched to the widest) into a mix that does not clip.

    Returns:
        the mix and the gain applied to it (1.0 unless the sum peaked above 0.99).
    """
    channels = max(part.shape[0] for part in parts)
    together, gain = mixed([array_chunks(part) for part in parts], channels)
    pieces = list(together())
    if not pieces:  # parts of no samples
        return np.zeros((channels, 0), np.float32), gain
    return np.concatenate(pieces, axis=1), gain


def array_chunks(wave: NDArray[np.float32]) -> Chunks:
    """``[C, S]`` audio in memory as :data:`Chunks` (views, no copy)."""

    def chunks() -> Iterator[NDArray[np.float32]]:
        for first in range(0, wave.shape[-1], CHUNK):
            yield wave[:, first : first + CHUNK]

    return chunks


def mixed(parts: Sequence[Chunks], channels: int) -> tuple[Chunks, float]:
    """:func:`mix` of parts given as :data:`Chunks`, in the memory of a chunk.

    Reads the parts twice: once for the mix's peak, then (each time the result is read)
    for its samples, equal to :func:`mix`'s.

    Returns:
        the mix as :data:`Chunks` of ``channels`` channels, and the gain applied to it.
    """

    def total() -> Iterator[NDArray[np.float32]]:
        readers = [part() for part in parts]
        while pieces := [p for p in (next(r, None) for r in readers) if p is not None]:
            out = np.zeros((channels, max(p.shape[-1] for p in pieces)), dtype=np.float32)
            for piece in pieces:
                out[:, : piece.shape[-1]] += match_channels(piece, channels)
            yield out

    peak = max((float(np.abs(chunk).max(initial=0.0)) for chunk in total()), default=0.0)
    gain = MIX_PEAK / peak if peak > MIX_PEAK else 1.0

    def chunks() -> Iterator[NDArray[np.float32]]:
        for chunk in total():
            yield chunk * gain

    return chunks, gain


def check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse before any work when an output exists or its folder cannot be written.

    Also refused: one file named for two outputs (``--out x.wav --mix x.wav``) and a
    name longer than the file system allows.
    """
    seen: dict[Path, Path] = {}
    for path in paths:
        key = Path(os.path.abspath(path))
        if key in seen:
            raise ValueError(f"{path} is named for two outputs; give each output its own file")
        seen[key] = path
    for path in paths:
        if len(os.fsencode(path.name)) > _name_max(path):
            raise ValueError(
                f"output name {path.name[:40]}... is {len(os.fsencode(path.name))} bytes, "
                f"longer than the {_name_max(path)} this file system allows"
            )
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a file name")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # the first folder that exists is where it gets created
        if not folder.is_dir():
            raise ValueError(f"cannot write {path}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"cannot write {path}: {folder} is not writable")


def _name_max(path: Path) -> int:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def write_together(writers: dict[Path, Callable[[str], object]]) -> list[Path]:
    """Write several files so that either all of them appear or none does.

    Each ``writer(tmp)`` writes a temporary file beside its target (same suffix, so
    soundfile and matplotlib pick the format); only when every one succeeded are they
    renamed into place, with the permissions the user's umask gives. On any error (a full
    disk included) the temporary files are removed.
    """
    pending: list[tuple[str, Path]] = []
    try:
        for path, write in writers.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
            os.close(fd)
            pending.append((tmp, path))
            open_to_umask(tmp)
            write(tmp)
    except BaseException:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in pending:
        os.replace(tmp, path)
    return [path for _, path in pending]


def audio_writer(wave: NDArray[np.float32], sample_rate: int, bits: str) -> Callable[[str], object]:
    """A writer of ``[C, S]`` audio for :func:`write_together` (format from the suffix).

    Args:
        wave: float audio ``[C, S]``.
        sample_rate: its rate.
        bits: ``"16"``, ``"24"`` or ``"float"``.
    """
    return chunks_writer(array_chunks(wave), wave.shape[0], sample_rate, bits)


def chunks_writer(
    chunks: Chunks, channels: int, sample_rate: int, bits: str
) -> Callable[[str], object]:
    """A writer of audio given as :data:`Chunks`, a chunk at a time (no copy of the whole).

    Args:
        chunks: ``[channels, n]`` float audio.
        channels: its channels.
        sample_rate: its rate.
        bits: ``"16"``, ``"24"`` or ``"float"``.
    """
    if bits not in SUBTYPES:
        raise ValueError(f"bits must be one of {sorted(SUBTYPES)}, got {bits!r}")
    import soundfile as sf

    def write(tmp: str) -> None:
        suffix = Path(tmp).suffix.lower()
        if suffix == ".flac" and bits == "float":
            raise ValueError("FLAC stores integers only: use --bits 16 or 24, or a .wav file")
        with sf.SoundFile(tmp, "w", sample_rate, channels, SUBTYPES[bits]) as handle:
            for chunk in chunks():
                handle.write(chunk.T)

    return write


def plot_writer(
    panels: Sequence[tuple[str, NDArray[np.float32] | Chunks]], sample_rate: int
) -> Callable[[str], object]:
    """A writer of a PNG with one spectrogram per ``(title, [C, S] or Chunks)`` panel.

    Log-magnitude on a logarithmic frequency axis from 30 Hz (where a bass line lives) to
    Nyquist; at most about 2000 columns, so a whole song plots as fast as a loop.
    """

    def write(tmp: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
        for ax, (title, wave) in zip(axes[:, 0], panels, strict=True):
            if callable(wave):  # read as it is plotted (a long context kept on disk)
                mono = np.concatenate([chunk.mean(0) for chunk in wave()])
            else:
                mono = wave.mean(0)
            n_fft = 4096
            hop = max(n_fft // 4, -(-mono.shape[-1] // 2000))
            if mono.shape[-1] < n_fft:
                mono = np.pad(mono, (0, n_fft - mono.shape[-1]))
            spec = torch.stft(
                torch.from_numpy(np.ascontiguousarray(mono)), n_fft, hop,
                window=torch.hann_window(n_fft), return_complex=True,
            ).abs()  # fmt: skip
            db = 20 * torch.log10(spec + 1e-5).numpy()
            freqs = np.arange(db.shape[0]) * sample_rate / n_fft
            times = np.arange(db.shape[1]) * hop / sample_rate
            band = freqs >= 30.0
            ax.pcolormesh(
                times, freqs[band], db[band], shading="auto", cmap="magma",
                vmin=float(db.max()) - 80, vmax=float(db.max()), rasterized=True,
            )  # fmt: skip
            ax.set_yscale("log")
            ax.set_ylim(30.0, sample_rate / 2)
            ax.set_title(title)
            ax.set_ylabel("Hz")
        axes[-1, 0].set_xlabel("seconds")
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)

    return write
