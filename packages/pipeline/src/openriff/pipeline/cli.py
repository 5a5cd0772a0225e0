"""``openriff``: the command line of the whole toolkit.

::

    openriff data synth --songs N --out DIR [--seed 0] [--bars 8]
    openriff data codec-audio --data SONGS --out DIR --target bass [--layout generic]
    openriff prepare --data SONGS --out PREPARED (--codec CKPT | --codec-preset NAME)
        [--layout generic] [--clap CLAP.pt] [--window-latents 120] [--hop-seconds 3]
        [--context-chroma]
    openriff train ldm --data PREPARED --out RUN [--preset tiny-unet] [--config TRAIN.json]
    openriff train bridge --data PREPARED --out RUN [--clap CLAP.pt] [--bundle RUN/bundle]
    openriff train recipe --run RUN [--recipe R.json] [--set codec.steps=100] [--install DIR]
    openriff generate | inpaint | vary | loop | interpolate | song ...  (see cli_generate)
    openriff evaluate synthetic [--bundle DIR] [--songs 8] [--target bass] [--json REPORT]

``prepare`` runs CLAP-free unless ``--clap`` is given. ``train ldm`` takes any
openriff-latent-diffusion ``TrainConfig`` field from ``--config`` (a JSON object) and runs
under ``torchrun`` as is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from openriff.clap_bridge.encoder import ClapSetupError
from openriff.latent_diffusion.devices import resolve_device
from openriff.latent_diffusion.files import one_line
from openriff.pipeline.cli_generate import add_generation_commands


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Write synthetic multitrack songs in the generic layout (``data synth``)."""
    from openriff.pipeline.synth import synth_dataset

    if args.songs < 1 or args.bars < 1:
        raise ValueError(f"--songs and --bars must be >= 1, got {args.songs}, {args.bars}")
    folders = synth_dataset(
        args.out, args.songs, seed=args.seed, bars=args.bars, workers=args.workers
    )
    print(f"{len(folders)} songs in {args.out}")
    return 0


