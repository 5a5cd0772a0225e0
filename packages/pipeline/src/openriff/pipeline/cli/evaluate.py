"""``openriff evaluate``: how well a bundle accompanies held-out songs.

::

    openriff evaluate dataset --data DIR [--layout generic|slakh|musdb|moisesdb]
        [--target bass] [--bundle DIR] [--songs N] [--seconds 20] [--context-dbfs DB]
        [--json REPORT]
    openriff evaluate synthetic [--bundle DIR] [--songs 8] [--target bass] [--json REPORT]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openriff.latent_diffusion.flags import COUNT, NON_NEGATIVE, POSITIVE, REAL, SEED
from openriff.pipeline.cli.data import STYLES, add_layout_flags, split_of
from openriff.pipeline.cli.sampling import (
    add_device_flags,
    add_precision_flag,
    add_sampling_flags,
)

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline


def _pipeline(args: argparse.Namespace) -> AccompanimentPipeline:
    """The bundle asked for (the shipped one by default), after checking the report path."""
    import torch

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

    if args.json is not None:
        from openriff.pipeline.audio_io import check_outputs

        check_outputs([args.json], args.overwrite)
    bundle = args.bundle if args.bundle is not None else default_bundle()
    return AccompanimentPipeline.from_pretrained(
        bundle, device=torch.device(args.device), precision=args.precision
    )


def _finish(args: argparse.Namespace, report: dict[str, Any], text: str) -> int:
    """Print the tables and write the full report (atomically) where asked."""
    import json

    print(text)
    if args.json is not None:
        from openriff.pipeline.audio_io import write_together

        data = json.dumps(report, indent=1) + "\n"
        write_together({args.json: lambda tmp: Path(tmp).write_text(data)})
    return 0


def cmd_evaluate_lengths(args: argparse.Namespace) -> int:
    """How long the bundle may run in one pass (``evaluate lengths``); ``--record`` it."""
    from dataclasses import asdict

    from openriff.pipeline.evaluation.lengths import length_ratios, record_one_pass

    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a folder")
    multiples = [int(m) for m in args.multiples.split(",") if m.strip()]
    pipeline = _pipeline(args)
    report = length_ratios(
        pipeline, args.data, layout=args.layout, split=split_of(args), target=args.target,
        multiples=multiples, tolerance=args.tolerance, seed=args.seed,
    )  # fmt: skip
    code = _finish(args, asdict(report), report.summary())
    if args.record:
        if pipeline.root is None:
            raise ValueError("--record needs a bundle folder")
        record_one_pass(pipeline.root, report)
        print(f"recorded one_pass_frames = {report.longest} in {pipeline.root / 'bundle.json'}")
    return code


def cmd_evaluate_synthetic(args: argparse.Namespace) -> int:
    """Score a bundle's accompaniments of held-out synthetic songs (``evaluate synthetic``)."""
    from openriff.pipeline.evaluation.synthetic import (
        SyntheticEvaluation,
        evaluate_synthetic,
        format_report,
    )

    config = SyntheticEvaluation(
        songs=args.songs, first_seed=args.first_seed, bars=args.bars, style=args.style,
        target=args.target, prompt=args.prompt, steps=args.steps, sampler=args.sampler,
        cfg_context=args.cfg_context, seed=args.seed,
    )  # fmt: skip
    report = evaluate_synthetic(_pipeline(args), config, progress=not args.quiet)
    return _finish(args, report, format_report(report))


