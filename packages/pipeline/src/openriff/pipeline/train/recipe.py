"""Training recipes: one JSON file that reproduces a whole model bundle.

A recipe names every setting of the five stages that make OpenRiff's default model, and
:func:`run_recipe` runs them by calling the library functions behind these commands
(each resumable; ``recipe-log.json`` records the equivalent command of each stage):

1. ``openriff data synth``: the synthetic multitrack songs (``data.style``), and where
   ``data.rendered`` asks for them, ``openriff data corpus`` and ``openriff data render``:
   pieces of music21's corpus (train split; never Bach) rendered with General MIDI
   sounds into the same song folder (:mod:`openriff.pipeline.train.stages`);
2. ``openriff-cae train``: the codec, on every stem of those songs, or (``codec.audio``
   ``"targets-and-contexts"``) on the target stems and the mix of each song's other stems,
   written first by ``openriff data codec-audio``;
3. ``openriff prepare``: latent shards (CLAP-free), targets restricted as the recipe says,
   the context's chromagram appended to its latents when ``prepare.context_chroma``;
4. ``openriff train ldm``: the denoiser, which writes the bundle;
5. slimming: the bundle keeps only the weights inference loads (the EMA weights, as
   ``model.safetensors``), the recipe and the run's log, and must fit the size budget; the
   recipe's optional ``sampling`` section becomes the bundle's recommended sampling
   settings (e.g. the context guidance its evaluation found best), and its optional
   :data:`DECLARATIONS` go to ``bundle.json`` as they are: ``one_pass_frames``, the length
   the bundle declares it samples in one pass
   (:class:`~openriff.pipeline.generation.conditions.Conditioner`), and ``min_steps``, the
   fewest sampling steps it was checked with (fewer give a warning).

``recipe-log.json`` in the run folder records each stage's command, wall time and the
hardware (device name, CPU count, torch version), so the closing numbers of a training run
come with how they were made. The default recipe ships with the package
(``openriff/pipeline/train/recipes/default.json``); ``--set key=value`` changes a setting
(e.g. ``--set codec.steps=100`` for a quick run).
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from openriff.pipeline.train.stages import STAGE_RUNNERS, stage_commands

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "default.json"
STAGES = ("data", "codec", "prepare", "ldm", "bundle")
DECLARATIONS = ("one_pass_frames", "min_steps")
"""Optional top-level recipe keys (whole numbers >= 1) that go to ``bundle.json`` as they are."""


def load_recipe(
    path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A recipe (the default one without ``path``) with dotted-key ``overrides`` applied."""
    from openriff.latent_diffusion.files import read_json_object

    source = Path(path) if path is not None else DEFAULT_RECIPE
    if not source.is_file():
        raise FileNotFoundError(f"no recipe at {source}")
    recipe = read_json_object(source, "a training recipe")
    for stage in STAGES[:-1]:
        if stage not in recipe:
            raise ValueError(f"{source}: the recipe has no {stage!r} section")
    recipe = copy.deepcopy(recipe)
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        node = recipe
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {key}: {part!r} is not a section of the recipe")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"--set {key}: the recipe has no setting {parts[-1]!r} there")
        node[parts[-1]] = value
    check_recipe(recipe, str(source))
    return recipe


def _whole(section: dict[str, Any], key: str, where: str, least: int | None = 1) -> None:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key} must be a whole number, got {value!r}")
    if least is not None and value < least:
        raise ValueError(f"{where}.{key} must be >= {least}, got {value}")


def _number(section: dict[str, Any], key: str, where: str, low: float, high: float) -> None:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise ValueError(f"{where}.{key} must be a number in ({low:g}, {high:g}), got {value!r}")


