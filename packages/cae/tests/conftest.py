"""Fixtures of the openriff-cae tests: synthetic audio written to disk."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def synth_clip(rng: np.random.Generator, seconds: float, sr: int = 48_000) -> np.ndarray:
    """Harmonic tones with decaying envelopes plus short noise bursts, in [-1, 1]."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        f0 = 110 * 2 ** rng.uniform(0, 4)
        start = rng.uniform(0, seconds * 0.7)
        gate = np.clip((t - start) / 0.01, 0, 1)
        env = gate * np.exp(-np.clip(t - start, 0, None) * rng.uniform(0.5, 6))
        tone = sum(
            rng.uniform(0.2, 1) / k * np.sin(2 * math.pi * f0 * k * t + rng.uniform(0, 6.28))
            for k in range(1, 5)
        )
        out += 0.3 * env * tone
    for _ in range(int(rng.integers(0, 3))):
        start = rng.uniform(0, seconds - 0.1)
        width = rng.uniform(0.02, 0.15)
        mask = (t >= start) & (t < start + width)
        out += 0.2 * rng.standard_normal(n) * mask * np.exp(-np.clip(t - start, 0, None) * 30)
    return np.clip(out, -1, 1).astype(np.float32)


def write_clips(
    folder: Path, files: int, seconds: float, seed: int, sr: int = 48_000, channels: int = 1
) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        clip = np.stack([synth_clip(rng, seconds, sr) for _ in range(channels)], axis=1)
        sf.write(folder / f"clip{i:03d}.wav", clip, sr)
    return folder


@pytest.fixture(scope="session")
def audio_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 1-second clips: six at 48 kHz mono, two at 44.1 kHz stereo."""
    root = tmp_path_factory.mktemp("audio")
    write_clips(root, 6, 1.0, seed=0)
    write_clips(root / "other", 2, 1.0, seed=1, sr=44_100, channels=2)
    return root
