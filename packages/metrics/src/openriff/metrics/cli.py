"""``openriff-metrics``: score embedding sets from the command line.

::

    openriff-metrics fad REFERENCE CANDIDATES [--infinity] [--batches K --batch-size N]
    openriff-metrics kd REFERENCE CANDIDATES [--subsets 100 --subset-size 1000 --degree 3]
    openriff-metrics prdc REFERENCE CANDIDATES [--k 5]
    openriff-metrics apa BACKGROUND MISALIGNED CANDIDATES [--distance fad|kd]
    openriff-metrics clap-score A B
    openriff-metrics embed AUDIO_DIR --embedder clap --clap CLAP.pt --out EMB.npy

Each input is an ``.npy`` file (``[N, D]``), a folder of ``.npy`` files, a reference
``.npz`` written with ``--save-reference``, or a folder of audio embedded on the fly with
``--embedder clap --clap CLAP.pt`` or ``--embedder fadtk:MODEL`` (cached under ``--cache``).
For ``apa``, an audio input is a folder of pairs, ``context/NAME.wav`` and
``accompaniment/NAME.wav``, mixed as :func:`openriff.metrics.pairs.mix_pair` does, and
MISALIGNED may be ``shuffle``: the background's accompaniments deranged (seeded). Every
command prints a table and, with ``--json PATH``, writes the result with every setting
used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openriff.metrics.__about__ import __version__
from openriff.metrics.apa import audio_prompt_adherence, clap_score
from openriff.metrics.errors import EmbedderUnavailable
from openriff.metrics.files import write_atomic
from openriff.metrics.flags import COUNT, POSITIVE, REAL, SEED, SIZE, Number, Parser, UsageError
from openriff.metrics.frechet import fad_infinity, frechet_distance
from openriff.metrics.inputs import load_embeddings, npy_files
from openriff.metrics.kernel import kernel_distance
from openriff.metrics.prdc import density_coverage
from openriff.metrics.protocol import Reference, batched, fad_against


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Inputs:
    """Turns a CLI input path into embeddings, building the embedder only if needed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._embedder: Any = None

    def embedder(self) -> Any:
        if self._embedder is None:
            from openriff.metrics.embedders import ClapEmbedder, FadtkEmbedder, check_device

            kind = self.args.embedder
            check_device(self.args.device)
            if kind is None:
                raise CLIError("audio inputs need --embedder clap (with --clap) or fadtk:MODEL")
            if kind == "clap":
                if self.args.clap is None:
                    raise CLIError("--embedder clap needs --clap CHECKPOINT.pt")
                self._embedder = ClapEmbedder(
                    self.args.clap,
                    amodel=self.args.amodel,
                    fusion=self.args.fusion,
                    device=self.args.device,
                )
            elif kind.startswith("fadtk:"):
                self._embedder = FadtkEmbedder(kind.removeprefix("fadtk:"))
            else:
                raise CLIError(f"unknown --embedder {kind!r} (clap or fadtk:MODEL)")
        return self._embedder

    def cache(self) -> Any:
        from openriff.metrics.cache import EmbeddingCache

        return None if self.args.cache is None else EmbeddingCache(self.args.cache)

    def is_audio(self, path: Path) -> bool:
        return path.is_dir() and not npy_files(path)

    def embeddings(self, path: Path, *, min_rows: int = 2) -> Any:
        if not self.is_audio(path):
            return load_embeddings(path, min_rows=min_rows)
        from openriff.metrics.audio import audio_files
        from openriff.metrics.embedders import embed_files

        files = audio_files(path)  # names an empty folder before asking for a model
        return embed_files(self.embedder(), files, self.cache())

    def pairs(self, path: Path, *, shuffle_of: Path | None = None) -> Any:
        """Embeddings of the mixed pairs of a pairs folder (or of its derangement)."""
        if shuffle_of is None and not self.is_audio(path):
            return load_embeddings(path)
        import numpy as np

        from openriff.metrics.audio import audio_files, load_mono
        from openriff.metrics.pairs import mix_pair

        root = shuffle_of if shuffle_of is not None else path
        contexts = audio_files(root / "context")
        accompaniments = {p.name: p for p in audio_files(root / "accompaniment")}
        missing = [c.name for c in contexts if c.name not in accompaniments]
        if missing:
            raise CLIError(f"{root / 'accompaniment'}: no file {missing[0]} for its context")
        partners = [accompaniments[c.name] for c in contexts]
        if shuffle_of is not None:
            if len(partners) < 2:
                raise CLIError(f"{root}: shuffling needs at least 2 pairs")
            rng = np.random.default_rng(self.args.seed)
            shift = int(rng.integers(1, len(partners)))
            order = rng.permutation(len(partners))
            # A cyclic shift along a random order: nobody keeps their own partner.
            n = len(partners)
            shuffled = list(partners)
            for k in range(n):
                shuffled[order[k]] = partners[order[(k + shift) % n]]
            partners = shuffled
        embedder = self.embedder()
        rate = embedder.sample_rate
        waves = [
            mix_pair(load_mono(c, rate), load_mono(a, rate), rate)
            for c, a in zip(contexts, partners, strict=True)
        ]
        return embedder.embed(waves)


