"""Random fixed-length crops from a folder of audio files, for training a CAE.

Files are indexed once (length, rate, channels) without decoding; a crop is read straight
from its segment and resampled. Which crops make a batch is drawn from a generator the
trainer passes, so a run is reproducible and resumable, and every rank of a distributed
run can draw the same global batch and read only its own shard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from openriff.cae.audio import AudioError, audio_info, find_audio, load_audio
from openriff.cae.contract import adapt_channels


@dataclass(frozen=True)
class Crop:
    """One training example: a crop of ``path`` starting ``start`` seconds in."""

    path: Path
    start: float


class AudioCrops:
    """Crops of ``crop_samples`` samples at ``sample_rate`` with ``channels`` channels.

    Args:
        root: folder searched recursively for audio files.
        sample_rate: rate the model runs at (files are resampled).
        channels: channels the model takes (:func:`~openriff.cae.contract.adapt_channels`).
        crop_samples: samples per crop; shorter files are zero-padded.

    Raises:
        AudioError: no audio found, or files that cannot be read or are empty (all named).
    """

    def __init__(
        self, root: str | os.PathLike[str], sample_rate: int, channels: int, crop_samples: int
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.crop_samples = crop_samples
        self.files: list[Path] = []
        durations: list[float] = []
        problems: list[str] = []
        for path in find_audio(root):
            try:
                frames, rate, _ = audio_info(path)
            except AudioError as error:
                problems.append(str(error))
                continue
            if frames == 0:
                problems.append(f"{path}: no audio samples")
                continue
            self.files.append(path)
            durations.append(frames / rate)
        if problems:
            raise AudioError("unusable audio files:\n  " + "\n  ".join(problems))
        if not self.files:
            raise AudioError(f"{root}: no audio files found")
        self.durations = torch.tensor(durations, dtype=torch.float64)

    @property
    def crop_seconds(self) -> float:
        """Length of a crop in seconds."""
        return self.crop_samples / self.sample_rate

    def draw(self, count: int, generator: torch.Generator) -> list[Crop]:
        """``count`` random crops: files weighted by duration, uniform offsets."""
        index = torch.multinomial(self.durations, count, replacement=True, generator=generator)
        spare = (self.durations[index] - self.crop_seconds).clamp_min(0.0)
        offsets = torch.rand(count, generator=generator, dtype=torch.float64) * spare
        return [Crop(self.files[int(i)], float(o)) for i, o in zip(index, offsets, strict=True)]

    def load(self, crop: Crop) -> Tensor:
        """Audio of one crop, ``[channels, crop_samples]``."""
        # Read a little more than needed: resampling may round the length down.
        wave = load_audio(
            crop.path, self.sample_rate, start=crop.start, duration=self.crop_seconds + 0.01
        )
        wave = adapt_channels(wave[None], self.channels)[0]
        wave = wave[:, : self.crop_samples]
        return torch.nn.functional.pad(wave, (0, self.crop_samples - wave.shape[-1]))

    def batch(self, crops: list[Crop]) -> Tensor:
        """Audio of several crops, ``[len(crops), channels, crop_samples]``."""
        return torch.stack([self.load(crop) for crop in crops])