def cmd_evaluate_dataset(args: argparse.Namespace) -> int:
    """Score a bundle's accompaniments of a multitrack data set (``evaluate dataset``)."""
    from openriff.pipeline.evaluation.dataset import (
        DatasetEvaluation,
        evaluate_dataset,
        format_header,
    )
    from openriff.pipeline.evaluation.scoring import format_tables

    config = DatasetEvaluation(
        data=args.data, layout=args.layout, split=split_of(args), target=args.target,
        songs=args.songs,
        seconds=args.seconds, context_dbfs=args.context_dbfs,
        limit_context=args.limit_context, prompt=args.prompt,
        steps=args.steps, sampler=args.sampler, cfg_context=args.cfg_context, seed=args.seed,
    )  # fmt: skip
    if not args.data.is_dir():
        raise FileNotFoundError(f"--data {args.data} is not a folder")
    report = evaluate_dataset(_pipeline(args), config, progress=not args.quiet)
    return _finish(args, report, f"{format_header(report)}\n\n{format_tables(report)}")


def _common_flags(p: argparse.ArgumentParser, songs: int | None) -> None:
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: shipped)")
    p.add_argument(
        "--songs", type=COUNT, default=songs,
        help="songs to evaluate" + (" (default: all)" if songs is None else ""),
    )  # fmt: skip
    p.add_argument("--target", default="bass", help="stem to generate: bass, keys, guitar, ...")
    p.add_argument("--prompt", default=None, help="text for bundles with CLAP")
    # Left out, these take the bundle's recommendation, else the library's default.
    add_sampling_flags(p, only=("steps", "sampler", "cfg_context"))
    p.add_argument("--seed", type=SEED, default=0, help="generation seed of the first song")
    p.add_argument("--json", type=Path, default=None, help="also write the full report here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    add_device_flags(p)
    add_precision_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_evaluate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evaluate`` to ``openriff``'s subparsers."""
    evaluate = sub.add_parser("evaluate", help="evaluation").add_subparsers(
        dest="what", required=True
    )
    p = evaluate.add_parser("dataset", help="accompaniment fit on any multitrack data set")
    p.add_argument("--data", type=Path, required=True, help="the data set's root folder")
    add_layout_flags(p, "test")
    p.add_argument("--seconds", type=POSITIVE, default=20.0, help="excerpt length per song")
    p.add_argument(
        "--context-dbfs", type=REAL, default=None,
        help="scale each excerpt so that its context's RMS is this many dBFS (level sweeps)",
    )  # fmt: skip
    p.add_argument(
        "--limit-context", action="store_true",
        help="peak-limit excerpts that --context-dbfs pushes past full scale, as a master",
    )  # fmt: skip
    _common_flags(p, songs=None)
    p.set_defaults(func=cmd_evaluate_dataset)
    p = evaluate.add_parser(
        "lengths", help="held-out loss against the length of one pass (how far a model may run)"
    )
    p.add_argument("--data", type=Path, required=True, help="songs longer than the multiples")
    add_layout_flags(p, "test")
    p.add_argument(
        "--multiples", default="1,2,4,8",
        help="lengths to measure, in training windows, comma-separated (default: 1,2,4,8)",
    )  # fmt: skip
    p.add_argument(
        "--tolerance", type=NON_NEGATIVE, default=0.05,
        help="the loss increase counted as none (default: 0.05, i.e. +5%%)",
    )  # fmt: skip
    p.add_argument(
        "--record", action="store_true",
        help="write the longest one-pass length into the bundle's one_pass_frames",
    )  # fmt: skip
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: shipped)")
    p.add_argument("--target", default="bass", help="stem whose latents are denoised")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the noise")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    add_device_flags(p)
    add_precision_flag(p)
    p.set_defaults(func=cmd_evaluate_lengths)
    p = evaluate.add_parser("synthetic", help="accompaniment fit on held-out synthetic songs")
    p.add_argument("--first-seed", type=SEED, default=1_000_000, help="seed of the first song")
    p.add_argument("--bars", type=COUNT, default=8, help="length of each song in bars")
    p.add_argument(
        "--style", choices=STYLES, default="wide",
        help="the generator's style (classic: the world the default model up to 0.4 knew)",
    )  # fmt: skip
    _common_flags(p, songs=8)
    p.set_defaults(func=cmd_evaluate_synthetic)
