"""``openriff evaluate dataset`` on tiny trees of the four layouts, and at two levels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from openriff.pipeline.cli import main
from openriff.pipeline.data.synth import SynthSong, synth_song
from openriff.pipeline.evaluation.dataset import DatasetEvaluation, dataset_excerpts
from openriff.pipeline.evaluation.scoring import SOURCES

RATE = 48_000


@pytest.fixture(scope="module")
def songs() -> list[SynthSong]:
    return [synth_song(seed, bars=2, vocals=False) for seed in (2_000_000, 2_000_001)]


def write(path: Path, wave: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, RATE, subtype="FLOAT" if path.suffix == ".wav" else "PCM_24")


def others(song: SynthSong) -> dict[str, np.ndarray]:
    return {name: s.audio for name, s in song.stems.items() if name != "bass"}


def as_layout(layout: str, songs: list[SynthSong], root: Path) -> Path:
    """The songs written in ``layout`` (bass as the bass stem, the rest as other stems)."""
    for i, song in enumerate(songs):
        bass = song.stems["bass"].audio
        if layout == "generic":
            folder = root / f"song{i}"
            write(folder / "bass.wav", bass)
            for name, wave in others(song).items():
                write(folder / f"{name}.wav", wave)
            (folder / "song.json").write_text(json.dumps(song.metadata()))
        elif layout == "musdb":
            folder = root / "test" / f"Artist - Song {i}"
            write(folder / "bass.wav", bass)
            write(folder / "other.wav", sum(others(song).values()))
            write(folder / "mixture.wav", bass + sum(others(song).values()))
        elif layout == "slakh":
            folder = root / "test" / f"Track0000{i}"
            lines = ["stems:"]
            for k, (name, wave) in enumerate({"bass": bass, **others(song)}.items()):
                inst = "Bass" if name == "bass" else "Piano"
                lines.append(f"  S0{k}: {{inst_class: {inst}, audio_rendered: true}}")
                write(folder / "stems" / f"S0{k}.flac", wave)
            (folder / "metadata.yaml").write_text("\n".join(lines) + "\n")
        else:  # moisesdb
            folder = root / f"id{i}"
            tracks: dict[str, list[dict[str, str]]] = {"bass": [], "other": []}
            for k, (name, wave) in enumerate({"bass": bass, **others(song)}.items()):
                stem = "bass" if name == "bass" else "other"  # the rest: one stem of 3 tracks
                tracks[stem].append({"id": f"t{k}", "trackType": name, "extension": "wav"})
                write(folder / stem / f"t{k}.wav", wave)
            stems = [{"stemName": name, "tracks": t} for name, t in tracks.items()]
            (folder / "data.json").write_text(json.dumps({"song": f"Song {i}", "stems": stems}))
    return root


@pytest.mark.parametrize("layout", ["generic", "musdb", "slakh", "moisesdb"])
def test_every_layout_gives_the_songs_excerpts(
    layout: str, songs: list[SynthSong], tmp_path: Path
) -> None:
    root = as_layout(layout, songs, tmp_path)
    config = DatasetEvaluation(data=root, layout=layout, seconds=3.0)
    excerpts, report = dataset_excerpts(config)
    assert len(excerpts) == 2, report.summary()
    for excerpt, song in zip(excerpts, songs, strict=True):
        bass = song.stems["bass"].audio
        context = sum(others(song).values())
        # The excerpt is where both sound, on a 1 s grid, and is the song's own audio.
        starts = range(0, len(bass) - len(excerpt.true) + 1, RATE)
        errors = [np.abs(bass[s : s + len(excerpt.true)] - excerpt.true).max() for s in starts]
        start = starts[int(np.argmin(errors))]
        assert len(excerpt.true) == 3 * RATE
        np.testing.assert_allclose(excerpt.true, bass[start : start + 3 * RATE], atol=1e-4)
        np.testing.assert_allclose(excerpt.context, context[start : start + 3 * RATE], atol=1e-3)
        # Only the generic layout's song.json says the chords and tempo.
        assert (excerpt.chords is not None) == (layout == "generic")
        if layout == "generic":
            assert excerpt.tempo == song.tempo
            period = 60.0 / song.tempo
            assert (start / RATE + excerpt.beat_offset) % period == pytest.approx(0.0, abs=1e-6)


def test_songs_without_the_target_are_skipped_with_a_reason(
    songs: list[SynthSong], tmp_path: Path
) -> None:
    root = as_layout("generic", songs, tmp_path)
    excerpts, report = dataset_excerpts(DatasetEvaluation(data=root, target="cello"))
    assert excerpts == []
    assert sum("no 'cello' stem" in line for line in report.skipped) == 2
    with pytest.raises(ValueError, match="songs must be >= 2"):
        DatasetEvaluation(data=root, songs=1)
    with pytest.raises(ValueError, match="unknown layout"):
        DatasetEvaluation(data=root, layout="stems")


def test_evaluate_dataset_cli_reports_every_source(
    bundle: Path, songs: list[SynthSong], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = as_layout("musdb", songs, tmp_path / "musdb")
    out = tmp_path / "report.json"
    args = [
        "evaluate", "dataset", "--data", str(root), "--layout", "musdb", "--bundle", str(bundle),
        "--seconds", "3", "--steps", "2", "--json", str(out), "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "random notes" in printed
    assert "(musdb)" in printed
    report = json.loads(out.read_text())
    assert len(report["songs"]) == 2
    for row in report["songs"]:
        assert set(SOURCES) <= set(row)
        # The true stem fits its own context better than another song's does.
        assert row["true"]["harmonic_fit"] >= row["other"]["harmonic_fit"]
        assert row["generated"]["clipped"] == 0
    margin = report["margins"]["harmonic_fit"]
    lo, hi = margin["ci95"]
    assert lo <= margin["mean"] <= hi
    assert 0 <= margin["wins"] <= 2
    # No chords in a MUSDB tree: the chord fit is not reported.
    assert report["summary"]["chord_fit"]["generated"]["n"] == 0
    # An existing report is not replaced without --overwrite; a missing folder is refused.
    assert main(args) == 2
    assert main([*args[:3], str(tmp_path / "nowhere"), *args[4:-3]]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_same_fit_and_level_whether_the_context_is_quiet_or_loud(
    bundle: Path, songs: list[SynthSong], tmp_path: Path
) -> None:
    from openriff.pipeline.evaluation.dataset import evaluate_dataset
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

    root = as_layout("generic", songs, tmp_path)
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    reports = {
        db: evaluate_dataset(
            pipeline, DatasetEvaluation(data=root, seconds=3.0, steps=2, context_dbfs=db)
        )
        for db in (-30.0, -10.0)
    }
    quiet, loud = (reports[db]["songs"] for db in (-30.0, -10.0))
    for a, b in zip(quiet, loud, strict=True):
        assert a["context_lufs"] == pytest.approx(b["context_lufs"] - 20.0, abs=0.1)
        for name in ("harmonic_fit", "rhythmic_fit", "chord_fit", "grid_fit"):
            assert a["generated"][name] == pytest.approx(b["generated"][name], abs=0.05)
        # The stem follows the context's level, at the bundle's ratio.
        assert abs(a["level_error_db"]) <= 3.0
        assert abs(b["level_error_db"]) <= 3.0
