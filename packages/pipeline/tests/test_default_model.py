"""The default model shipped in the package: what it is made of and that it accompanies.

These tests read the real shipped bundle (``openriff/pipeline/default_bundle``), not a
tiny one made for the test, so they fail when it is missing, over budget, out of step
with the default recipe, or no longer follows a context's beat.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from openriff.cae import PRESETS
from openriff.cae.config import to_dict
from openriff.pipeline.bundle import DEFAULT_BUNDLE, default_bundle
from openriff.pipeline.cli.demo import demo_context
from openriff.pipeline.evaluation.adherence import harmonic_fit, rhythmic_fit
from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.train.recipe import load_recipe

RATE = 48_000


def test_default_bundle_is_shipped_within_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENRIFF_BUNDLE", raising=False)
    assert default_bundle() == DEFAULT_BUNDLE
    files = [p for p in DEFAULT_BUNDLE.rglob("*") if p.is_file()]
    recipe = load_recipe()
    megabytes = sum(p.stat().st_size for p in files) / 2**20
    assert 0 < megabytes <= recipe["max_bundle_megabytes"] <= 50
    # Weights only as safetensors: nothing in the bundle is unpickled.
    assert not [p for p in files if p.suffix in {".pt", ".pth", ".bin", ".ckpt", ".pkl"}]
    assert any(p.suffix == ".safetensors" for p in files)


def test_default_bundle_is_the_default_recipe() -> None:
    recipe = load_recipe()
    assert json.loads((DEFAULT_BUNDLE / "recipe.json").read_text()) == recipe
    info = json.loads((DEFAULT_BUNDLE / "bundle.json").read_text())
    assert info["sampling"] == recipe["sampling"]
    trained = info["provenance"]["train"]
    for key, value in recipe["ldm"]["settings"].items():
        if key != "checkpoint_every":
            assert trained[key] == value, key
    assert info["provenance"]["model_preset"] == recipe["ldm"]["preset"]
    prepared = info["provenance"]["prepare"]["config"]
    assert prepared["pairs"]["targets"] == recipe["prepare"]["targets"]
    # The log of the run that made it: every stage finished, with its command and time.
    log = json.loads((DEFAULT_BUNDLE / "recipe-log.json").read_text())
    finished = {s["stage"] for run in log["runs"] for s in run["stages"] if s["seconds"]}
    assert finished == {"data", "codec-audio", "codec", "prepare", "ldm"}
    codec = [s for run in log["runs"] for s in run["stages"] if s["stage"] == "codec"]
    steps = codec[-1]["command"][codec[-1]["command"].index("--steps") + 1]
    assert int(steps) == recipe["codec"]["steps"]
    # The codec is the recipe's preset, as trained (config stored with the weights).
    codec_config = json.loads((DEFAULT_BUNDLE / "codec" / "config.json").read_text())
    kind, preset = PRESETS[recipe["codec"]["preset"]]
    assert codec_config["model"] == kind
    assert codec_config["config"] == json.loads(json.dumps(to_dict(preset)))


@pytest.mark.slow
def test_default_model_accompanies_a_held_out_song() -> None:
    pipeline = AccompanimentPipeline.from_pretrained(DEFAULT_BUNDLE)
    context, song = demo_context(1_000_000, bars=2)  # the demo's song, never trained on
    out = pipeline.generate(context, seed=0, stereo_width=0.0)
    assert out.settings["cfg_context"] == pipeline.model.sampling["cfg_context"]
    stem = out.audio[0].mean(0)  # (S,)
    assert out.audio.shape[-1] == context.shape[-1]
    assert np.isfinite(stem).all()
    assert float(np.sqrt(np.mean(stem**2))) > 0.01
    # Random onsets land on the sixteenth grid 25 % of the time; another song's bass, on
    # held-out songs, 21 % (the evaluation's reference row).
    assert rhythmic_fit(stem, RATE, song.tempo) > 0.6
    # Its notes belong to the context's chords (measured 0.56 on these 2 bars); another
    # song's bass scores 0.27 on held-out songs, the song's own bass 0.96.
    chords = [asdict(chord) for chord in song.chords]
    assert harmonic_fit(stem, RATE, chords) > 0.45
