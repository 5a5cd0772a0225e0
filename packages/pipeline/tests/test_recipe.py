"""The default-model recipe, shrunk with ``--set``: every stage runs, resumes, and leaves a
slim bundle that generates."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from openriff.pipeline.cli import main
from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.train.recipe import DEFAULT_RECIPE, check_recipe, load_recipe

SMALL = {
    "data.songs": 3, "data.bars": 2, "codec.steps": 2, "codec.batch_size": 2,
    "codec.warmup_steps": 1, "prepare.window_latents": 8, "prepare.hop_seconds": 0.5,
    "prepare.validation": 0, "ldm.preset": "tiny-unet", "ldm.settings.steps": 2,
    "ldm.settings.batch_size": 2, "ldm.settings.warmup_steps": 1,
    "ldm.settings.checkpoint_every": 2,
    "prepare.context_chroma": True,  # off in the default recipe; on here to cover its path
}  # fmt: skip


def sets() -> list[str]:
    return [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def test_default_recipe_is_complete() -> None:
    recipe = load_recipe()
    assert recipe["prepare"]["targets"] == ["bass"]
    assert recipe["prepare"]["context_chroma"] is False
    assert recipe["ldm"]["preset"] == "small-unet"
    # Noise levels drawn higher than EDM's default: the bass's pitch is chosen from the
    # context at high noise levels (see the pipeline README's training recipe).
    assert recipe["ldm"]["settings"]["p_mean"] > -1.2
    assert recipe["max_bundle_megabytes"] == 50
    # Stronger context guidance than the library's default 1.25, as measured.
    assert recipe["sampling"]["cfg_context"] > 1.25
    assert DEFAULT_RECIPE.is_file()
    with pytest.raises(ValueError, match="cfg_context"):
        load_recipe(overrides={"sampling.cfg_context": 50.0})
    # Sampled in one pass up to 256 frames (21.8 s), as evaluated on held-out songs.
    assert recipe["one_pass_frames"] == 256
    with pytest.raises(ValueError, match="one_pass_frames must be >= 1"):
        load_recipe(overrides={"one_pass_frames": 0})
    with pytest.raises(ValueError, match="min_steps must be a whole number"):
        check_recipe({**recipe, "min_steps": 2.5}, "recipe")
    with pytest.raises(ValueError, match="no setting 'stepz'"):
        load_recipe(overrides={"codec.stepz": 1})
    with pytest.raises(ValueError, match="not a section"):
        load_recipe(overrides={"nothing.steps": 1})


def test_recipe_runs_resumes_and_slims(tmp_path: Path) -> None:
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    args = ["train", "recipe", "--run", str(run), "--install", str(bundle), *sets(), "--quiet"]
    assert main(args) == 0
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert files == [
        "bundle.json", "codec/config.json", "codec/model.safetensors", "denoiser/config.json",
        "denoiser/model.safetensors", "recipe-log.json", "recipe.json",
    ]  # fmt: skip
    # The shipped weights are the EMA weights of both runs.
    for shipped, trained in (
        (bundle / "codec", run / "codec" / "final"),
        (bundle / "denoiser", run / "ldm" / "final"),
    ):
        a = load_file(str(shipped / "model.safetensors"))
        b = load_file(str(trained / "ema.safetensors"))
        assert a.keys() == b.keys()
        assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    log = json.loads((bundle / "recipe-log.json").read_text())
    stages = log["runs"][0]["stages"]
    assert [s["stage"] for s in stages] == ["data", "codec-audio", "codec", "prepare", "ldm"]
    assert stages[3]["command"][:2] == ["openriff", "prepare"]
    assert "--target" in stages[3]["command"]
    assert "--context-chroma" in stages[3]["command"]
    # The codec trained on the bass stems and the mixes of the other stems only.
    assert stages[2]["command"][stages[2]["command"].index("--data") + 1] == str(
        run / "codec-audio"
    )
    assert sorted(os.listdir(run / "codec-audio" / "song_0000")) == ["bass.wav", "others.wav"]
    assert log["runs"][0]["hardware"]["cpu_count"] >= 1
    recorded = json.loads((bundle / "recipe.json").read_text())
    assert recorded["codec"]["steps"] == 2
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["provenance"]["prepare"]["config"]["pairs"]["targets"] == ["bass"]
    assert info["provenance"]["prepare"]["config"]["context_chroma"] is True
    trained = info["provenance"]["train"]
    assert (trained["p_mean"], trained["p_std"]) == (
        recorded["ldm"]["settings"]["p_mean"],
        recorded["ldm"]["settings"]["p_std"],
    )
    assert info["sampling"] == recorded["sampling"]
    assert info["one_pass_frames"] == recorded["one_pass_frames"]
    pipeline = AccompanimentPipeline.from_pretrained(bundle)
    assert pipeline.context_chroma
    out = pipeline.generate(duration=0.5, steps=2, seed=0)
    assert out.settings["cfg_context"] == recorded["sampling"]["cfg_context"]
    assert out.audio.shape == (1, 2, 24_000)
    context = np.sin(np.arange(24_000) * 2 * np.pi * 220 / 48_000).astype(np.float32)
    assert pipeline.generate(context, steps=2, seed=0).audio.shape == (1, 2, 24_000)

    # A second run resumes every stage (nothing retrained) and rewrites the bundle.
    def state() -> tuple[bytes, bytes, list[str]]:
        codec = run / "codec"
        weights = (codec / "final" / "ema.safetensors").read_bytes()
        saved = sorted(os.listdir(codec / "checkpoints"))
        return weights, (codec / "log.jsonl").read_bytes(), saved

    before = state()
    assert main(args) == 0
    assert state() == before
    assert len(json.loads((bundle / "recipe-log.json").read_text())["runs"]) == 2
    # Over the size budget: refused, and the installed bundle is not left half-written.
    over = ["--set", "max_bundle_megabytes=0.5"]
    assert main([*args[:4], "--install", str(tmp_path / "big"), *sets(), *over, "--quiet"]) == 2
    assert not (tmp_path / "big").exists()
    # A setting no stage could use is refused before any stage runs: the log is untouched.
    runs = len(json.loads((run / "recipe-log.json").read_text())["runs"])
    bad = ["--set", 'ldm.preset="no-such-preset"']
    assert main([*args[:4], "--install", str(tmp_path / "bad"), *sets(), *bad, "--quiet"]) == 2
    assert len(json.loads((run / "recipe-log.json").read_text())["runs"]) == runs
    # A stage that fails while it runs (its run folder holds a run with another seed) stays
    # in the log as started, without a time; the ones before it, resumed, have theirs.
    bad = ["--set", "ldm.settings.seed=1"]
    assert main([*args[:4], "--install", str(tmp_path / "bad"), *sets(), *bad, "--quiet"]) == 2
    last = json.loads((run / "recipe-log.json").read_text())["runs"][-1]["stages"]
    assert [s["stage"] for s in last] == ["data", "codec-audio", "codec", "prepare", "ldm"]
    assert [s["seconds"] is None for s in last] == [False, False, False, False, True]


def test_rendered_corpus_pieces_join_the_synthetic_songs(tmp_path: Path, capsys) -> None:
    """data.rendered: train-split corpus pieces, rendered beside the synthetic songs."""
    pytest.importorskip("music21", reason="the [corpus] extra")
    from openriff.pipeline.data.corpus import piece_split
    from openriff.pipeline.data.layout import read_generic
    from openriff.pipeline.train.stages import STAGE_RUNNERS, stage_commands

    recipe = load_recipe(overrides=SMALL)
    recipe["data"]["style"] = "classic"
    rendered = {"pieces": 2, "seconds": 6, "validation": 0.2, "seed": 0,
                "collections": ["trecento"]}  # fmt: skip
    recipe["data"]["rendered"] = rendered
    commands = stage_commands(recipe, tmp_path, "cpu", True)
    assert list(commands)[:3] == ["data", "corpus", "render"]
    assert commands["corpus"][commands["corpus"].index("--split") + 1] == "train"
    assert commands["render"][commands["render"].index("--out") + 1] == str(tmp_path / "data")
    for stage in ("data", "corpus", "render"):
        STAGE_RUNNERS[stage](recipe, tmp_path, "cpu", True)
    midis = sorted((tmp_path / "midi").rglob("*.mid"))
    assert len(midis) == 2
    songs = sorted(p.name for p in (tmp_path / "data").iterdir())
    synthetic = [s for s in songs if len(s) == len("song_0000")]
    assert len(synthetic) == 3
    # A piece whose first seconds hold one part only is skipped, and said so.
    skipped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skip")]
    assert len(songs) - 3 + len(skipped) == 2
    assert len(songs) >= 4
    for folder in sorted(set(songs) - set(synthetic)):
        meta = json.loads((tmp_path / "data" / folder / "song.json").read_text())
        assert (tmp_path / "data" / folder / "bass.wav").is_file()
        name = meta.get("source", folder)
        assert "bach" not in str(name).lower()
    for midi in midis:
        name = "/".join(midi.relative_to(tmp_path / "midi").with_suffix("").parts)
        assert piece_split(name, 0.2, 0) == "train", name
    assert len(read_generic(tmp_path / "data")[0]) == len(songs)
    # Bach is refused before any stage runs, as are other bad settings.
    for bad, match in (
        ({**rendered, "collections": ["bach"]}, "reserved for independent evaluation"),
        ({**rendered, "pieces": 0}, "pieces must be >= 1"),
        ({**rendered, "seconds": -1}, "seconds must be a number"),
        ({**rendered, "collections": ["nope"]}, "unknown"),
    ):
        recipe["data"]["rendered"] = bad
        with pytest.raises(ValueError, match=match):
            check_recipe(recipe)