def _reference(path: Path, inputs: _Inputs) -> Reference:
    if path.suffix == ".npz" and path.is_file():
        return Reference.load(path)
    return Reference.from_embeddings(inputs.embeddings(path), str(path))


def _need_embeddings(reference: Reference, path: Path, metric: str) -> Any:
    if reference.embeddings is None:
        raise CLIError(f"{metric} needs the reference embeddings; {path} holds statistics only")
    return reference.embeddings


def cmd_fad(args: argparse.Namespace) -> dict[str, Any]:
    """Fréchet distance (``fad``)."""
    if args.batches and args.batch_size < 2:  # the flags' own ranges are the parser's
        raise CLIError(f"with --batches, --batch-size must be >= 2, got {args.batch_size}")
    if args.save_reference is not None and args.save_reference.exists() and not args.overwrite:
        raise CLIError(f"{args.save_reference} exists; pass --overwrite to replace it")
    inputs = _Inputs(args)
    reference = _reference(args.reference, inputs)
    candidates = inputs.embeddings(args.candidates)
    if args.save_reference is not None:
        reference.save(args.save_reference, overwrite=args.overwrite)
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
    inputs = _Inputs(args)
    reference = _reference(args.reference, inputs)
    mean, std = kernel_distance(
        _need_embeddings(reference, args.reference, "kd"),
        inputs.embeddings(args.candidates),
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
    inputs = _Inputs(args)
    reference = _reference(args.reference, inputs)
    real = _need_embeddings(reference, args.reference, "prdc")
    return density_coverage(real, inputs.embeddings(args.candidates), k=args.k)


def cmd_apa(args: argparse.Namespace) -> dict[str, Any]:
    """Audio prompt adherence (``apa``)."""
    if args.distance == "fad":
        distance = frechet_distance
    else:

        def distance(x: Any, y: Any) -> float:
            return max(kernel_distance(x, y, seed=args.seed)[0], 0.0)

    inputs = _Inputs(args)
    if str(args.misaligned) == "shuffle":
        misaligned = inputs.pairs(args.background, shuffle_of=args.background)
    else:
        misaligned = inputs.pairs(args.misaligned)
    value = audio_prompt_adherence(
        inputs.pairs(args.background), misaligned, inputs.pairs(args.candidates), distance=distance
    )
    return {"apa": value}


def cmd_clap_score(args: argparse.Namespace) -> dict[str, Any]:
    """Mean cosine similarity of paired embeddings (``clap-score``)."""
    inputs = _Inputs(args)
    a = inputs.embeddings(args.a, min_rows=1)
    b = inputs.embeddings(args.b, min_rows=1)
    return {"clap_score": clap_score(a, b)}


def cmd_embed(args: argparse.Namespace) -> dict[str, Any]:
    """Embed a folder of audio into one ``.npy`` (``embed``)."""
    import numpy as np

    from openriff.metrics.audio import audio_files
    from openriff.metrics.embedders import embed_files

    if args.out.exists() and not args.overwrite:
        raise CLIError(f"{args.out} exists; pass --overwrite to replace it")
    inputs = _Inputs(args)
    files = audio_files(args.audio)
    array = embed_files(inputs.embedder(), files, inputs.cache())
    rows = array.astype(np.float32)
    listing = json.dumps([str(f) for f in files], indent=1) + "\n"
    write_atomic(args.out.with_suffix(".files.json"), lambda tmp: Path(tmp).write_text(listing))
    write_atomic(args.out, lambda tmp: np.save(tmp, rows, allow_pickle=False))
    return {"files": len(files), "dim": int(array.shape[1])}


def _write_json(path: Path, data: dict[str, Any], overwrite: bool) -> None:
    text = json.dumps(data, indent=2) + "\n"
    write_atomic(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)


def _table(result: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in result.items() if not isinstance(v, list)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v:.6g}" for k, v in rows)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openriff-metrics``."""
    parser = Parser(prog="openriff-metrics", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--embedder", default=None, help="for audio inputs: clap or fadtk:MODEL")
        p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP checkpoint (.pt)")
        p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny")
        p.add_argument(
            "--fusion", action=argparse.BooleanOptionalAction, default=None, help="fusion CLAP"
        )
        p.add_argument("--cache", type=Path, default=None, help="embedding cache folder")
        p.add_argument("--device", default="cpu", help="torch device of the embedder")
        p.add_argument("--seed", type=SEED, default=0, help="seed of every random choice")
        p.add_argument("--json", type=Path, default=None, help="write the result here")
        p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    def pair(p: argparse.ArgumentParser) -> None:
        p.add_argument("reference", type=Path, help=".npy, folder of .npy, or reference .npz")
        p.add_argument("candidates", type=Path, help=".npy or folder of .npy")

    p = sub.add_parser("fad", help="Fréchet distance")
    pair(p)
    p.add_argument("--infinity", action="store_true", help="also FAD-infinity")
    p.add_argument("--batches", type=SIZE, default=0, help="K batches (0: all candidates)")
    p.add_argument("--batch-size", type=SIZE, default=0, help="N candidates per batch")
    p.add_argument("--save-reference", type=Path, default=None, help="cache the reference .npz")
    common(p)
    p.set_defaults(func=cmd_fad)

    p = sub.add_parser("kd", help="kernel distance (unbiased polynomial MMD^2)")
    pair(p)
    p.add_argument("--subsets", type=COUNT, default=100, help="random subsets averaged")
    p.add_argument("--subset-size", type=Number(int, low=2), default=1000,
                   help="embeddings per subset")  # fmt: skip
    p.add_argument("--degree", type=COUNT, default=3, help="degree of the polynomial kernel")
    p.add_argument("--gamma", type=POSITIVE, default=None, help="default 1 / dim")
    p.add_argument("--coef0", type=REAL, default=1.0, help="constant of the polynomial kernel")
    common(p)
    p.set_defaults(func=cmd_kd)

    p = sub.add_parser("prdc", help="precision, recall, density, coverage")
    pair(p)
    p.add_argument("--k", type=COUNT, default=5, help="nearest neighbours")
    common(p)
    p.set_defaults(func=cmd_prdc)

    p = sub.add_parser("apa", help="audio prompt adherence")
    p.add_argument("background", type=Path, help="embeddings of matching pairs")
    p.add_argument("misaligned", type=Path, help="embeddings of mismatched pairs, or 'shuffle'")
    p.add_argument("candidates", type=Path, help="embeddings of the pairs to judge")
    p.add_argument(
        "--distance", choices=("fad", "kd"), default="fad", help="distance between embedding sets"
    )
    common(p)
    p.set_defaults(func=cmd_apa)

    p = sub.add_parser("clap-score", help="mean cosine similarity of paired embeddings")
    p.add_argument("a", type=Path, help="embeddings .npy [N, D]")
    p.add_argument("b", type=Path, help="embeddings .npy [N, D], row i paired with a's row i")
    common(p)
    p.set_defaults(func=cmd_clap_score)

    p = sub.add_parser("embed", help="embed a folder of audio into one .npy")
    p.add_argument("audio", type=Path, help="folder of audio files")
    p.add_argument("--out", type=Path, required=True, help="output .npy ([N, D] float32)")
    common(p)
    p.set_defaults(func=cmd_embed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with one message on bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:  # a flag out of its range, a missing argument, ...
        print(error, file=sys.stderr)
        return 2
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
    except (CLIError, OSError, ValueError, ImportError, EmbedderUnavailable) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        message = "; ".join(lines) or type(error).__name__
        print(f"openriff-metrics {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
