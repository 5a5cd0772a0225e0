"""The synthetic multitrack generator: determinism, metadata consistency, layout, CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.data.synth import SAMPLE_RATE, midi_hz, synth_dataset, synth_song


def test_same_seed_same_song_other_seed_other_song() -> None:
    a, b, c = synth_song(5, bars=4), synth_song(5, bars=4), synth_song(6, bars=4)
    assert a.metadata() == b.metadata()
    for name in a.stems:
        assert np.array_equal(a.stems[name].audio, b.stems[name].audio)
    assert a.metadata() != c.metadata()


def test_stems_are_aligned_audible_and_vocals_flagged() -> None:
    song = synth_song(1, bars=4, vocals=True)
    total = round(song.seconds * SAMPLE_RATE)
    assert set(song.stems) == {"drums", "bass", "keys", "guitar", "lead", "vocals"}
    for name, stem in song.stems.items():
        assert stem.audio is not None
        assert stem.audio.shape == (total,), name
        assert stem.audio.dtype == np.float32
        assert 0.3 < float(np.abs(stem.audio).max()) <= 1.0, name
        assert np.sqrt(np.mean(stem.audio**2)) > 0.01, name
        assert stem.vocal == (name == "vocals")
        assert stem.notes, name
        assert all(0 <= n.start < n.end <= song.seconds + 1.0 for n in stem.notes), name
    assert "vocals" not in synth_song(1, bars=4, vocals=False).stems


def test_bass_follows_the_chord_roots_in_metadata_and_in_the_audio() -> None:
    for seed in range(4):
        song = synth_song(seed, bars=4)
        bass = song.stems["bass"]
        for note in bass.notes:
            chord = next(c for c in song.chords if c.start <= note.start < c.end)
            assert note.pitch % 12 == chord.root, (seed, note, chord)
        # The audio too: the strongest partial of each bar's bass is a harmonic of its root.
        assert bass.audio is not None
        for chord in song.chords:
            lo, hi = int(chord.start * SAMPLE_RATE), int(chord.end * SAMPLE_RATE)
            segment = bass.audio[lo:hi].astype(np.float64) * np.hanning(hi - lo)
            spectrum = np.abs(np.fft.rfft(segment))
            freqs = np.fft.rfftfreq(hi - lo, 1 / SAMPLE_RATE)
            peak = freqs[np.argmax(spectrum * (freqs < 1000))]
            root = midi_hz(36 + (chord.root - 36) % 12)
            harmonic = peak / root
            assert abs(harmonic - round(harmonic)) < 0.05, (seed, peak, root)


def test_chords_are_diatonic_triads_of_the_key() -> None:
    song = synth_song(2, bars=8)
    scale = {0, 2, 4, 5, 7, 9, 11} if song.mode == "major" else {0, 2, 3, 5, 7, 8, 10}
    for chord in song.chords:
        assert len(chord.pitches) == 3
        assert {(p - song.key) % 12 for p in chord.pitches} <= scale
        assert chord.pitches[0] % 12 == chord.root
        assert chord.quality == (
            "maj" if (chord.pitches[1] - chord.pitches[0]) % 12 == 4 else "min"
        )
    assert song.chords[-1].end == pytest.approx(song.seconds)


def test_dataset_layout_and_cli(tmp_path: Path) -> None:
    out = tmp_path / "songs"
    assert (
        main(["data", "synth", "--songs", "2", "--out", str(out), "--bars", "2", "--seed", "7"])
        == 0
    )
    folders = sorted(out.iterdir())
    assert [f.name for f in folders] == ["song_0007", "song_0008"]
    meta = json.loads((folders[0] / "song.json").read_text())
    assert meta["sample_rate"] == SAMPLE_RATE
    assert meta["seed"] == 7
    for file, info in meta["stems"].items():
        audio, rate = sf.read(folders[0] / file)
        assert rate == SAMPLE_RATE
        assert audio.shape[0] == round(meta["bars"] * 4 * 60 / meta["tempo"] * SAMPLE_RATE)
        assert isinstance(info["vocal"], bool)
        assert info["tags"][0] == info["instrument"]
        assert info["notes"]
    written = (folders[0] / "song.json").stat().st_mtime_ns
    # Resuming keeps finished songs and adds the missing ones.
    assert len(synth_dataset(out, 3, seed=7, bars=2)) == 3
    assert (folders[0] / "song.json").stat().st_mtime_ns == written
    assert (out / "song_0009" / "song.json").is_file()
    assert not any(p.name.startswith(".") for p in out.iterdir())
    # Several processes write the same files as one.
    parallel = tmp_path / "parallel"
    synth_dataset(parallel, 3, seed=7, bars=2, workers=2)
    for folder in folders[:3]:
        for file in sorted(folder.iterdir()):
            assert (parallel / folder.name / file.name).read_bytes() == file.read_bytes()
    with pytest.raises(ValueError, match="workers"):
        synth_dataset(parallel, 1, workers=0)
    with pytest.raises(ValueError, match="bars"):
        synth_song(0, bars=0)