def check_recipe(recipe: dict[str, Any], source: str = "the recipe") -> None:
    """Refuse a recipe any stage would refuse, before the first stage runs.

    Every setting is checked for its type and range here (and the codec's and the
    denoiser's settings by building their configs), so a typo in ``--set`` fails in a
    second, not after the data stage.

    Raises:
        ValueError: naming the setting and what it must be.
    """
    from openriff.cae import PRESETS as CODEC_PRESETS
    from openriff.cae.config import from_dict as codec_config
    from openriff.cae.train import TrainConfig as CodecTrainConfig
    from openriff.latent_diffusion.checkpoint import ModelConfig
    from openriff.latent_diffusion.config import from_dict as ldm_config
    from openriff.latent_diffusion.train import TrainConfig
    from openriff.pipeline.data.music import STYLES as SYNTH_STYLES
    from openriff.pipeline.train.models import MODEL_PRESETS

    for stage in STAGES[:-1]:
        if not isinstance(recipe.get(stage), dict):
            raise ValueError(f"{source}: the {stage!r} section must be an object")
    data, codec, prep, ldm = (recipe[s] for s in STAGES[:-1])
    for key in ("songs", "bars"):
        _whole(data, key, "data")
    _whole(data, "seed", "data", least=0)
    if data.get("style", "wide") not in SYNTH_STYLES:
        raise ValueError(f"data.style must be one of {sorted(SYNTH_STYLES)}, got {data['style']!r}")
    if data.get("workers") is not None:
        _whole(data, "workers", "data")
    if data.get("rendered") is not None:
        _check_rendered(data["rendered"])
    if codec.get("preset") not in CODEC_PRESETS:
        raise ValueError(
            f"codec.preset must be one of {sorted(CODEC_PRESETS)}, got {codec.get('preset')!r}"
        )
    if codec.get("audio", "stems") not in ("stems", "targets-and-contexts"):
        raise ValueError(
            f"codec.audio must be 'stems' or 'targets-and-contexts', got {codec.get('audio')!r}"
        )
    keys = ("preset", "steps", "batch_size", "lr", "warmup_steps", "checkpoint_every", "seed")
    try:
        codec_config(CodecTrainConfig, {"data": "", **{k: codec[k] for k in keys if k in codec}})
    except ValueError as error:
        raise ValueError(f"{source}: codec: {error}") from None
    for key in ("window_latents",):
        _whole(prep, key, "prepare")
    _whole(prep, "seed", "prepare", least=0)
    _number(prep, "hop_seconds", "prepare", 0.0, 3600.0)
    _number(prep, "validation", "prepare", -1e-12, 1.0)
    targets = prep.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"prepare.targets must be a list of instrument names, got {targets!r}")
    if not isinstance(prep.get("context_chroma", False), bool):
        raise ValueError("prepare.context_chroma must be true or false")
    if ldm.get("preset") not in MODEL_PRESETS:
        raise ValueError(
            f"ldm.preset must be one of {sorted(MODEL_PRESETS)}, got {ldm.get('preset')!r}"
        )
    settings = ldm.get("settings", {})
    if not isinstance(settings, dict):
        raise ValueError(f"ldm.settings must be an object of training settings, got {settings!r}")
    try:
        ldm_config(TrainConfig, {**settings, "model": ModelConfig()})
    except ValueError as error:
        raise ValueError(f"{source}: ldm.settings: {error}") from None
    _number(recipe, "max_bundle_megabytes", "recipe", 0.0, float("inf"))
    if "sampling" in recipe:  # checked now, not after hours of training
        from openriff.pipeline.generation.options import check_recommendation

        check_recommendation(recipe["sampling"], f"{source}: 'sampling'")
    for key in DECLARATIONS:
        if key in recipe:
            _whole(recipe, key, "recipe")


def _check_rendered(rendered: Any) -> None:
    """``data.rendered``: music21 corpus pieces of the train split, rendered (stages.py)."""
    from openriff.pipeline.data.corpus import COLLECTIONS, EXCLUDED

    if not isinstance(rendered, dict):
        raise ValueError(f"data.rendered must be an object, got {rendered!r}")
    _whole(rendered, "pieces", "data.rendered")
    _whole(rendered, "seed", "data.rendered", least=0)
    _number(rendered, "seconds", "data.rendered", 0.0, 3600.0)
    _number(rendered, "validation", "data.rendered", 0.0, 1.0)
    collections = rendered.get("collections")
    if collections is not None:
        if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
            raise ValueError(f"data.rendered.collections must be a list of names: {collections!r}")
        if set(collections) & EXCLUDED:
            raise ValueError(
                "data.rendered.collections: Bach's chorales are reserved for independent "
                "evaluation and never trained on"
            )
        unknown = sorted(set(collections) - set(COLLECTIONS))
        if unknown:
            raise ValueError(
                f"data.rendered.collections: unknown {unknown}; known: {', '.join(COLLECTIONS)}"
            )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["codec.steps=100", 'prepare.targets=["bass"]']`` -> dotted keys and JSON values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare string
    return out


