"""``openriff train``: the denoiser, the CLAP bridge, or a whole recipe.

::

    openriff train ldm --data PREPARED --out RUN [--preset tiny-unet] [--config TRAIN.json]
    openriff train bridge --data PREPARED --out RUN [--clap CLAP.pt] [--bundle RUN/bundle]
    openriff train recipe --run RUN [--recipe R.json] [--set codec.steps=100] [--install DIR]

``train ldm`` takes any openriff-latent-diffusion ``TrainConfig`` field from ``--config``
(a JSON object) and runs under ``torchrun`` as is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from openriff.latent_diffusion.flags import COUNT, POSITIVE, SEED
from openriff.pipeline.cli.sampling import add_device_flags

# train.models.MODEL_PRESETS's names (without importing the training code at start-up).
MODEL_PRESET_NAMES = (
    "diffariff-unet", "dit", "consistency-dit", "small-unet", "tiny-unet", "tiny-dit",
    "tiny-consistency-dit", "tiny-v-unet",
)  # fmt: skip


def _train_settings(args: argparse.Namespace) -> dict[str, object]:
    """TrainConfig fields from ``--config`` (a JSON object), overridden by the flags."""
    import json

    settings = json.loads(args.config.read_text()) if args.config is not None else {}
    if not isinstance(settings, dict):
        raise ValueError(f"{args.config}: expected a JSON object of training settings")
    for name in ("steps", "batch_size", "lr", "seed"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    return settings


def _training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="JSON object of TrainConfig fields")
    p.add_argument("--steps", type=COUNT, default=None, help="optimizer steps (overrides --config)")
    p.add_argument(
        "--batch-size", type=COUNT, default=None, help="examples per step (overrides --config)"
    )
    p.add_argument(
        "--lr", type=POSITIVE, default=None, help="peak learning rate (overrides --config)"
    )
    p.add_argument("--seed", type=SEED, default=None, help="training seed (overrides --config)")
    add_device_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train_ldm(args: argparse.Namespace) -> int:
    """Train the accompaniment denoiser (``train ldm``)."""
    import os

    from openriff.pipeline.train.models import train_ldm

    settings = _train_settings(args)
    final = train_ldm(
        args.data, args.out, preset=args.preset, objective=args.objective, settings=settings,
        device=args.device,
        show_progress=not args.quiet,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained denoiser -> {final}")
    return 0


def cmd_train_bridge(args: argparse.Namespace) -> int:
    """Train the CLAP bridge prior on the prepared shards (``train bridge``)."""
    import os

    from openriff.clap_bridge.encoder import ClapEncoder
    from openriff.latent_diffusion.files import read_json_object
    from openriff.pipeline.train.models import train_bridge

    checkpoint = args.clap
    if checkpoint is None:
        info = read_json_object(args.data / "prepare.json", "a prepared folder's record")
        recorded = info.get("clap_checkpoint")
        if not isinstance(recorded, str):
            raise ValueError(f"{args.data} names no CLAP checkpoint: pass --clap CLAP.pt")
        checkpoint = Path(recorded)
    clap = ClapEncoder(checkpoint, amodel=args.amodel, device=args.device)
    settings = _train_settings(args)
    final = train_bridge(
        args.data, args.out, clap=clap, preset=args.preset, settings=settings,
        device=args.device, show_progress=not args.quiet, bundle=args.bundle,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained bridge -> {final}")
    return 0


def cmd_train_recipe(args: argparse.Namespace) -> int:
    """Run a whole training recipe (``train recipe``), resuming finished stages."""
    from openriff.pipeline.bundle import DEFAULT_BUNDLE
    from openriff.pipeline.train.recipe import load_recipe, parse_overrides, run_recipe

    recipe = load_recipe(args.recipe, parse_overrides(args.set))
    install = DEFAULT_BUNDLE if args.install_default else args.install
    bundle = run_recipe(recipe, args.run, device=args.device, install=install, quiet=args.quiet)
    print(f"bundle -> {bundle}")
    return 0


def add_train_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``train`` to ``openriff``'s subparsers."""
    train = sub.add_parser("train", help="training").add_subparsers(dest="what", required=True)
    p = train.add_parser("ldm", help="train the accompaniment denoiser on prepared shards")
    p.add_argument("--data", type=Path, required=True, help="prepared folder")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed)")
    p.add_argument(
        "--preset", default="tiny-unet", choices=MODEL_PRESET_NAMES,
        help="backbone, size and objective (default: tiny-unet)",
    )  # fmt: skip
    p.add_argument(
        "--objective", default=None, choices=("edm", "consistency", "v"),
        help="training objective instead of the preset's: EDM, consistency training or "
        "v-prediction on the cosine schedule",
    )  # fmt: skip
    _training_args(p)
    p.set_defaults(func=cmd_train_ldm)

    p = train.add_parser("bridge", help="train the CLAP bridge prior on prepared shards")
    p.add_argument("--data", type=Path, required=True, help="prepared folder (with CLAP)")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: as prepared)")
    p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny")
    p.add_argument(
        "--preset", default="paper", choices=("paper", "tiny"),
        help="bridge size: paper (1024 wide, 8 blocks) or tiny (tests, smoke runs)",
    )  # fmt: skip
    p.add_argument("--bundle", type=Path, default=None, help="add the bridge to this bundle")
    _training_args(p)
    p.set_defaults(func=cmd_train_bridge)

    p = train.add_parser("recipe", help="run a whole training recipe (default: the default model)")
    p.add_argument("--recipe", type=Path, default=None, help="recipe JSON (default: shipped)")
    p.add_argument("--run", type=Path, required=True, help="run folder (resumed)")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE, e.g. codec.steps=100")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--install", type=Path, default=None, help="write the bundle here")
    where.add_argument(
        "--install-default", action="store_true",
        help="write the bundle where openriff looks for its default model",
    )  # fmt: skip
    add_device_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train_recipe)
