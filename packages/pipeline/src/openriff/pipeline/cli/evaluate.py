"""``openriff evaluate``: how well a bundle accompanies held-out songs.

::

    openriff evaluate synthetic [--bundle DIR] [--songs 8] [--target bass] [--json REPORT]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from openriff.pipeline.cli.sampling import add_sampling_flags


def cmd_evaluate_synthetic(args: argparse.Namespace) -> int:
    """Score a bundle's accompaniments of held-out synthetic songs (``evaluate synthetic``)."""
    import json

    import torch

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.evaluation.synthetic import (
        SyntheticEvaluation,
        evaluate_synthetic,
        format_report,
    )
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

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


def add_evaluate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evaluate`` to ``openriff``'s subparsers."""
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
    add_sampling_flags(p, only=("steps", "sampler", "cfg_context"))
    p.add_argument("--seed", type=int, default=0, help="generation seed of the first song")
    p.add_argument("--json", type=Path, default=None, help="also write the full report here")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate_synthetic)
