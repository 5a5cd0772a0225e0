"""``openriff data render``: MIDI files the test writes, rendered with FluidSynth.

Needs the fluidsynth program and a General MIDI SoundFont (Debian: ``apt-get install
fluidsynth fluid-soundfont-gm``; ``.ci/run`` installs them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.data.layout import read_generic
from openriff.pipeline.data.render import (
    PEAK,
    RenderConfig,
    class_programs,
    program_class,
    render_dataset,
)
from openriff.pipeline.evaluation.measures import onset_times, voiced_pitches

RATE = 48_000
BEAT = 0.6  # 100 bpm
BASS = [(36, 0.0), (43, 1.2), (41, 2.4), (38, 3.6)]  # (pitch, start): half notes


def song_midi(path: Path, *, drums: bool = True, piano: bool = True) -> Path:
    midi = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    midi.key_signature_changes.append(pretty_midi.KeySignature(0, 0.0))  # C major
    bass = pretty_midi.Instrument(program=33, name="bass")
    for pitch, start in BASS:
        bass.notes.append(pretty_midi.Note(100, pitch, start, start + 2 * BEAT - 0.05))
    midi.instruments.append(bass)
    if piano:
        keys = pretty_midi.Instrument(program=0, name="piano")
        for k, chord in enumerate([(60, 64, 67), (67, 71, 74), (65, 69, 72), (62, 65, 69)]):
            for pitch in chord:
                keys.notes.append(pretty_midi.Note(80, pitch, 2 * k * BEAT, (2 * k + 2) * BEAT))
        midi.instruments.append(keys)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        for beat in range(8):
            kit.notes.append(pretty_midi.Note(110, 36 if beat % 2 == 0 else 38,
                                              beat * BEAT, beat * BEAT + 0.1))  # fmt: skip
        midi.instruments.append(kit)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def test_program_classes_follow_general_midi() -> None:
    assert program_class(33) == "bass"
    assert program_class(0) == "piano"
    assert program_class(42) == "strings"
    assert program_class(49) == "strings"
    assert program_class(53) == "voice"
    assert program_class(10, is_drum=True) == "drums"
    assert class_programs("bass") == list(range(32, 40))
    assert class_programs("woodwinds") == list(range(64, 80))
    with pytest.raises(ValueError, match="program must be in"):
        program_class(128)


def test_notes_land_in_the_right_stem_at_the_right_time_and_pitch(tmp_path: Path) -> None:
    song_midi(tmp_path / "midi" / "one.mid")
    (tmp_path / "midi" / "broken.mid").write_bytes(b"MThd not really a MIDI file")
    song_midi(tmp_path / "midi" / "solo.mid", drums=False, piano=False)  # one class only
    report = render_dataset(tmp_path / "midi", tmp_path / "songs", RenderConfig(), seed=1)
    assert [p.name for p in report.written] == ["song_00001_one"]
    assert any("broken.mid: not a readable MIDI file" in line for line in report.skipped)
    assert any("solo.mid: 1 instrument class(es) with notes, need 2" in line
               for line in report.skipped)  # fmt: skip
    folder = report.written[0]
    meta = json.loads((folder / "song.json").read_text())
    assert set(meta["stems"]) == {"bass.wav", "piano.wav", "drums.wav"}
    assert meta["tempo"] == pytest.approx(100.0)
    assert meta["time_signatures"] == [[0.0, 4, 4]]
    assert meta["key"] == "C Major"
    bass_meta = meta["stems"]["bass.wav"]
    assert 32 <= bass_meta["program"] <= 39  # a random bass of the family
    assert [n["pitch"] for n in bass_meta["notes"]] == [p for p, _ in BASS]
    stems = {name: sf.read(folder / name, dtype="float32")[0].T for name in meta["stems"]}
    assert all(wave.shape[0] == 2 for wave in stems.values())  # FluidSynth's stereo
    mix = sum(stems.values())
    assert max(float(np.abs(w).max()) for w in [*stems.values(), mix]) <= PEAK + 1e-4
    # The bass: an onset at each note's start, each note at its pitch, in tune.
    bass = stems["bass.wav"]
    found = onset_times(bass, RATE)
    for _, start in BASS:
        assert np.abs(found - start).min() < 0.05
    for pitch, start in BASS:
        note = bass[:, round((start + 0.3) * RATE) : round((start + 1.0) * RATE)]
        heard = voiced_pitches(note, RATE, fmax=200.0)
        assert np.median(heard) == pytest.approx(pitch, abs=0.1)
    # Drums only in the drum stem: it sounds on every beat, the piano starts with its chord.
    drums = stems["drums.wav"].mean(0)
    for beat in range(8):
        hit = drums[round(beat * BEAT * RATE) : round((beat * BEAT + 0.1) * RATE)]
        assert np.sqrt(np.mean(hit**2)) > 1e-3
    assert np.abs(found - BEAT).min() > 0.1  # no onset in the bass on an odd beat
    # The generic reader takes the song as it is.
    songs, _ = read_generic(tmp_path / "songs")
    assert {s.instrument for s in songs[0].stems} == {"bass", "piano", "drums"}


def test_render_resumes_with_the_same_programs_and_the_cli_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        song_midi(tmp_path / "midi" / f"{name}.mid", drums=False)
    args = ["data", "render", "--midi", str(tmp_path / "midi"), "--out", str(tmp_path / "out")]
    assert main([*args, "--songs", "2", "--seed", "5"]) == 0
    assert "2 songs rendered, 0 kept from before, 0 files skipped" in capsys.readouterr().out
    first = json.loads((tmp_path / "out" / "song_00000_a" / "song.json").read_text())
    assert main([*args, "--seed", "5"]) == 0
    assert "1 songs rendered, 2 kept from before" in capsys.readouterr().out
    again = render_dataset(tmp_path / "midi", tmp_path / "again", RenderConfig(), seed=5)
    replay = json.loads((again.written[0] / "song.json").read_text())
    assert replay["stems"]["bass.wav"]["program"] == first["stems"]["bass.wav"]["program"]
    # Bad input: one line, exit 2, nothing written.
    assert (
        main(["data", "render", "--midi", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
        == 2
    )
    assert main([*args, "--soundfont", str(tmp_path / "missing.sf2")]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err
    assert "missing.sf2 not found" in err
    assert not (tmp_path / "x").exists()


def test_the_corpus_export_arranges_pieces_and_never_gives_bach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openriff.pipeline.data.corpus import (
        BASS_LOW,
        BASS_PROGRAM,
        COLLECTIONS,
        corpus_pieces,
        piece_name,
        piece_split,
    )

    every = corpus_pieces(COLLECTIONS)
    assert len(every) > 100
    assert not any("bach" in piece_name(p).split("/")[0] for p in every)
    train = corpus_pieces(COLLECTIONS, split="train")
    held = corpus_pieces(COLLECTIONS, split="validation")
    assert not set(train) & set(held)
    assert set(train) | set(held) == set(every)
    assert 0.1 < len(held) / len(every) < 0.3
    assert piece_split("haydn/opus1no1/movement1") == piece_split("haydn/opus1no1/movement1")
    with pytest.raises(ValueError, match="reserved for independent evaluation"):
        corpus_pieces(["bach"])
    args = ["data", "corpus", "--out", str(tmp_path / "midi"), "--collection", "haydn"]
    assert main([*args, "--pieces", "1"]) == 0
    assert "1 pieces exported" in capsys.readouterr().out
    (file,) = (tmp_path / "midi").rglob("*.mid")
    midi = pretty_midi.PrettyMIDI(str(file))
    bass = [i for i in midi.instruments if i.program == BASS_PROGRAM]
    assert len(bass) == 1
    assert len(midi.instruments) == 4  # a string quartet: cello as the bass, three upper parts
    assert BASS_LOW <= np.median([n.pitch for n in bass[0].notes]) < BASS_LOW + 12
    assert main(["data", "corpus", "--out", str(tmp_path / "x"), "--collection", "bach"]) == 2
    assert "reserved for independent evaluation" in capsys.readouterr().err
    # One file per piece, even where the corpus has it in two encodings.
    assert len({piece_name(p) for p in every}) == len(every)


def test_an_opus_is_skipped_whole_and_temporary_files_are_not_pieces(tmp_path: Path) -> None:
    """music21 writes an opus as one MIDI file per score beside the one asked for: those
    files once leaked into the export as dot files that the renderer then tried to render."""
    from openriff.pipeline.data.corpus import corpus_pieces, export_piece, piece_name
    from openriff.pipeline.data.render import midi_files

    (opus,) = [p for p in corpus_pieces(["josquin"]) if piece_name(p) == "josquin/laPlusDesPlus"]
    with pytest.raises(ValueError, match="an opus of 3 scores"):
        export_piece(opus, tmp_path / "midi" / "josquin" / "laPlusDesPlus.mid")
    assert list(tmp_path.rglob("*")) == []
    piece = song_midi(tmp_path / "midi" / "a.mid")
    song_midi(tmp_path / "midi" / ".a.mid.x1y2-1.mid")  # another writer's temporary file
    assert midi_files(tmp_path / "midi") == [piece]


def test_a_resumed_corpus_export_does_not_parse_skipped_pieces_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openriff.pipeline.data import corpus

    out = tmp_path / "midi"
    first = corpus.export_corpus(out, ["josquin"], pieces=1)  # all 8 pieces are opuses
    skipped = [line.split(":")[0] for line in first.skipped]
    assert "josquin/4vPerIlludAveProlatum" in skipped
    assert first.written == []
    known = json.loads((out / corpus.SKIPPED).read_text())
    assert sorted(known) == sorted(skipped)
    assert all("an opus of" in reason for reason in known.values())

    def parse_again(*args: object) -> Path:
        raise AssertionError("a skipped piece was parsed again")

    monkeypatch.setattr(corpus, "export_piece", parse_again)
    again = corpus.export_corpus(out, ["josquin"], pieces=1)
    assert all(line.endswith("(skipped before)") for line in again.skipped)
    assert len(again.skipped) == len(first.skipped)
    assert again.written == again.kept == []
    (out / corpus.SKIPPED).write_text("[not, json")  # a damaged list is started afresh
    monkeypatch.undo()
    third = corpus.export_corpus(out, ["josquin"], pieces=1)
    assert third.skipped == first.skipped
    assert json.loads((out / corpus.SKIPPED).read_text()) == known


def test_a_cut_that_leaves_a_zero_length_note_still_renders(tmp_path: Path) -> None:
    """Cutting at --max-seconds can leave a note a few microseconds long as the file's last
    event; on a sustained instrument FluidSynth's file renderer then never ends."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    pad = pretty_midi.Instrument(program=48, name="strings")
    pad.notes += [pretty_midi.Note(60, 72, 0.0, 2.0), pretty_midi.Note(60, 76, 2.0, 4.0)]
    bass = pretty_midi.Instrument(program=33, name="bass")
    bass.notes += [pretty_midi.Note(90, 36, 0.0, 1.0), pretty_midi.Note(90, 43, 1.0, 2.0)]
    midi.instruments += [pad, bass]
    (tmp_path / "midi").mkdir()
    midi.write(str(tmp_path / "midi" / "cut.mid"))
    config = RenderConfig(max_seconds=2.0 + 2e-6)
    report = render_dataset(tmp_path / "midi", tmp_path / "songs", config)
    assert report.skipped == []
    meta = json.loads((report.written[0] / "song.json").read_text())
    assert [n["pitch"] for n in meta["stems"]["strings.wav"]["notes"]] == [72]
    strings, _ = sf.read(report.written[0] / "strings.wav")
    assert len(strings) <= round((2.0 + 3.5) * RATE)  # the song and its release tail
