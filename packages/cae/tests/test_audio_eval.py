from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from openriff.cae.audio import AudioError, load_audio, save_audio
from openriff.cae.evaluation import multiresolution_stft_distance


def test_multiresolution_stft_distance() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 1, 8192, generator=g) * 0.1
    d_same = multiresolution_stft_distance(target, target)
    torch.testing.assert_close(d_same, torch.zeros(3), atol=1e-6, rtol=0)
    near = multiresolution_stft_distance(target * 1.05, target)
    far = multiresolution_stft_distance(torch.randn(3, 1, 8192, generator=g) * 0.1, target)
    assert bool((near > 0).all())
    assert bool((near < far).all())
    with pytest.raises(ValueError, match="shapes differ"):
        multiresolution_stft_distance(target, target[:2])


def test_load_resamples_and_saves_atomically(tmp_path: Path) -> None:
    t = np.arange(44_100) / 44_100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "tone.flac", np.stack([tone, -tone], 1), 44_100)
    wave = load_audio(tmp_path / "tone.flac", 48_000)
    assert wave.shape == (2, 48_000)
    torch.testing.assert_close(wave[0], -wave[1])
    # A 440 Hz tone stays at 440 Hz after resampling.
    spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
    assert abs(int(spectrum.argmax()) - 440) <= 1
    segment = load_audio(tmp_path / "tone.flac", 48_000, start=0.5, duration=0.25)
    assert segment.shape == (2, 12_000)
    out = save_audio(tmp_path / "x.wav", wave, 48_000, subtype="PCM_16")
    assert sf.info(out).frames == 48_000
    with pytest.raises(FileExistsError, match="exists"):
        save_audio(out, wave, 48_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.flac", "x.wav"]


def test_empty_audio_is_named(tmp_path: Path) -> None:
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), dtype=np.float32), 48_000)
    with pytest.raises(AudioError, match=r"empty\.wav: no audio samples"):
        load_audio(tmp_path / "empty.wav", 48_000)


@pytest.mark.parametrize("rate", [48_000, 44_100, 22_050])
def test_streamed_blocks_equal_the_whole_file(tmp_path: Path, rate: int) -> None:
    from openriff.cae.audio import stream_audio

    noise = 0.1 * np.random.default_rng(rate).standard_normal((3 * rate + 777, 2))
    sf.write(tmp_path / "n.wav", noise.astype(np.float32), rate, subtype="FLOAT")
    blocks = list(stream_audio(tmp_path / "n.wav", 48_000, block=10_000))
    assert len(blocks) >= 6  # 10 000 samples of the file at a time
    assert all(block.shape[0] == 2 and block.dtype == torch.float32 for block in blocks)
    # soxr's stream resamples exactly as its one-shot call: bit for bit.
    torch.testing.assert_close(torch.cat(blocks, 1), load_audio(tmp_path / "n.wav", 48_000),
                               rtol=0, atol=0)  # fmt: skip


def test_streamed_blocks_refuse_what_load_refuses(tmp_path: Path) -> None:
    from openriff.cae.audio import stream_audio

    bad = np.zeros((30_000, 1), np.float32)
    bad[25_000] = np.nan  # in the third block: found as it is read
    sf.write(tmp_path / "nan.wav", bad, 48_000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN or infinite samples"):
        list(stream_audio(tmp_path / "nan.wav", 48_000, block=10_000))
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), dtype=np.float32), 48_000)
    with pytest.raises(AudioError, match=r"empty\.wav: no audio samples"):
        list(stream_audio(tmp_path / "empty.wav", 48_000))
    with pytest.raises(AudioError, match=r"gone\.wav: no such file"):
        list(stream_audio(tmp_path / "gone.wav", 48_000))
