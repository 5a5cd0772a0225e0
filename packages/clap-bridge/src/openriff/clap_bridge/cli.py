"""``openriff-clap-bridge``: embed (prompt, audio) pairs, train the bridge, sample from it.

::

    openriff-clap-bridge embed --manifest ITEMS.csv --clap CLAP.pt --out PAIRS.safetensors
    openriff-clap-bridge train --pairs PAIRS.safetensors --out RUN_DIR [--preset paper]
    openriff-clap-bridge sample --bridge RUN_DIR/final --clap CLAP.pt --prompt "warm bass"
        [--n 4] [--cfg 1.0] --out EMBEDDINGS.npy
    openriff-clap-bridge sample --bridge RUN_DIR/final --unconditional 16 --out EMB.npy

``embed`` caches every embedding under ``--cache`` (default: next to the output), so a
rerun after an interruption only embeds what is missing. ``train`` runs
openriff-latent-diffusion's trainer (resumable; ``torchrun --nproc_per_node N -m
openriff.clap_bridge.cli train ...`` for several processes) with the bridge's dimensions
taken from the pairs file. ``sample`` writes ``[prompts, n, 512]`` (or ``[n, 512]``)
float32 unit-norm embeddings. Outputs are written atomically; existing ones are refused
unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from openriff.clap_bridge.audio import AudioError
from openriff.clap_bridge.encoder import ClapEncoder, ClapSetupError
from openriff.clap_bridge.files import write_atomic
from openriff.clap_bridge.manifest import load_pairs, read_manifest, save_pairs
from openriff.latent_diffusion.devices import resolve_device
from openriff.latent_diffusion.files import one_line
from openriff.latent_diffusion.flags import (
    COUNT,
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    SHARE,
    SIZE,
    UNIT,
    Parser,
    UsageError,
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _check_free(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise CLIError(f"{path} exists; pass --overwrite to replace it")


def _encoder(args: argparse.Namespace, cache: Path | None) -> ClapEncoder:
    return ClapEncoder(
        args.clap,
        amodel=args.amodel,
        fusion=args.fusion,
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=cache,
    )


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed a manifest's prompts and audio into a pairs file (``embed``)."""
    _check_free(args.out, args.overwrite)
    items = read_manifest(args.manifest)
    for item in items:
        if not item.audio.is_file():
            raise CLIError(f"manifest {args.manifest}: audio file {item.audio} does not exist")
    cache = args.cache if args.cache is not None else args.out.parent / ".clap-cache"
    encoder = _encoder(args, cache)
    prompts = [item.text for item in items]
    text = encoder.embed_text(prompts)
    audio = encoder.embed_audio([item.audio for item in items])
    save_pairs(
        args.out, text, audio, prompts, [str(i.audio) for i in items], overwrite=args.overwrite
    )
    print(f"{len(items)} pairs -> {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a bridge prior on a pairs file (``train``)."""
    from openriff.clap_bridge.bridge import bridge_model_config, embedding_pairs
    from openriff.latent_diffusion.train import TrainConfig, train

    text, audio, _ = load_pairs(args.pairs)
    model = bridge_model_config(
        args.preset, channels=int(audio.shape[1]), embedding_dim=int(text.shape[1])
    )
    config = TrainConfig(
        model=model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay,
        p_drop_context=0.0,
        p_drop_embedding=args.p_drop_text,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        seed=args.seed,
    )
    final = train(
        config,
        embedding_pairs(text, audio),
        args.out,
        device=args.device,
        show_progress=not args.quiet,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained bridge -> {final}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample audio embeddings from a bridge (``sample``)."""
    from openriff.clap_bridge.bridge import ClapBridge

    _check_free(args.out, args.overwrite)
    bridge = ClapBridge.from_pretrained(args.bridge, device=args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    if args.unconditional is not None:
        out = bridge.sample_unconditional(args.unconditional, steps=args.steps, generator=generator)
    else:
        if args.text_embeddings is not None:
            text = torch.from_numpy(np.load(args.text_embeddings, allow_pickle=False)).float()
        elif args.clap is not None and args.prompt:
            text = _encoder(args, None).embed_text(args.prompt)
        else:
            raise CLIError("give --prompt with --clap, --text-embeddings, or --unconditional N")
        out = bridge.sample(text, args.n, steps=args.steps, cfg=args.cfg, generator=generator)
    array = out.cpu().numpy().astype(np.float32)
    write_atomic(args.out, lambda tmp: np.save(tmp, array, allow_pickle=False))
    print(f"{list(array.shape)} embeddings -> {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff-clap-bridge``."""
    parser = Parser(prog="openriff-clap-bridge", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def clap_args(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument("--clap", type=Path, required=required, help="LAION-CLAP .pt checkpoint")
        p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny (by file name)")
        p.add_argument(
            "--fusion", action=argparse.BooleanOptionalAction, default=None, help="fusion model"
        )
        p.add_argument("--batch-size", type=COUNT, default=8, help="clips or prompts per pass")

    p = sub.add_parser("embed", help="manifest of (audio, text/tags) -> embedding pairs")
    p.add_argument("--manifest", type=Path, required=True, help="CSV, JSON or JSONL manifest")
    clap_args(p, required=True)
    p.add_argument("--out", type=Path, required=True, help="pairs file (.safetensors)")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("train", help="train the bridge prior on embedding pairs")
    p.add_argument("--pairs", type=Path, required=True, help="pairs file from `embed`")
    p.add_argument("--out", type=Path, required=True, help="run folder (resumed if it exists)")
    p.add_argument(
        "--preset", default="paper", choices=("paper", "tiny"),
        help="bridge size: paper (1024 wide, 8 blocks) or tiny (tests, smoke runs)",
    )  # fmt: skip
    p.add_argument("--steps", type=COUNT, default=100_000, help="optimizer steps")
    p.add_argument("--batch-size", type=COUNT, default=256, help="pairs per step")
    p.add_argument("--lr", type=POSITIVE, default=1e-4, help="peak learning rate")
    p.add_argument("--warmup-steps", type=SIZE, default=1000, help="linear warm-up steps")
    p.add_argument("--ema-decay", type=SHARE, default=0.999, help="EMA of the weights, in [0, 1)")
    p.add_argument("--p-drop-text", type=UNIT, default=0.2, help="text dropout (for CFG)")
    p.add_argument("--checkpoint-every", type=COUNT, default=1000, help="steps between checkpoints")
    p.add_argument("--log-every", type=COUNT, default=50, help="steps between log lines")
    p.add_argument("--seed", type=SEED, default=0, help="training seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample audio embeddings from a trained bridge")
    p.add_argument("--bridge", type=Path, required=True, help="bridge checkpoint folder")
    clap_args(p, required=False)
    p.add_argument("--prompt", action="append", default=[], help="a text prompt (repeatable)")
    p.add_argument("--text-embeddings", type=Path, default=None, help=".npy [N, 512] instead")
    p.add_argument("--unconditional", type=COUNT, default=None, help="draw N without a prompt")
    p.add_argument("--n", type=COUNT, default=1, help="samples per prompt")
    p.add_argument("--steps", type=COUNT, default=32, help="Heun steps")
    p.add_argument("--cfg", type=NON_NEGATIVE, default=1.0, help="text guidance (1: none)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the draws")
    p.add_argument("--out", type=Path, required=True, help="output .npy")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:  # a flag out of its range, a missing argument, ...
        print(error, file=sys.stderr)
        return 2
    try:
        if getattr(args, "device", None) is not None:
            resolve_device(args.device)
        code: int = args.func(args)
    except (CLIError, ClapSetupError, AudioError, OSError, ValueError, TypeError) as error:
        message = str(error) if isinstance(error, ClapSetupError) else one_line(error)
        print(f"openriff-clap-bridge {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
