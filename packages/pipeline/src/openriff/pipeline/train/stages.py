"""The stages of a training recipe: what each runs, and the command that does the same.

:data:`STAGE_RUNNERS` maps a stage to the library call behind its command;
:func:`stage_commands` gives those commands (``openriff``/``openriff-cae`` arguments) in
the order a recipe runs them. Optional stages appear only where the recipe asks for them:
``corpus`` and ``render`` (``data.rendered``: compositions from music21's corpus, never
Bach, rendered with General MIDI sounds into the same song folder as the synthetic songs)
and ``codec-audio`` (``codec.audio`` ``"targets-and-contexts"``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Recipe = dict[str, Any]
StageRunner = Callable[[Recipe, Path, str, bool], None]


def _codec_audio_folder(recipe: Recipe, run: Path) -> Path:
    audio = recipe["codec"].get("audio", "stems")
    return run / ("codec-audio" if audio == "targets-and-contexts" else "data")


def _data(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.data.synth import synth_dataset

    data = recipe["data"]
    workers = data.get("workers") or os.cpu_count() or 1
    synth_dataset(run / "data", data["songs"], seed=data["seed"], bars=data["bars"],
                  workers=workers, style=data.get("style", "wide"))  # fmt: skip


def _corpus(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.data.corpus import COLLECTIONS, export_corpus

    rendered = recipe["data"]["rendered"]
    export_corpus(
        run / "midi", rendered.get("collections") or COLLECTIONS, split="train",
        validation=rendered["validation"], pieces=rendered["pieces"], seed=rendered["seed"],
    )  # fmt: skip


def _render(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.data.render import RenderConfig, render_dataset

    rendered = recipe["data"]["rendered"]
    config = RenderConfig(max_seconds=float(rendered["seconds"]))
    report = render_dataset(run / "midi", run / "data", config, seed=rendered["seed"])
    for line in report.skipped:  # e.g. a piece whose first seconds hold one part only
        print(f"skipped: {line}", file=sys.stderr)
    if not report.written and not report.kept:
        raise ValueError(f"no piece under {run / 'midi'} could be rendered")


def _codec_audio(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.data.codec_audio import write_codec_audio

    targets = list(recipe["prepare"].get("targets", []))
    write_codec_audio(run / "data", _codec_audio_folder(recipe, run), targets)


def _codec(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.cae.train import TrainConfig as CodecTrainConfig
    from openriff.cae.train import train as train_codec

    codec = recipe["codec"]
    codec_config = CodecTrainConfig(
        data=str(_codec_audio_folder(recipe, run)), preset=codec["preset"],
        steps=codec["steps"], batch_size=codec["batch_size"], lr=float(codec["lr"]),
        warmup_steps=codec["warmup_steps"], seed=codec["seed"],
        checkpoint_every=codec.get("checkpoint_every", 1000),
    )  # fmt: skip
    train_codec(codec_config, run / "codec", device=device, show_progress=not quiet)


def _prepare(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.codecs import codec_source, load_codec
    from openriff.pipeline.data.prepare import prepare, prepare_config

    prep = recipe["prepare"]
    source = codec_source(run / "codec" / "final")
    model = load_codec(source, device)
    config = prepare_config(
        run / "data", model.hop_length, window_latents=prep["window_latents"],
        hop_seconds=prep["hop_seconds"], targets=list(prep.get("targets", [])),
        validation=prep["validation"], seed=prep["seed"],
        context_chroma=prep.get("context_chroma", False),
    )  # fmt: skip
    prepare(config, model, run / "prepared", show_progress=not quiet, codec_source=source)


def _ldm(recipe: Recipe, run: Path, device: str, quiet: bool) -> None:
    from openriff.pipeline.train.models import train_ldm

    ldm = recipe["ldm"]
    train_ldm(run / "prepared", run / "ldm", preset=ldm["preset"],
              settings=dict(ldm["settings"]), device=device, show_progress=not quiet)  # fmt: skip


STAGE_RUNNERS: dict[str, StageRunner] = {
    "data": _data,
    "corpus": _corpus,
    "render": _render,
    "codec-audio": _codec_audio,
    "codec": _codec,
    "prepare": _prepare,
    "ldm": _ldm,
}


def stage_commands(recipe: Recipe, run: Path, device: str, quiet: bool) -> dict[str, list[str]]:
    """The command line of every stage the recipe runs, in order."""
    data, codec, prep, ldm = (recipe[s] for s in ("data", "codec", "prepare", "ldm"))
    q = ["--quiet"] if quiet else []
    audio = codec.get("audio", "stems")
    if audio not in ("stems", "targets-and-contexts"):
        raise ValueError(f"codec.audio must be 'stems' or 'targets-and-contexts', got {audio!r}")
    codec_data = _codec_audio_folder(recipe, run)
    prepare = [
        "prepare", "--data", str(run / "data"), "--out", str(run / "prepared"),
        "--codec", str(run / "codec" / "final"), "--window-latents", str(prep["window_latents"]),
        "--hop-seconds", str(prep["hop_seconds"]), "--validation", str(prep["validation"]),
        "--seed", str(prep["seed"]), "--device", device, *q,
    ]  # fmt: skip
    for target in prep.get("targets", []):
        prepare += ["--target", target]
    if prep.get("context_chroma", False):
        prepare.append("--context-chroma")
    settings = run / "ldm-settings.json"  # written by run_recipe from recipe["ldm"]
    commands = {
        "data": [
            "data", "synth", "--songs", str(data["songs"]), "--bars", str(data["bars"]),
            "--seed", str(data["seed"]), "--out", str(run / "data"),
            "--style", data.get("style", "wide"),
            "--workers", str(data.get("workers") or os.cpu_count() or 1),
        ],
    }  # fmt: skip
    rendered = data.get("rendered")
    if rendered is not None:
        commands["corpus"] = [
            "data",
            "corpus",
            "--out",
            str(run / "midi"),
            "--split",
            "train",
            "--validation",
            str(rendered["validation"]),
            "--pieces",
            str(rendered["pieces"]),
            "--seed",
            str(rendered["seed"]),
        ] + [arg for name in rendered.get("collections") or [] for arg in ("--collection", name)]
        commands["render"] = [
            "data", "render", "--midi", str(run / "midi"), "--out", str(run / "data"),
            "--seed", str(rendered["seed"]), "--max-seconds", str(rendered["seconds"]),
        ]  # fmt: skip
    if audio == "targets-and-contexts":
        if not prep.get("targets"):
            raise ValueError("codec.audio 'targets-and-contexts' needs prepare.targets")
        commands["codec-audio"] = [
            "data", "codec-audio", "--data", str(run / "data"), "--out", str(codec_data),
        ] + [arg for target in prep["targets"] for arg in ("--target", target)]  # fmt: skip
    return commands | {
        "codec": [
            "train", "--data", str(codec_data), "--out", str(run / "codec"),
            "--preset", codec["preset"], "--steps", str(codec["steps"]),
            "--batch-size", str(codec["batch_size"]), "--lr", str(codec["lr"]),
            "--warmup-steps", str(codec["warmup_steps"]), "--seed", str(codec["seed"]),
            "--checkpoint-every", str(codec.get("checkpoint_every", 1000)),
            "--device", device, *q,
        ],
        "prepare": prepare,
        "ldm": [
            "train", "ldm", "--data", str(run / "prepared"), "--out", str(run / "ldm"),
            "--preset", ldm["preset"], "--config", str(settings), "--device", device, *q,
        ],
    }  # fmt: skip
