"""``openriff data codec-audio``: the target stems and the mix of the other stems."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.data.codec_audio import write_codec_audio
from openriff.pipeline.data.synth import synth_dataset


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    synth_dataset(root, 2, seed=3, bars=1)
    return root


def test_targets_kept_and_others_mixed(songs: Path, tmp_path: Path) -> None:
    out = tmp_path / "codec"
    folders, report = write_codec_audio(songs, out, ["bass"])
    assert [f.name for f in folders] == ["song_0003", "song_0004"]
    assert report.skipped == []
    for folder in folders:
        assert sorted(os.listdir(folder)) == ["bass.wav", "others.wav"]
        stems = {
            p.stem: sf.read(p, dtype="float32")[0] for p in (songs / folder.name).glob("*.wav")
        }
        bass, rate = sf.read(folder / "bass.wav", dtype="float32")
        assert rate == 48_000
        np.testing.assert_array_equal(bass, stems["bass"])
        others, _ = sf.read(folder / "others.wav", dtype="float32")
        expected = np.sum([w for name, w in stems.items() if name != "bass"], axis=0)
        scale = min(1.0, 0.99 / np.abs(expected).max())
        # 16-bit files: equal within two quantisation steps.
        assert np.abs(others - expected * scale).max() < 2 / 2**15
        assert np.abs(expected).max() > 0.05


def test_resumes_and_refuses_bad_input(songs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "codec"
    assert (
        main(["data", "codec-audio", "--data", str(songs), "--out", str(out), "--target", "bass"])
        == 0
    )
    stamp = (out / "song_0003" / "others.wav").stat().st_mtime_ns
    assert (
        main(["data", "codec-audio", "--data", str(songs), "--out", str(out), "--target", "bass"])
        == 0
    )
    assert (out / "song_0003" / "others.wav").stat().st_mtime_ns == stamp
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    code = main(
        [
            "data",
            "codec-audio",
            "--data",
            str(songs),
            "--out",
            str(tmp_path / "x"),
            "--target",
            "tuba",
        ]
    )
    assert code == 2
    assert "no song has a stem of tuba" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="at least one target"):
        write_codec_audio(songs, tmp_path / "y", [])


def test_song_without_a_readable_target_is_reported(songs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(songs, data)
    (data / "song_0004" / "bass.wav").write_bytes(b"not audio")
    folders, report = write_codec_audio(data, tmp_path / "codec", ["bass"])
    assert [f.name for f in folders] == ["song_0003"]
    assert sorted(os.listdir(tmp_path / "codec")) == ["song_0003"]
    assert any("song_0004/bass.wav: unreadable" in line for line in report.skipped)
    assert any("song_0004: no readable bass stem" in line for line in report.skipped)
