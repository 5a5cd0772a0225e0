"""``openriff-metrics``: score embedding sets from the command line.

::

    openriff-metrics fad REFERENCE CANDIDATES [--infinity] [--batches K --batch-size N]
    openriff-metrics kd REFERENCE CANDIDATES [--subsets 100 --subset-size 1000 --degree 3]
    openriff-metrics prdc REFERENCE CANDIDATES [--k 5]
    openriff-metrics apa BACKGROUND MISALIGNED CANDIDATES [--distance fad|kd]
    openriff-metrics clap-score A B

Each input is an ``.npy`` file (``[N, D]``), a folder of ``.npy`` files, or (``fad``) a
reference ``.npz`` written with ``--save-reference``. Every command prints a table and,
with ``--json PATH``, writes the result with every setting used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openriff.metrics.__about__ import __version__
from openriff.metrics.apa import audio_prompt_adherence, clap_score
from openriff.metrics.frechet import fad_infinity, frechet_distance
from openriff.metrics.inputs import load_embeddings
from openriff.metrics.kernel import kernel_distance
from openriff.metrics.prdc import density_coverage
from openriff.metrics.protocol import Reference, batched, fad_against


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _reference(path: Path) -> Reference:
    if path.suffix == ".npz" and path.is_file():
        return Reference.load(path)
    return Reference.from_embeddings(load_embeddings(path), str(path))


def _need_embeddings(reference: Reference, path: Path, metric: str) -> Any:
    if reference.embeddings is None:
        raise CLIError(f"{metric} needs the reference embeddings; {path} holds statistics only")
    return reference.embeddings


def cmd_fad(args: argparse.Namespace) -> dict[str, Any]:
    """Fréchet distance (``fad``)."""
    reference = _reference(args.reference)
    candidates = load_embeddings(args.candidates)
    if args.save_reference is not None:
        reference.save(args.save_reference)
    result: dict[str, Any] = {}
    if args.batches:
        mean, std, values = batched(
            fad_against(reference), candidates, args.batches, args.batch_size, args.seed
        )
        result.update(fad=mean, fad_std=std, fad_batches=values)
    else:
        result["fad"] = fad_against(reference)(candidates)
    if args.infinity:
        value, r2 = fad_infinity(candidates, reference.mu, reference.cov, seed=args.seed)
        result.update(fad_infinity=value, fad_infinity_r2=r2)
    return result


def cmd_kd(args: argparse.Namespace) -> dict[str, Any]:
    """Kernel distance (``kd``)."""
    reference = _reference(args.reference)
    mean, std = kernel_distance(
        _need_embeddings(reference, args.reference, "kd"),
        load_embeddings(args.candidates),
        subsets=args.subsets,
        subset_size=args.subset_size,
        degree=args.degree,
        gamma=args.gamma,
        coef0=args.coef0,
        seed=args.seed,
    )
    return {"kd": mean, "kd_std": std}


def cmd_prdc(args: argparse.Namespace) -> dict[str, Any]:
    """Precision, recall, density and coverage (``prdc``)."""
    reference = _reference(args.reference)
    real = _need_embeddings(reference, args.reference, "prdc")
    return density_coverage(real, load_embeddings(args.candidates), k=args.k)


def cmd_apa(args: argparse.Namespace) -> dict[str, Any]:
    """Audio prompt adherence (``apa``)."""
    if args.distance == "fad":
        distance = frechet_distance
    else:

        def distance(x: Any, y: Any) -> float:
            return max(kernel_distance(x, y, seed=args.seed)[0], 0.0)

    value = audio_prompt_adherence(
        load_embeddings(args.background),
        load_embeddings(args.misaligned),
        load_embeddings(args.candidates),
        distance=distance,
    )
    return {"apa": value}


def cmd_clap_score(args: argparse.Namespace) -> dict[str, Any]:
    """Mean cosine similarity of paired embeddings (``clap-score``)."""
    a = load_embeddings(args.a, min_rows=1)
    b = load_embeddings(args.b, min_rows=1)
    return {"clap_score": clap_score(a, b)}


def _write_json(path: Path, data: dict[str, Any], overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise CLIError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items() if not isinstance(v, list)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v:.6g}" for k, v in rows)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff-metrics``."""
    parser = argparse.ArgumentParser(prog="openriff-metrics", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
        p.add_argument("--json", type=Path, default=None, help="write the result here")
        p.add_argument("--overwrite", action="store_true", help="replace an existing --json")

    def pair(p: argparse.ArgumentParser) -> None:
        p.add_argument("reference", type=Path, help=".npy, folder of .npy, or reference .npz")
        p.add_argument("candidates", type=Path, help=".npy or folder of .npy")

    p = sub.add_parser("fad", help="Fréchet distance")
    pair(p)
    p.add_argument("--infinity", action="store_true", help="also FAD-infinity")
    p.add_argument("--batches", type=int, default=0, help="K batches (0: all candidates)")
    p.add_argument("--batch-size", type=int, default=0, help="N candidates per batch")
    p.add_argument("--save-reference", type=Path, default=None, help="cache the reference .npz")
    common(p)
    p.set_defaults(func=cmd_fad)

    p = sub.add_parser("kd", help="kernel distance (unbiased polynomial MMD^2)")
    pair(p)
    p.add_argument("--subsets", type=int, default=100)
    p.add_argument("--subset-size", type=int, default=1000)
    p.add_argument("--degree", type=int, default=3)
    p.add_argument("--gamma", type=float, default=None, help="default 1 / dim")
    p.add_argument("--coef0", type=float, default=1.0)
    common(p)
    p.set_defaults(func=cmd_kd)

    p = sub.add_parser("prdc", help="precision, recall, density, coverage")
    pair(p)
    p.add_argument("--k", type=int, default=5, help="nearest neighbours")
    common(p)
    p.set_defaults(func=cmd_prdc)

    p = sub.add_parser("apa", help="audio prompt adherence")
    p.add_argument("background", type=Path, help="embeddings of matching pairs")
    p.add_argument("misaligned", type=Path, help="embeddings of mismatched pairs")
    p.add_argument("candidates", type=Path, help="embeddings of the pairs to judge")
    p.add_argument("--distance", choices=("fad", "kd"), default="fad")
    common(p)
    p.set_defaults(func=cmd_apa)

    p = sub.add_parser("clap-score", help="mean cosine similarity of paired embeddings")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    common(p)
    p.set_defaults(func=cmd_clap_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.json is not None and args.json.exists() and not args.overwrite:
            raise CLIError(f"{args.json} exists; pass --overwrite to replace it")
        result = args.func(args)
        settings = {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k not in ("func", "json", "overwrite")
        }
        print(_table(result))
        if args.json is not None:
            record = {"result": result, "settings": settings, "version": __version__}
            _write_json(args.json, record, args.overwrite)
    except (CLIError, FileNotFoundError, ValueError) as error:
        print(f"openriff-metrics {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
