"""Fixtures of the openriff-cae tests: synthetic audio written to disk."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def synth_clip(rng: np.random.Generator, seconds: float, sr: int = 48_000) -> np.ndarray:
    """Quarter-second segments: a harmonic tone in a random register, a noise burst, or
    near-silence, each with its own loudness and decay, over a faint noise floor."""
    n = int(seconds * sr)
    out = 0.002 * rng.standard_normal(n)
    segment = int(0.25 * sr)
    for start in range(0, n, segment):
        stop = min(n, start + segment)
        t = np.arange(stop - start) / sr
        kind = int(rng.integers(0, 3))
        gain = 10 ** rng.uniform(-1.5, -0.5)
        envelope = np.minimum(1.0, t / 0.005) * np.exp(-t * rng.uniform(1, 8))
        if kind == 0:
            f0 = 55 * 2 ** rng.uniform(0, 6)
            tone = sum(np.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6) if f0 * k < 20_000)
            out[start:stop] += gain * envelope * tone
        elif kind == 1:
            out[start:stop] += gain * envelope * rng.standard_normal(stop - start)
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


@pytest.fixture(scope="session")
def make_clips() -> Callable[..., Path]:
    """``write_clips(folder, files, seconds, seed, sr=48000, channels=1)``, for tests."""
    return write_clips
