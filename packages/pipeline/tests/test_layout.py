"""Readers of the multitrack layouts on small generated fixtures."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import moises_song, slakh_track

from openriff.pipeline.cli.data import LAYOUTS, SPLITS
from openriff.pipeline.data import layout
from openriff.pipeline.data.layout import (
    READERS,
    ScanReport,
    load_stems,
    read_generic,
    read_moisesdb,
    read_musdb,
    read_slakh,
    read_songs,
)


def tone(
    path: Path, freq: float, seconds: float = 0.5, rate: int = 48_000, channels: int = 1
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * math.pi * freq * t)
    sf.write(path, np.stack([wave] * channels, axis=1), rate)
    return path


def test_generic_layout_with_and_without_song_json(tmp_path: Path) -> None:
    tone(tmp_path / "a" / "bass.wav", 55)
    tone(tmp_path / "a" / "lead_vocals.wav", 440)
    tone(tmp_path / "b" / "gtr.flac", 220, rate=44_100, channels=2, seconds=0.3)
    tone(tmp_path / "b" / "keys.wav", 330)
    meta = {
        "stems": {
            "gtr.flac": {"instrument": "guitar", "tags": ["guitar", "clean"], "vocal": False},
            "gone.wav": {"instrument": "piano"},
        }
    }
    (tmp_path / "b" / "song.json").write_text(json.dumps(meta))
    tone(tmp_path / "c" / "solo.wav", 100)  # one stem: not a usable song
    songs, report = read_generic(tmp_path)
    assert [s.name for s in songs] == ["a", "b"]
    a, b = songs
    assert {s.name: s.vocal for s in a.stems} == {"bass": False, "lead_vocals": True}
    guitar = next(s for s in b.stems if s.name == "gtr")
    assert (guitar.instrument, guitar.tags) == ("guitar", ("guitar", "clean"))
    assert any("gone.wav: listed in song.json but missing" in line for line in report.skipped)
    assert any("1 usable stem(s)" in line for line in report.skipped)
    assert report.songs == 2
    assert report.stems == 4
    # Loading: 48 kHz mono, aligned and padded to the longest stem.
    waves = load_stems(b)
    assert set(waves) == {"gtr", "keys"}
    assert waves["gtr"].shape == waves["keys"].shape == (24_000,)
    assert np.abs(waves["gtr"][int(0.3 * 48_000) + 10 :]).max() == 0.0  # padded, not stretched


def test_synthetic_songs_read_as_generic(tmp_path: Path) -> None:
    from openriff.pipeline.data.synth import synth_dataset

    synth_dataset(tmp_path, 2, bars=1, seed=3)
    songs, _ = read_generic(tmp_path)
    assert len(songs) == 2
    for song in songs:
        meta = json.loads((song.folder / "song.json").read_text())
        assert {s.name for s in song.stems} == {Path(k).stem for k in meta["stems"]}
        assert all(s.vocal == (s.instrument == "vocals") for s in song.stems)


def test_musdb(tmp_path: Path) -> None:
    for name in ("mixture", "bass", "drums", "other", "vocals"):
        tone(tmp_path / "train" / "Artist - Song" / f"{name}.wav", 100)
    for name in ("mixture", "bass", "drums"):
        tone(tmp_path / "test" / "Other - Song" / f"{name}.wav", 100)
    songs, report = read_musdb(tmp_path)
    assert [s.name for s in songs] == ["test/Other - Song", "train/Artist - Song"]
    assert [s.name for s in songs[1].stems] == ["bass", "drums", "other", "vocals"]
    assert [s.vocal for s in songs[1].stems] == [False, False, False, True]
    assert sum("missing" in line for line in report.skipped) == 2


def test_slakh(tmp_path: Path) -> None:
    track = tmp_path / "train" / "Track00001"
    (track / "stems").mkdir(parents=True)
    (track / "metadata.yaml").write_text(
        "stems:\n"
        "  S00: {inst_class: Bass, midi_program_name: Fingered Bass, audio_rendered: true}\n"
        "  S01: {inst_class: Piano, midi_program_name: Grand Piano, audio_rendered: true}\n"
        "  S02: {inst_class: Guitar, audio_rendered: false}\n"
        "  S03: {inst_class: Strings, audio_rendered: true}\n"
    )
    tone(track / "stems" / "S00.flac", 55)
    tone(track / "stems" / "S01.flac", 262)
    songs, report = read_slakh(tmp_path)
    assert [s.instrument for s in songs[0].stems] == ["bass", "piano"]
    assert songs[0].stems[0].tags == ("bass", "Fingered Bass")
    assert any("S02: not rendered" in line for line in report.skipped)
    assert any("S03: missing" in line for line in report.skipped)


def test_moisesdb(tmp_path: Path) -> None:
    song = tmp_path / "0a1b"
    meta = {
        "song": "Some Song",
        "stems": [
            {
                "stemName": "bass",
                "tracks": [{"id": "t1", "trackType": "bass_guitar", "extension": "wav"}],
            },
            {
                "stemName": "vocals",
                "tracks": [
                    {"id": "t2", "trackType": "lead_female_singer", "extension": "wav"},
                    {"id": "t3", "trackType": "background_vocals", "extension": "wav"},
                ],
            },
            {
                "stemName": "drums",
                "tracks": [{"id": "t4", "trackType": "kick_drum", "extension": "wav"}],
            },
        ],
    }
    song.mkdir()
    (song / "data.json").write_text(json.dumps(meta))
    tone(song / "bass" / "t1.wav", 55)
    tone(song / "vocals" / "t2.wav", 440, seconds=0.5)
    tone(song / "vocals" / "t3.wav", 660, seconds=0.25)
    songs, report = read_moisesdb(tmp_path)
    assert songs[0].name == "0a1b"  # the song's id
    assert [(s.name, s.vocal, len(s.paths)) for s in songs[0].stems] == [
        ("bass", False, 1),
        ("vocals", True, 2),
    ]
    assert any("t4.wav: missing" in line for line in report.skipped)
    vocals = load_stems(songs[0])["vocals"]
    # The stem is the sum of its tracks: both partials are present in the first 0.25 s.
    spectrum = np.abs(np.fft.rfft(vocals[:12_000]))
    assert spectrum[110] > 100  # 440 Hz (4 Hz bins)
    assert spectrum[165] > 100  # 660 Hz


def test_bad_data_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_generic(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable songs"):
        read_generic(tmp_path / "empty")
    tone(tmp_path / "x" / "s1" / "bass.wav", 55)
    (tmp_path / "x" / "s1" / "keys.wav").write_bytes(b"RIFF junk")
    songs, _ = read_generic(tmp_path / "x")
    report = ScanReport()
    waves = load_stems(songs[0], report)
    assert set(waves) == {"bass"}  # skipped, not zero-filled
    assert any("keys.wav: unreadable" in line for line in report.skipped)
    assert set(READERS) == {"generic", "slakh", "musdb", "moisesdb"}

    assert tuple(READERS) == LAYOUTS  # the CLI's copies, kept without importing numpy
    assert SPLITS == layout.SPLITS


def test_moisesdb_songs_with_one_title_stay_two_songs(tmp_path: Path) -> None:
    moises_song(tmp_path / "0a1b", "Intro")
    moises_song(tmp_path / "9f8e", "Intro")
    songs, report = read_moisesdb(tmp_path)
    assert [s.name for s in songs] == ["0a1b", "9f8e"]
    assert report.songs == 2


def test_slakh_official_splits(tmp_path: Path) -> None:
    for split, track in (("train", 1), ("validation", 2), ("test", 3), ("omitted", 4)):
        slakh_track(tmp_path / split / f"Track0000{track}")
    names = {
        split: sorted(s.name for s in read_songs("slakh", tmp_path, split)[0])
        for split in ("train", "validation", "test", None)
    }
    assert names == {
        "train": ["Track00001"], "validation": ["Track00002"], "test": ["Track00003"],
        None: ["Track00001", "Track00002", "Track00003"],
    }  # fmt: skip
    _, report = read_songs("slakh", tmp_path, "train")
    assert "1 songs in omitted/: left out of every official split" in report.skipped
    assert "2 songs of other splits (or of none) left out: train only" in report.skipped
    assert (report.songs, report.stems) == (1, 2)
    # --data pointed at one split's folder: that folder's name is the split.
    assert [s.split for s in read_songs("slakh", tmp_path / "test")[0]] == ["test"]
    with pytest.raises(ValueError, match="no song of the 'train' split"):
        read_songs("slakh", tmp_path / "test", "train")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        read_songs("slakh", tmp_path, "dev")


def test_musdb_official_splits(tmp_path: Path) -> None:
    for folder in ("train/Actions - One Minute Smile", "train/Artist - Song", "test/Other - Song"):
        for name in ("mixture", "bass", "drums"):
            tone(tmp_path / folder / f"{name}.wav", 100)
    names = {
        split: [s.name for s in read_songs("musdb", tmp_path, split)[0]]
        for split in ("train", "validation", "test")
    }
    assert names == {
        "train": ["train/Artist - Song"],
        "validation": ["train/Actions - One Minute Smile"],  # musdb's validation songs
        "test": ["test/Other - Song"],
    }
    assert len(layout.MUSDB_VALIDATION) == 14
    # --data pointed at train/: its songs are train songs, never test songs.
    with pytest.raises(ValueError, match="no song of the 'test' split"):
        read_songs("musdb", tmp_path / "train", "test")
    # Without split folders a tree is used whole, and the report says so.
    for name in ("mixture", "bass", "drums"):
        tone(tmp_path / "mine" / "A - B" / f"{name}.wav", 100)
    flat, report = read_songs("musdb", tmp_path / "mine", "test")
    assert [s.name for s in flat] == ["A - B"]
    assert any("no official split folders" in line for line in report.skipped)
    # Layouts without official splits ignore the split.
    tone(tmp_path / "g" / "a" / "bass.wav", 55)
    tone(tmp_path / "g" / "a" / "keys.wav", 220)
    assert [s.name for s in read_songs("generic", tmp_path / "g", "test")[0]] == ["a"]
