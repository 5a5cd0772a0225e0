"""``openriff evaluate lengths``: held-out loss in one pass against the training length."""

import json
import shutil
from pathlib import Path

import pytest

from openriff.pipeline.cli import main
from openriff.pipeline.evaluation.lengths import length_ratios, longest_one_pass
from openriff.pipeline.generation.pipeline import AccompanimentPipeline


def test_the_longest_one_pass_stops_at_the_first_multiple_out_of_tolerance() -> None:
    assert longest_one_pass([1, 2, 4, 8], [1.0, 1.01, 1.2, 1.02], 0.05) == 2
    assert longest_one_pass([1, 2, 4], [1.0, 1.04, 1.05], 0.05) == 4
    assert longest_one_pass([1, 2], [1.0, float("nan")], 0.05) == 1


def test_lengths_are_measured_and_recorded(bundle: Path, tmp_path: Path) -> None:
    from openriff.pipeline.data.synth import synth_dataset

    songs = tmp_path / "songs"
    synth_dataset(songs, 2, bars=4, seed=7)  # about 8 s: 4 training windows of 8 frames
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    report = length_ratios(pipeline, songs, multiples=(1, 2, 4), tolerance=0.05)
    assert report.window == 8
    assert report.multiples == [1, 2, 4]
    assert report.ratios[0] == pytest.approx(1.0, abs=1e-6)  # one window is its own pass
    assert all(r > 0 for r in report.ratios)
    assert report.crops == [2, 2, 2]
    assert report.longest == 8 * longest_one_pass(report.multiples, report.ratios, 0.05)
    # The command records it in the bundle, and generation then makes passes that long.
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    loose = ["--multiples", "1,2,4", "--tolerance", "1000", "--record"]  # every length passes
    assert main(["evaluate", "lengths", "--data", str(songs), "--bundle", str(copy), *loose]) == 0
    info = json.loads((copy / "bundle.json").read_text())
    assert info["one_pass_frames"] == 32
    assert info["one_pass_measured"]["multiples"] == [1, 2, 4]
    assert AccompanimentPipeline.from_pretrained(copy).window == 32
    with pytest.raises(ValueError, match="multiples must be >= 1"):
        length_ratios(pipeline, songs, multiples=(0,))
