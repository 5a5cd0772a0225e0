"""ClapEncoder: the real laion-clap model code, offline, with random weights (conftest)."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.clap_bridge.audio import AudioError
from openriff.clap_bridge.encoder import (
    WINDOW,
    ClapEncoder,
    ClapSetupError,
    clap_windows,
    missing_hf_files,
)


@pytest.fixture(scope="module")
def encoder(clap_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ClapEncoder:
    return ClapEncoder(
        clap_checkpoint,
        amodel="HTSAT-tiny",
        batch_size=3,
        cache_dir=tmp_path_factory.mktemp("cache"),
    )


def tone(seconds: float, rate: int = 48_000, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * math.pi * freq * t) + 0.05 * noise).astype(np.float32)


def test_text_embeddings_are_unit_norm_and_deterministic(encoder: ClapEncoder) -> None:
    prompts = ["warm bass line", "distorted electric guitar riff", "soft piano chords", "drums"]
    out = encoder.embed_text(prompts)
    assert out.shape == (4, 512)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    assert (out[0] - out[1]).abs().max() > 1e-3  # different prompts, different embeddings
    # Batching (3 per pass) and the order of prompts do not change an embedding.
    torch.testing.assert_close(encoder.embed_text(prompts[::-1]), out.flip(0))
    torch.testing.assert_close(encoder.embed_text("soft piano chords"), out[2:3])
    with pytest.raises(ValueError, match="empty"):
        encoder.embed_text([])
    with pytest.raises(TypeError, match="prompt 1"):
        encoder.embed_text(["ok", 3])  # type: ignore[list-item]


def test_audio_embeddings_shapes_rates_and_channels(encoder: ClapEncoder, tmp_path: Path) -> None:
    clip = tone(2.0)
    out = encoder.embed_audio([clip, tone(1.0, freq=880.0, seed=1)], sample_rate=48_000)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert torch.equal(out[:1], encoder.embed_audio([clip], sample_rate=48_000))
    # The same sound at 44.1 kHz (resampled to 48 kHz) embeds almost identically.
    at_44k = tone(2.0, rate=44_100)
    same = encoder.embed_audio([at_44k], sample_rate=44_100)
    assert float(same[0] @ out[0]) > 0.999
    assert float(out[0] @ out[1]) < 0.95  # while different sounds differ
    # Read as 48 kHz (a semitone and a half sharp), it drifts further.
    sharp = encoder.embed_audio([at_44k], sample_rate=48_000)
    assert float(sharp[0] @ out[0]) < float(same[0] @ out[0]) - 1e-3
    # Stereo is averaged to mono, as array [S, C], tensor [C, S] or file.
    stereo = np.stack([clip, clip], axis=1)
    torch.testing.assert_close(encoder.embed_audio([stereo], sample_rate=48_000), out[:1])
    torch.testing.assert_close(
        encoder.embed_audio([torch.from_numpy(stereo.T.copy())], sample_rate=48_000), out[:1]
    )
    sf.write(tmp_path / "clip.wav", stereo, 48_000, subtype="FLOAT")
    torch.testing.assert_close(encoder.embed_audio([tmp_path / "clip.wav"]), out[:1])


def test_long_clips_are_the_mean_of_deterministic_windows(encoder: ClapEncoder) -> None:
    long = np.concatenate([tone(10.0, freq=f, seed=i) for i, f in enumerate((110, 440, 1760))])
    long = long[: 25 * 48_000]  # 25 s: windows at 0-10, 10-20 and 15-25 s
    windows = clap_windows(long)
    assert [w.shape[0] for w in windows] == [WINDOW] * 3
    assert np.array_equal(windows[2], long[-WINDOW:])
    parts = encoder.embed_audio(windows, sample_rate=48_000)
    expected = parts.mean(dim=0)
    expected = expected / expected.norm()
    out = encoder.embed_audio([long], sample_rate=48_000)
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=1e-5)
    # Deterministic (laion-clap alone would crop at random).
    assert torch.equal(out, encoder.embed_audio([long], sample_rate=48_000))
    assert clap_windows(long[:WINDOW])[0].shape[0] == WINDOW


def test_cache_returns_stored_embeddings(encoder: ClapEncoder, tmp_path: Path) -> None:
    assert encoder.cache is not None
    sf.write(tmp_path / "a.wav", tone(1.0, seed=5), 48_000)
    first = encoder.embed_audio([tmp_path / "a.wav"])
    entries = sorted(encoder.cache.folder.rglob("*.npy"))
    assert entries
    # A poisoned entry is what comes back: the cache is really read.
    key = encoder.cache.key("audio-file", (tmp_path / "a.wav").read_bytes())
    encoder.cache.put(key, np.full(512, 2.0, dtype=np.float32))
    poisoned = encoder.embed_audio([tmp_path / "a.wav"])
    torch.testing.assert_close(poisoned[0], torch.full((512,), 1 / math.sqrt(512)))
    encoder.cache.put(key, first[0].numpy())
    # Other content, other key.
    sf.write(tmp_path / "a.wav", tone(1.0, seed=6), 48_000)
    assert not torch.equal(encoder.embed_audio([tmp_path / "a.wav"]), first)


def test_bad_audio_is_named(encoder: ClapEncoder, tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF nothing else")
    with pytest.raises(AudioError, match=r"broken\.wav"):
        encoder.embed_audio([tmp_path / "broken.wav"])
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        encoder.embed_audio([tmp_path / "missing.wav"])
    with pytest.raises(AudioError, match="empty"):
        encoder.embed_audio([np.zeros(0, dtype=np.float32)], sample_rate=48_000)
    with pytest.raises(AudioError, match="NaN"):
        encoder.embed_audio([np.full(100, np.nan, dtype=np.float32)], sample_rate=48_000)
    with pytest.raises(ValueError, match="sample_rate"):
        encoder.embed_audio([tone(1.0)])
    with pytest.raises(ValueError, match="empty"):
        encoder.embed_audio([])


def test_wrong_architecture_is_named(clap_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="HTSAT-tiny, no fusion checkpoint, but a HTSAT-base"):
        ClapEncoder(clap_checkpoint)  # the default is HTSAT-base
    with pytest.raises(ValueError, match="but a HTSAT-tiny, fusion model"):
        ClapEncoder(clap_checkpoint, amodel="HTSAT-tiny", fusion=True)
    # A file named like the public fusion checkpoint is expected to hold one.
    renamed = tmp_path / "630k-audioset-fusion-best.pt"
    renamed.write_bytes(clap_checkpoint.read_bytes())
    with pytest.raises(ValueError, match="HTSAT-tiny, fusion model was asked for"):
        ClapEncoder(renamed)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ClapEncoder(tmp_path / "nothing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable LAION-CLAP checkpoint"):
        ClapEncoder(tmp_path / "junk.pt")


def test_missing_hugging_face_files_are_listed(
    hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clap_checkpoint: Path
) -> None:
    from huggingface_hub import constants

    assert missing_hf_files() == []
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    missing = missing_hf_files()
    assert "roberta-base/model.safetensors or pytorch_model.bin" in missing
    assert "bert-base-uncased/vocab.txt" in missing
    assert len(missing) == 7
    with pytest.raises(ClapSetupError, match="huggingface-cli download roberta-base"):
        ClapEncoder(clap_checkpoint, amodel="HTSAT-tiny")


def test_architecture_is_read_off_the_weights() -> None:
    from openriff.clap_bridge.encoder import ClapArchitecture, architecture_of

    base = {"audio_branch.patch_embed.proj.weight": torch.zeros(128, 1, 4, 4)}
    assert architecture_of(base, "x") == ClapArchitecture("HTSAT-base", False)
    fused = {**base, "audio_branch.patch_embed.fusion_model.local_att.0.weight": torch.zeros(1)}
    assert architecture_of(fused, "x") == ClapArchitecture("HTSAT-base", True)
    tiny = {"audio_branch.patch_embed.proj.weight": torch.zeros(96, 1, 4, 4)}
    assert str(architecture_of(tiny, "x")) == "HTSAT-tiny, no fusion"
    with pytest.raises(ValueError, match="unknown HTSAT width 64"):
        architecture_of({"audio_branch.patch_embed.proj.weight": torch.zeros(64, 1)}, "x")
    with pytest.raises(ValueError, match="not a LAION-CLAP HTSAT checkpoint"):
        architecture_of({"text_branch.x": torch.zeros(1)}, "x")


class Payload:
    """Unpickling this would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    torch.save({"state_dict": {"module.x": torch.zeros(1)}, "x": Payload(marker)}, path)
    with pytest.raises(ValueError, match="holds Python objects") as error:
        ClapEncoder(path)
    assert "\n" not in str(error.value)
    assert "weights_only=False" not in str(error.value)
    assert not marker.exists()
