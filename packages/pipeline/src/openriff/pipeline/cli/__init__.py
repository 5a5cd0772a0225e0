"""``openriff``: the command line of the whole toolkit, one module per command group.

::

    openriff data synth --songs N --out DIR [--seed 0] [--bars 8]
    openriff data codec-audio --data SONGS --out DIR --target bass [--layout generic]
    openriff prepare --data SONGS --out PREPARED (--codec CKPT | --codec-preset NAME)
        [--layout generic] [--clap CLAP.pt] [--window-latents 120] [--hop-seconds 3]
        [--context-chroma]
    openriff train ldm --data PREPARED --out RUN [--preset tiny-unet] [--config TRAIN.json]
    openriff train bridge --data PREPARED --out RUN [--clap CLAP.pt] [--bundle RUN/bundle]
    openriff train recipe --run RUN [--recipe R.json] [--set codec.steps=100] [--install DIR]
    openriff generate | inpaint | vary | loop | interpolate | song ...  (see .generate)
    openriff rerun SIDECAR.json --out NEW.wav
    openriff demo --out DIR
    openriff evaluate synthetic [--bundle DIR] [--songs 8] [--target bass] [--json REPORT]
    openriff ui [--bundle DIR] [--device cuda] [--host 127.0.0.1] [--port 7860]

``prepare`` runs CLAP-free unless ``--clap`` is given. ``train ldm`` takes any
openriff-latent-diffusion ``TrainConfig`` field from ``--config`` (a JSON object) and runs
under ``torchrun`` as is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from openriff.clap_bridge.encoder import ClapSetupError
from openriff.latent_diffusion.devices import resolve_device
from openriff.latent_diffusion.files import one_line
from openriff.latent_diffusion.flags import Parser, UsageError
from openriff.pipeline.cli.argv import absolute_paths
from openriff.pipeline.cli.data import add_data_commands
from openriff.pipeline.cli.demo import add_demo_command
from openriff.pipeline.cli.evaluate import add_evaluate_commands
from openriff.pipeline.cli.generate import add_generation_commands
from openriff.pipeline.cli.rerun import add_rerun_command
from openriff.pipeline.cli.train import add_train_commands
from openriff.pipeline.cli.ui import add_ui_command

__all__ = ["USER_ERRORS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff``."""
    parser: argparse.ArgumentParser = Parser(prog="openriff", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_commands(sub)
    add_train_commands(sub)
    add_generation_commands(sub)
    add_rerun_command(sub)
    add_demo_command(sub)
    add_evaluate_commands(sub)
    add_ui_command(sub)
    return parser


# Errors that are the input's or the machine's fault (a bad file or setting, a missing or
# locked output, a full disk, a name too long): one line, exit code 2. Anything else is a
# bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, ClapSetupError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(given)
    except UsageError as error:  # a flag out of its range, a missing argument, ...
        print(error, file=sys.stderr)
        return 2
    args.argv = absolute_paths(parser, given)  # what sidecars record: runs from anywhere
    try:
        threads = getattr(args, "threads", None)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if getattr(args, "device", None) is not None:
            resolve_device(args.device)
        code: int = args.func(args)
    except USER_ERRORS as error:
        message = str(error) if isinstance(error, ClapSetupError) else one_line(error)
        print(f"openriff {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code
