"""``openriff rerun``: repeat the generation a JSON sidecar records, with its seed.

The sidecar's command is parsed by the generation commands alone (and ``demo``), so a
sidecar from someone else cannot start training or data commands.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from openriff.pipeline.cli.argv import absolute_paths
from openriff.pipeline.cli.demo import add_demo_command
from openriff.pipeline.cli.generate import RERUNNABLE, add_generation_commands


def rerun_argv(record: dict[str, Any], out: Path, mix: Path | None) -> list[str]:
    """The command of a sidecar, with its seed pinned and its outputs moved."""
    if not isinstance(record, dict):
        raise ValueError(f"a sidecar holds a JSON object, got {type(record).__name__}")
    command = record.get("command")
    settings = record.get("settings")
    seed = settings.get("seed") if isinstance(settings, dict) else None
    if (
        not isinstance(command, list)
        or not all(isinstance(item, str) for item in command)
        or len(command) < 2
        or command[0] != "openriff"
        or isinstance(seed, bool)
        or not isinstance(seed, int)
    ):
        raise ValueError("the sidecar records no openriff command and seed to re-run")
    if command[1] not in RERUNNABLE:
        raise ValueError(
            f"the sidecar records `openriff {command[1]}`; rerun repeats only generation "
            f"commands ({', '.join(RERUNNABLE)})"
        )
    argv, skip = [], 0
    for item in command[1:]:
        if skip:
            skip -= 1
            continue
        if item in ("--seed", "--out", "--mix"):
            skip = 1
            continue
        if item != "--overwrite":
            argv.append(item)
    argv += ["--seed", str(seed), "--out", str(out)]
    if mix is not None:
        argv += ["--mix", str(mix)]
    return argv


def cmd_rerun(args: argparse.Namespace) -> int:
    """``openriff rerun``: the command a sidecar records, with its seed, to new outputs."""
    from openriff.latent_diffusion.devices import resolve_device

    if not args.sidecar.is_file():
        raise ValueError(f"{args.sidecar}: no such sidecar")
    try:
        record = json.loads(args.sidecar.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{args.sidecar}: not a JSON sidecar ({error})") from None
    try:
        argv = rerun_argv(record, args.out, args.mix)
    except ValueError as error:
        raise ValueError(f"{args.sidecar}: {error}") from None
    if args.overwrite:
        argv.append("--overwrite")
    print("openriff " + " ".join(argv))
    # Parsed by the generation commands alone: nothing else can be re-run.
    parser = argparse.ArgumentParser(prog="openriff")
    commands = parser.add_subparsers(dest="command", required=True)
    add_generation_commands(commands)
    add_demo_command(commands)
    again = parser.parse_args(argv)
    again.argv = absolute_paths(parser, argv)  # the new --out, absolute in the new sidecar
    model = record.get("model")
    again.expect_model = model if isinstance(model, dict) else None
    again.force = args.force
    resolve_device(again.device)
    code: int = again.func(again)
    return code


def add_rerun_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rerun`` to ``openriff``'s subparsers."""
    p = sub.add_parser("rerun", help="re-run the command a JSON sidecar records, exactly")
    p.add_argument("sidecar", type=Path, help="the .json written next to a generated file")
    p.add_argument("--out", type=Path, required=True, help="new output (file, or folder)")
    p.add_argument("--mix", type=Path, default=None, help="also write the mix here")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--force", action="store_true",
        help="re-run although the model loaded now is not the one the sidecar records",
    )  # fmt: skip
    p.set_defaults(func=cmd_rerun)
