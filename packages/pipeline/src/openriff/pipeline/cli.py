"""``openriff``: the command line of the whole toolkit.

::

    openriff data synth --songs N --out DIR [--seed 0] [--bars 8]

Further commands (prepare, train, generate) arrive with the pipeline's other parts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Write synthetic multitrack songs in the generic layout (``data synth``)."""
    from openriff.pipeline.synth import synth_dataset

    folders = synth_dataset(args.out, args.songs, seed=args.seed, bars=args.bars)
    print(f"{len(folders)} songs in {args.out}")
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
    p.set_defaults(func=cmd_data_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"openriff {args.command}: error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
