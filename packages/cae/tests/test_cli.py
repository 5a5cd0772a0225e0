import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.cae.cli import main


@pytest.fixture
def song(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "song.wav"
    sf.write(path, (rng.standard_normal((30_001, 2)) * 0.1).astype(np.float32), 44_100)
    return path


def test_encode_decode_restores_the_exact_length(song: Path, tmp_path: Path) -> None:
    latents = tmp_path / "latents"
    assert main(["encode", "--preset", "diffariff-tiny", str(song), "--out", str(latents)]) == 0
    array = np.load(latents / "song.npy")
    meta = json.loads((latents / "song.json").read_text())
    expected_samples = round(30_001 * 48_000 / 44_100)
    assert meta["samples"] == expected_samples
    assert array.shape == (64, -(-expected_samples // 4096))
    audio = tmp_path / "audio"
    args = ["decode", "--preset", "diffariff-tiny", str(latents / "song.npy"), "--out", str(audio)]
    assert main([*args, "--format", "flac", "--subtype", "PCM_24"]) == 0
    info = sf.info(audio / "song.flac")
    assert (info.frames, info.samplerate, info.channels) == (expected_samples, 48_000, 1)
    assert info.subtype == "PCM_24"


def test_roundtrip_and_refusing_to_overwrite(
    song: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.wav"
    args = ["roundtrip", "--preset", "diffariff-tiny", str(song), "--out", str(out)]
    assert main(args) == 0
    first = sf.read(out)[0]
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    np.testing.assert_array_equal(sf.read(out)[0], first)  # same seed, same audio
    # The other decoding gives other audio of the same length.
    assert main([*args, "--overwrite", "--decoding", "magnitude"]) == 0
    magnitude = sf.read(out)[0]
    assert magnitude.shape == first.shape
    assert not np.array_equal(magnitude, first)


def test_bad_inputs_give_one_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt garbage")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(4800, np.nan, dtype=np.float32), 48_000, subtype="FLOAT")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((32, 5), dtype=np.float32))
    cases = [
        (["encode", "--preset", "diffariff-tiny", str(tmp_path / "missing.wav")], "no such file"),
        (["encode", "--preset", "diffariff-tiny", str(corrupt)], "corrupt.wav: cannot read"),
        (["encode", "--preset", "diffariff-tiny", str(nan)], "nan.wav: contains NaN"),
        (["decode", "--preset", "diffariff-tiny", str(wrong)], r"expected latents shaped [64, T]"),
        (["decode", "--model", str(tmp_path), str(wrong)], "config.json is missing"),
    ]
    for args, message in cases:
        assert main([*args, "--out", str(tmp_path / "o")]) == 2, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert len(err.strip().splitlines()) == 1 or "UNTRAINED" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