def hardware(device: str) -> dict[str, Any]:
    """What a run ran on."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def slim_bundle(
    bundle: Path,
    target: Path,
    extras: dict[str, Path],
    max_megabytes: float,
    sampling: dict[str, Any] | None = None,
    declared: dict[str, int] | None = None,
) -> Path:
    """Copy ``bundle`` to ``target`` with only the weights inference loads, plus ``extras``.

    Each checkpoint folder keeps its EMA weights (when it has them) as
    ``model.safetensors``; ``sampling`` (when given) becomes the bundle's recommended
    sampling settings; ``declared`` (:data:`DECLARATIONS`) go to ``bundle.json`` as they
    are. Raises ``ValueError`` when the result exceeds the budget.
    """
    from openriff.latent_diffusion.files import atomic_directory

    with atomic_directory(target) as tmp:
        shutil.copytree(bundle, tmp, dirs_exist_ok=True)
        for folder in [p for p in tmp.iterdir() if p.is_dir()]:
            ema = folder / "ema.safetensors"
            if ema.is_file():
                os.replace(ema, folder / "model.safetensors")
        for name, path in extras.items():
            shutil.copy2(path, tmp / name)
        info = json.loads((tmp / "bundle.json").read_text())
        if sampling is not None:
            info["sampling"] = dict(sampling)
        info.update(declared or {})
        (tmp / "bundle.json").write_text(json.dumps(info, indent=1) + "\n")
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) / 2**20
        if size > max_megabytes:
            raise ValueError(f"the bundle is {size:.1f} MB, over the {max_megabytes} MB budget")
    return target


def run_recipe(
    recipe: dict[str, Any],
    run: str | os.PathLike[str],
    *,
    device: str = "cpu",
    install: str | os.PathLike[str] | None = None,
    quiet: bool = False,
) -> Path:
    """Run every stage (resuming finished work); returns the slimmed bundle folder.

    Args:
        recipe: a loaded recipe (:func:`load_recipe`).
        run: the run folder (every stage's outputs, ``recipe-log.json``).
        device: ``cpu`` or ``cuda``.
        install: where to put the slimmed bundle (default: ``run/default-bundle``); an
            existing bundle there is replaced.
        quiet: no progress bars.
    """
    from openriff.latent_diffusion.files import writer_lock

    check_recipe(recipe)
    root = Path(run)
    target = Path(install) if install is not None else root / "default-bundle"
    # One writer per run folder and per installed bundle.
    with writer_lock([root, target]):
        return _run_stages(recipe, root, target, device, quiet)


def _run_stages(recipe: dict[str, Any], root: Path, target: Path, device: str, quiet: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n")
    settings = json.dumps(recipe["ldm"]["settings"], indent=1) + "\n"
    (root / "ldm-settings.json").write_text(settings)
    log_path = root / "recipe-log.json"
    log: dict[str, Any] = json.loads(log_path.read_text()) if log_path.is_file() else {}
    log.setdefault("runs", []).append({"hardware": hardware(device), "stages": []})
    commands = stage_commands(recipe, root, device, quiet)
    for stage, argv in commands.items():
        program = "openriff-cae" if stage == "codec" else "openriff"
        # Logged before it runs: an interrupted stage (resumed by the next run) shows as
        # started without a time. The command is the one that does the same by hand.
        entry: dict[str, Any] = {"stage": stage, "command": [program, *argv], "seconds": None}
        log["runs"][-1]["stages"].append(entry)
        log_path.write_text(json.dumps(log, indent=1) + "\n")
        started = time.time()
        STAGE_RUNNERS[stage](recipe, root, device, quiet)
        entry["seconds"] = round(time.time() - started, 1)
        log_path.write_text(json.dumps(log, indent=1) + "\n")
    # slim_bundle writes beside ``target`` and swaps it in: the old bundle stays until then.
    extras = {"recipe.json": root / "recipe.json", "recipe-log.json": log_path}
    return slim_bundle(
        root / "ldm" / "bundle", target, extras, float(recipe["max_bundle_megabytes"]),
        recipe.get("sampling"), {key: recipe[key] for key in DECLARATIONS if key in recipe},
    )  # fmt: skip