def cmd_data_codec_audio(args: argparse.Namespace) -> int:
    """Write target stems and the mix of the other stems per song (``data codec-audio``)."""
    from openriff.pipeline.codec_audio import write_codec_audio

    folders, report = write_codec_audio(args.data, args.out, args.target, layout=args.layout)
    print(f"{len(folders)} songs in {args.out}")
    if report.skipped:
        print(report.summary())
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Encode songs into latent shards (``prepare``)."""
    import os

    import torch

    from openriff.pipeline.codecs import codec_source, load_codec
    from openriff.pipeline.prepare import prepare, prepare_config

    name = args.device
    if name == "cuda":
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"  # one GPU per process
    device = torch.device(name)
    source = codec_source(args.codec, args.codec_preset, args.seed)
    if "preset" in source:
        print(
            f"warning: encoding with the UNTRAINED codec preset {args.codec_preset!r}",
            file=sys.stderr,
        )
    codec = load_codec(source, device)
    config = prepare_config(
        args.data, codec.hop_length, layout=args.layout, window_latents=args.window_latents,
        hop_seconds=args.hop_seconds, reference_seconds=args.reference_seconds,
        targets=args.target, validation=args.validation, seed=args.seed,
        context_chroma=args.context_chroma,
    )  # fmt: skip
    clap = None
    if args.clap is not None:
        from openriff.clap_bridge.encoder import ClapEncoder

        clap = ClapEncoder(args.clap, amodel=args.amodel, device=device)
    report = prepare(
        config,
        codec,
        args.out,
        clap=clap,
        show_progress=not args.quiet,
        codec_source=source,
        clap_checkpoint=str(args.clap.resolve()) if args.clap else None,
    )
    print(report.summary())
    return 0


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
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train_ldm(args: argparse.Namespace) -> int:
    """Train the accompaniment denoiser (``train ldm``)."""
    import os

    from openriff.pipeline.training import train_ldm

    settings = _train_settings(args)
    final = train_ldm(
        args.data, args.out, preset=args.preset, settings=settings, device=args.device,
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
    from openriff.pipeline.training import train_bridge

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
    from openriff.pipeline.recipe import load_recipe, parse_overrides, run_recipe

    recipe = load_recipe(args.recipe, parse_overrides(args.set))
    install = DEFAULT_BUNDLE if args.install_default else args.install
    bundle = run_recipe(recipe, args.run, device=args.device, install=install, quiet=args.quiet)
    print(f"bundle -> {bundle}")
    return 0


def cmd_evaluate_synthetic(args: argparse.Namespace) -> int:
    """Score a bundle's accompaniments of held-out synthetic songs (``evaluate synthetic``)."""
    import json

    import torch

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.evaluate import (
        SyntheticEvaluation,
        evaluate_synthetic,
        format_report,
    )
    from openriff.pipeline.generate import AccompanimentPipeline

    config = SyntheticEvaluation(
        songs=args.songs, first_seed=args.first_seed, bars=args.bars, target=args.target,
        prompt=args.prompt, steps=args.steps, sampler=args.sampler,
        cfg_context=args.cfg_context, seed=args.seed,
    )  # fmt: skip
    if args.json is not None:
        from openriff.pipeline.audio_io import check_outputs

        check_outputs([args.json], args.overwrite)
    bundle = args.bundle if args.bundle is not None else default_bundle()
    pipeline = AccompanimentPipeline.from_pretrained(bundle, device=torch.device(args.device))
    report = evaluate_synthetic(pipeline, config, progress=not args.quiet)
    print(format_report(report))
    if args.json is not None:
        from openriff.pipeline.audio_io import write_together

        text = json.dumps(report, indent=1) + "\n"
        write_together({args.json: lambda tmp: Path(tmp).write_text(text)})
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff``."""
    parser = argparse.ArgumentParser(prog="openriff", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="data sets").add_subparsers(dest="action", required=True)
    p = data.add_parser("synth", help="generate synthetic multitrack songs")
    p.add_argument("--songs", type=int, required=True, help="how many songs")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first song")
    p.add_argument("--bars", type=int, default=8, help="length of each song in 4/4 bars")
    p.add_argument("--workers", type=int, default=1, help="processes (same songs as one)")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser(
        "codec-audio", help="target stems and the mix of the other stems, to train a codec on"
    )
    p.add_argument("--data", type=Path, required=True, help="data set root")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument(
        "--target", action="append", required=True, help="target instrument (repeat for more)"
    )
    p.add_argument("--layout", default="generic", help="generic, slakh, musdb or moisesdb")
    p.set_defaults(func=cmd_data_codec_audio)

    p = sub.add_parser("prepare", help="encode multitrack songs into latent shards")
    p.add_argument("--data", type=Path, required=True, help="data set root")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed)")
    p.add_argument("--layout", default="generic", help="generic, slakh, musdb or moisesdb")
    codec = p.add_mutually_exclusive_group(required=True)
    codec.add_argument(
        "--codec", type=Path,
        help="trained CAE checkpoint folder, or the official music2latent.pt ([music2latent])",
    )  # fmt: skip
    codec.add_argument("--codec-preset", help="untrained CAE preset (testing)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: no CLAP)")
    p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny")
    p.add_argument("--window-latents", type=int, default=120, help="window in latent frames")
    p.add_argument("--hop-seconds", type=float, default=3.0)
    p.add_argument("--reference-seconds", type=float, default=10.0)
    p.add_argument("--validation", type=float, default=0.1, help="share of songs held out")
    p.add_argument(
        "--target", action="append", default=[],
        help="instrument a target may be (repeat; default: any non-vocal stem)",
    )  # fmt: skip
    p.add_argument(
        "--context-chroma", action="store_true",
        help="append a 12-bin chromagram of the context to its latents (for codecs whose "
        "latents keep little of the harmony; bundles built on it append it when generating)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_prepare)

    train = sub.add_parser("train", help="training").add_subparsers(dest="what", required=True)
    p = train.add_parser("ldm", help="train the accompaniment denoiser on prepared shards")
    p.add_argument("--data", type=Path, required=True, help="prepared folder")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed)")
    p.add_argument(
        "--preset",
        default="tiny-unet",
        help="diffariff-unet, dit, consistency-dit, small-unet, tiny-unet, tiny-dit",
    )
    _training_args(p)
    p.set_defaults(func=cmd_train_ldm)

    p = train.add_parser("bridge", help="train the CLAP bridge prior on prepared shards")
    p.add_argument("--data", type=Path, required=True, help="prepared folder (with CLAP)")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: as prepared)")
    p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny")
    p.add_argument("--preset", default="paper", choices=("paper", "tiny"))
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
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_recipe)
    add_generation_commands(sub)

    evaluate = sub.add_parser("evaluate", help="evaluation").add_subparsers(
        dest="what", required=True
    )
    p = evaluate.add_parser("synthetic", help="accompaniment fit on held-out synthetic songs")
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: shipped)")
    p.add_argument("--songs", type=int, default=8, help="held-out songs")
    p.add_argument("--first-seed", type=int, default=1_000_000, help="seed of the first song")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--target", default="bass", help="stem to generate: bass, keys, guitar, ...")
    p.add_argument("--prompt", default=None, help="text for bundles with CLAP")
    # Left out, these take the bundle's recommendation, else the library's default.
    p.add_argument("--steps", type=int, default=None, help="sampler steps")
    p.add_argument("--sampler", default=None, help="heun, euler, ddim or consistency")
    p.add_argument("--cfg-context", type=float, default=None, help="context guidance (0-20)")
    p.add_argument("--seed", type=int, default=0, help="generation seed of the first song")
    p.add_argument("--json", type=Path, default=None, help="also write the full report here")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate_synthetic)
    return parser


# Errors that are the input's or the machine's fault (a bad file or setting, a missing or
# locked output, a full disk, a name too long): one line, exit code 2. Anything else is a
# bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, ClapSetupError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)
    try:
        if getattr(args, "device", None) is not None:
            resolve_device(args.device)
        code: int = args.func(args)
    except USER_ERRORS as error:
        message = str(error) if isinstance(error, ClapSetupError) else one_line(error)
        print(f"openriff {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
