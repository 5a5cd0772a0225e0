"""The synthetic multitrack generator: determinism, metadata consistency, layout, CLI."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.cli.data import STYLES as CLI_STYLES
from openriff.pipeline.data.music import MODES, STYLES, SynthStyle
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
        # Peaks of 0.6-0.8 by instrument, lowered by up to 12 dB (the wide style's spread).
        assert 0.6 * 10 ** (-12 / 20) - 1e-6 < float(np.abs(stem.audio).max()) <= 0.8, name
        assert np.sqrt(np.mean(stem.audio**2)) > 0.01, name
        assert stem.vocal == (name == "vocals")
        assert stem.notes, name
        assert all(0 <= n.start < n.end <= song.seconds + 1.0 for n in stem.notes), name
    assert "vocals" not in synth_song(1, bars=4, vocals=False).stems


def test_classic_bass_follows_the_chord_roots_in_metadata_and_in_the_audio() -> None:
    for seed in range(4):
        song = synth_song(seed, bars=4, style="classic")
        assert song.meter.quarters == 4
        assert 80 <= song.tempo <= 140
        assert song.mode in ("major", "minor")
        assert "drums" in song.stems
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
    qualities = set()
    for seed in range(8):
        song = synth_song(seed, bars=8)
        scale = set(MODES[song.mode])
        for chord in song.chords:
            assert len(chord.pitches) == 3
            assert {(p - song.key) % 12 for p in chord.pitches} <= scale
            assert chord.pitches[0] % 12 == chord.root
            third, fifth = ((p - chord.pitches[0]) % 12 for p in chord.pitches[1:])
            assert chord.quality == {(4, 7): "maj", (3, 7): "min", (3, 6): "dim"}[third, fifth]
            qualities.add(chord.quality)
        assert song.chords[-1].end == pytest.approx(song.seconds)
        starts = [c.start for c in song.chords]
        assert starts == sorted(starts)
        assert starts[0] == 0.0
    assert qualities >= {"maj", "min"}


def _songs(count: int, bars: int = 4) -> list:
    return [synth_song(seed, bars=bars, vocals=False) for seed in range(100, 100 + count)]


def test_wide_style_draws_tempi_metres_modes_keys_and_drumless_music() -> None:
    songs = _songs(48, bars=2)
    tempi = [s.tempo for s in songs]
    assert 60 <= min(tempi) < 75
    assert 185 < max(tempi) <= 200
    assert {str(s.meter) for s in songs} == {"4/4", "3/4", "6/8"}
    assert len({s.mode for s in songs}) >= 5
    assert len({s.key for s in songs}) >= 10
    without = [s for s in songs if "drums" not in s.stems]
    assert 2 <= len(without) <= 16  # 15 % of the songs
    for song in songs:
        total = round(song.seconds * SAMPLE_RATE)
        assert song.seconds == pytest.approx(song.bars * song.meter.quarters * 60 / song.tempo)
        assert all(
            stem.audio is not None and stem.audio.shape == (total,) for stem in song.stems.values()
        )
        meta = song.metadata()
        assert meta["time_signature"] == str(song.meter)
        assert meta["style"] == "wide"
        assert meta["beats_per_bar"] == song.meter.quarters
    # Drums rest in some two-bar sections of longer songs, never in all of them.
    breaks = 0
    for song in _songs(12, bars=8):
        if "drums" not in song.stems:
            continue
        section = 2 * song.bar_seconds
        busy = {int(n.start / section + 1e-9) for n in song.stems["drums"].notes}
        assert busy
        breaks += 4 - len(busy)
    assert breaks >= 1


def test_wide_bass_has_inversions_passing_notes_rests_and_dynamics() -> None:
    inverted = approaches = off_chord = rests = 0
    velocities: list[float] = []
    for song in _songs(24, bars=4):
        scale = {(song.key + i) % 12 for i in MODES[song.mode]}
        notes = song.stems["bass"].notes
        quarter = 60 / song.tempo
        assert all(24 <= n.pitch <= 60 for n in notes)
        assert all(n.pitch % 12 in scale for n in notes)  # every bass note is in the mode
        for chord, following in zip(song.chords, [*song.chords[1:], None], strict=False):
            first = next(n for n in notes if n.start >= chord.start - 1e-9)
            # Each chord starts on its bass note: the root, or the third or fifth (inverted).
            assert first.start == pytest.approx(chord.start)
            assert first.pitch % 12 == chord.bass
            inverted += chord.inversion > 0
            inside = [n for n in notes if chord.start <= n.start < chord.end - 1e-9]
            approach = None
            if following is not None:
                target = _next_pitch(notes, chord.end)
                last = inside[-1]
                if (
                    chord.end - last.start == pytest.approx(quarter / 2)
                    and 1 <= abs(last.pitch - target) <= 2
                    and last.pitch % 12 != chord.bass
                ):
                    approach = last  # a scale step into the next chord's bass note
                    approaches += 1
            for note in inside:
                if note.pitch % 12 not in {p % 12 for p in chord.pitches}:
                    assert note is approach, (song.seed, note)  # off the chord: passing only
                    off_chord += 1
        gaps = [b.start - a.end for a, b in itertools.pairwise(notes)]
        rests += sum(g > 0.9 * quarter for g in gaps)
        velocities += [n.velocity for n in notes]
    # Measured: 17 inverted chords, 20 approaches (5 of them off the chord), 8 rests.
    counts = (inverted, approaches, off_chord, rests)
    assert min(counts[0], counts[1]) >= 10, counts
    assert off_chord >= 4, counts
    assert rests >= 5, counts
    assert np.std(velocities) > 0.08
    assert 0 < min(velocities) < max(velocities) <= 1


def _next_pitch(notes: list, at: float) -> int:
    return next(n.pitch for n in notes if n.start >= at - 1e-9)


def test_wide_stems_sit_at_different_levels() -> None:
    spreads = []
    for song in _songs(12, bars=2):
        peaks = [float(np.abs(s.audio).max()) for s in song.stems.values() if s.audio is not None]
        assert max(peaks) <= 0.8 + 1e-6
        spreads.append(20 * np.log10(max(peaks) / min(peaks)))
    classic = synth_song(100, bars=2, style="classic")
    peaks = [float(np.abs(s.audio).max()) for s in classic.stems.values() if s.audio is not None]
    # Each instrument at its usual peak (0.6 to 0.8).
    assert 20 * np.log10(max(peaks) / min(peaks)) == pytest.approx(20 * np.log10(0.8 / 0.6))
    assert np.median(spreads) > 6.0


def test_wide_bass_sounds_at_its_written_pitches() -> None:
    for song in _songs(6, bars=2):
        bass = song.stems["bass"]
        assert bass.audio is not None
        for note in bass.notes:
            lo, hi = int(note.start * SAMPLE_RATE), int(note.end * SAMPLE_RATE)
            if hi - lo < SAMPLE_RATE // 8:
                continue
            segment = bass.audio[lo:hi].astype(np.float64) * np.hanning(hi - lo)
            spectrum = np.abs(np.fft.rfft(segment, 1 << 16))
            freqs = np.fft.rfftfreq(1 << 16, 1 / SAMPLE_RATE)
            peak = freqs[np.argmax(spectrum * (freqs < 1000))]
            harmonic = peak / midi_hz(note.pitch)
            assert abs(harmonic - round(harmonic)) < 0.05, (song.seed, note, peak)


def test_styles_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown style 'loud'"):
        synth_song(0, style="loud")
    with pytest.raises(ValueError, match="meters must weigh known names"):
        SynthStyle(meters=(("5/4", 1.0),))
    with pytest.raises(ValueError, match="tempo range"):
        SynthStyle(tempo=(120, 60))
    with pytest.raises(ValueError, match="rest must be a share"):
        SynthStyle(rest=1.5)
    assert set(STYLES) == {"wide", "classic"} == set(CLI_STYLES)
    assert main(["data", "synth", "--songs", "1", "--out", "x", "--style", "loud"]) == 2
    assert "argument --style: invalid choice: 'loud'" in capsys.readouterr().err


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
        bar = meta["beats_per_bar"] * 60 / meta["tempo"]
        assert audio.shape[0] == round(meta["bars"] * bar * SAMPLE_RATE)
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


def test_a_resumed_synth_removes_the_half_written_songs_of_a_killed_run(tmp_path: Path) -> None:
    from openriff.pipeline.data.synth import synth_dataset

    stale = tmp_path / ".song_0000.k1ll3d00"
    stale.mkdir(parents=True)
    (stale / "bass.wav").write_bytes(b"half")
    keep = tmp_path / ".notes"
    keep.mkdir()
    synth_dataset(tmp_path, 1, bars=1)
    assert not stale.exists()
    assert keep.is_dir()  # only the writer's own temporaries go
    assert (tmp_path / "song_0000" / "song.json").is_file()
