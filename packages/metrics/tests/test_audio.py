"""Pair mixing for APA, audio folders, embedders and their cache."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.metrics.audio import AudioError, audio_files, load_mono
from openriff.metrics.cache import EmbeddingCache
from openriff.metrics.embedders import Embedder, embed_files
from openriff.metrics.pairs import mix_pair

RATE = 48_000


def sine(freq: float, seconds: float = 2.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def lufs(x: np.ndarray) -> float:
    import pyloudnorm

    return float(pyloudnorm.Meter(RATE).integrated_loudness(x.astype(np.float64)))


def test_mix_pair_matches_loudness_and_normalises() -> None:
    quiet, loud = sine(220, amp=0.01), sine(1000, amp=0.8)
    mix = mix_pair(quiet, loud, RATE)
    assert lufs(mix) == pytest.approx(-20.0, abs=0.1)
    assert np.abs(mix).max() <= 0.99 + 1e-6
    # Matched loudness: each part contributes equally, whatever its level.
    parts = [mix_pair(quiet, np.zeros_like(loud), RATE), mix_pair(np.zeros_like(quiet), loud, RATE)]
    for part in parts:  # a silent partner leaves the other part alone, at -20 LUFS
        assert lufs(part) == pytest.approx(-20.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(mix))
    low, high = spectrum[220 * 2], spectrum[1000 * 2]  # 2 s: bin = 2 * Hz
    assert lufs(parts[0]) == pytest.approx(lufs(parts[1]), abs=0.1)
    assert 0.3 < low / high < 3.0
    # Loud peaky content is limited below full scale.
    clicks = np.zeros(RATE * 2, dtype=np.float32)
    clicks[::4800] = 1.0
    assert (
        np.abs(mix_pair(clicks, np.zeros_like(clicks), RATE, target_lufs=-5.0)).max() <= 0.99 + 1e-6
    )
    with pytest.raises(AudioError, match="both"):
        mix_pair(np.zeros(RATE, np.float32), np.zeros(RATE, np.float32), RATE)
    with pytest.raises(AudioError, match="400 ms"):
        mix_pair(sine(220, 0.2), sine(220, 0.2), RATE)


def test_audio_folders_and_loading(tmp_path: Path) -> None:
    sf.write(tmp_path / "b.wav", sine(440, 1.0), RATE)
    sf.write(tmp_path / "a.flac", np.stack([sine(440, 1.0)] * 2, axis=1), 44_100)
    (tmp_path / "a.json").write_text("{}")
    assert [p.name for p in audio_files(tmp_path)] == ["a.flac", "b.wav"]
    # 48000 samples written at 44.1 kHz, read back at 48 kHz.
    assert load_mono(tmp_path / "a.flac", RATE).shape == (round(48_000 * 48_000 / 44_100),)
    (tmp_path / "cover.png").write_bytes(b"png")
    with pytest.raises(AudioError, match=r"cover\.png: not an audio file"):
        audio_files(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioError, match="no audio files"):
        audio_files(tmp_path / "empty")
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    with pytest.raises(AudioError, match=r"bad\.wav: not readable"):
        load_mono(tmp_path / "bad.wav", RATE)


class CountingEmbedder:
    """A transparent embedder: the mean and RMS of each wave, counting calls."""

    sample_rate = 16_000
    dim = 2
    name = "counting-v1"

    def __init__(self) -> None:
        self.waves = 0

    def embed(self, waves):  # type: ignore[no-untyped-def]
        self.waves += len(waves)
        return np.array([[w.mean(), np.sqrt((w**2).mean())] for w in waves])


def test_embed_files_resamples_and_caches(tmp_path: Path) -> None:
    for i, amp in enumerate((0.1, 0.2, 0.4)):
        sf.write(tmp_path / f"{i}.wav", sine(300, 1.0, amp), RATE)
    embedder = CountingEmbedder()
    assert isinstance(embedder, Embedder)
    cache = EmbeddingCache(tmp_path / "cache")
    files = audio_files(tmp_path)
    first = embed_files(embedder, files, cache, batch_size=2)
    np.testing.assert_allclose(
        first[:, 1], [0.1 / math.sqrt(2), 0.2 / math.sqrt(2), 0.4 / math.sqrt(2)], rtol=1e-2
    )
    assert embedder.waves == 3
    again = embed_files(embedder, files, cache)
    assert embedder.waves == 3  # all from the cache
    np.testing.assert_array_equal(again, first)
    # Another model name never sees these entries.
    other = CountingEmbedder()
    other.name = "counting-v2"
    embed_files(other, files, cache)
    assert other.waves == 3


def test_fadtk_embedder_wraps_any_model_loader() -> None:
    import torch
    from fadtk.model_loader import ModelLoader

    from openriff.metrics.embedders import FadtkEmbedder

    class Framewise(ModelLoader):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__("framewise-test", num_features=3, sr=16_000)

        def load_model(self) -> None:
            self.model = "loaded"

        def _get_embedding(self, audio: np.ndarray) -> torch.Tensor:
            frames = torch.from_numpy(np.asarray(audio, np.float32)).reshape(-1, 1600)
            return torch.stack([frames.mean(1), frames.abs().mean(1), frames.max(1).values], 1)

    embedder = FadtkEmbedder(Framewise())
    assert (embedder.sample_rate, embedder.dim, embedder.name) == (
        16_000,
        3,
        "fadtk:framewise-test",
    )
    wave = np.concatenate([np.full(1600, 0.5), np.full(1600, -0.5)]).astype(np.float32)
    out = embedder.embed([wave])
    np.testing.assert_allclose(out, [[0.0, 0.5, 0.0]], atol=1e-3)  # mean over two frames

    class Broken(Framewise):
        def load_model(self) -> None:
            raise OSError("weights.pt not found")

    from openriff.metrics.errors import EmbedderUnavailable

    with pytest.raises(EmbedderUnavailable, match=r"framewise-test.*weights\.pt not found"):
        FadtkEmbedder(Broken())
    with pytest.raises(ValueError, match="unknown fadtk model 'nope'"):
        FadtkEmbedder("nope")


def test_fadtk_zoo_names_build_without_downloading() -> None:
    from openriff.metrics.embedders import FadtkEmbedder, fadtk_model
    from openriff.metrics.errors import EmbedderUnavailable

    for name, dim in [
        ("MERT-v1-95M", 768),
        ("MERT-v1-95M-4", 768),
        ("hubert-large", 1024),
        ("w2v2-base-3", 768),
        ("wavlm-base-plus-7", 768),
        ("whisper-tiny", 384),
        ("vggish", 128),
        ("encodec-emb-48k", 128),
    ]:
        model = fadtk_model(name)
        assert (model.name, model.num_features) == (name, dim)
    with pytest.raises(EmbedderUnavailable, match=r"music_audioset_epoch_15_esc_90\.14\.pt"):
        fadtk_model("clap-laion-music")
    # Weights not in the (offline) Hugging Face cache: one clear error, nothing downloaded.
    with pytest.raises(EmbedderUnavailable, match="'hubert-base' could not load"):
        FadtkEmbedder("hubert-base")
