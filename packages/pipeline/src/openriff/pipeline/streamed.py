"""A context read from its file as it is needed: a song of any length in bounded memory.

``openriff generate --context song.wav`` needs the context three times: its loudness and
peak (to hear it at the bundle's trained level, :mod:`openriff.pipeline.levels`), its
latents (the codec reads it window by window, :meth:`openriff.cae.codec.SpectrogramCodec.
encode_from`), and, for ``--mix``, its samples again beside the stem. A
:class:`ContextFile` reads the file for each of these, block by block
(:func:`openriff.cae.audio.stream_audio`: the same samples as loading it whole, resampled
to 48 kHz and folded down to stereo as :func:`~openriff.pipeline.audio_io.load_input`
does), so the context is never in memory whole: a 30-minute stereo song is 0.65 GB of
float32 that a run does not hold. The latents, loudness and mix equal those of the whole
context loaded at once (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.cae.contract import SampleReader
from openriff.pipeline.audio_io import SAMPLE_RATE, check_file_format, fold_down
from openriff.pipeline.loudness import CHUNK, Meter


@dataclass(frozen=True)
class ContextFile:
    """A context recording on disk, surveyed once and then read as it is needed.

    Attributes:
        path: the file.
        name: what it is, for messages ("context").
        samples: its length at 48 kHz.
        channels: its channels after the fold-down (1 or 2).
        loudness: integrated loudness (LUFS) of the whole recording.
        peak: its largest absolute sample.
    """

    path: Path
    name: str
    samples: int
    channels: int
    loudness: float
    peak: float

    @classmethod
    def survey(cls, path: Path, name: str = "context") -> ContextFile:
        """Read ``path`` once: its format, length, loudness and peak are checked and kept.

        Raises:
            ValueError: the file cannot be used (as :func:`~openriff.pipeline.audio_io.
                load_input` says it), naming ``name`` and the file.
        """
        from openriff.cae.audio import AudioError

        meter, channels = Meter(SAMPLE_RATE), 0
        try:
            check_file_format(path, name)
            for block in _blocks(path):
                channels = block.shape[0]
                meter.add(block.numpy())
        except AudioError as error:
            raise ValueError(f"{name} {error}") from error
        return cls(path, name, meter.samples, channels, meter.loudness(), meter.peak)

    def chunks(self, length: int | None = None) -> Iterator[NDArray[np.float32]]:
        """The recording as ``Chunks`` (:mod:`~openriff.pipeline.audio_io`).

        Cropped, or padded with silence, to ``length`` samples.
        """
        length = self.samples if length is None else length
        done = 0
        for block in _blocks(self.path):
            if done >= length:
                break
            piece = block[:, : length - done].numpy()
            if piece.shape[-1] < min(CHUNK, length - done):  # the file ends inside this chunk
                piece = np.pad(piece, ((0, 0), (0, min(CHUNK, length - done) - piece.shape[-1])))
            yield piece
            done += piece.shape[-1]
        for first in range(done, length, CHUNK):
            yield np.zeros((self.channels, min(CHUNK, length - first)), np.float32)

    def reader(self, gain: float = 1.0) -> SampleReader:
        """``read(lo, hi)``: samples ``[lo, hi)`` times ``gain`` as ``[1, C, hi - lo]``.

        Zeros past the end; ``lo`` must never go back (the file is read once, forwards),
        which is how a codec reads its overlapping windows.
        """
        blocks = _blocks(self.path)
        buffer = torch.zeros(self.channels, 0)
        start = 0  # the sample buffer[:, 0] is

        def read(lo: int, hi: int) -> Tensor:
            nonlocal buffer, start
            if lo < start:
                raise ValueError(f"{self.name}: read from {lo} after {start} (forwards only)")
            while True:
                drop = min(lo - start, buffer.shape[-1])  # what no later read needs
                buffer, start = buffer[:, drop:], start + drop
                if start + buffer.shape[-1] >= hi:
                    break
                block = next(blocks, None)
                if block is None:  # the end of the file: zeros from here
                    break
                buffer = torch.cat([buffer, block], dim=1)
            part = buffer[:, : hi - lo] if start == lo else buffer[:, :0]
            part = torch.nn.functional.pad(part, (0, hi - lo - part.shape[-1]))
            return (part * gain)[None]  # (1, C, hi - lo)

        return read


def _blocks(path: Path) -> Iterator[Tensor]:
    """``[C <= 2, n]`` blocks of :data:`CHUNK` samples at 48 kHz (the last shorter)."""
    from openriff.cae.audio import stream_audio

    pending: list[Tensor] = []
    held = 0
    for block in stream_audio(path, SAMPLE_RATE, block=CHUNK):
        pending.append(fold_down(block))
        held += block.shape[-1]
        while held >= CHUNK:
            joined = torch.cat(pending, dim=1)
            yield joined[:, :CHUNK]
            pending, held = [joined[:, CHUNK:]], held - CHUNK
    if held:
        yield torch.cat(pending, dim=1)
