"""The generation commands' shared flags, derived from :class:`Sampling`'s fields.

Each field of :class:`~openriff.pipeline.generation.options.Sampling` declares its flag,
help, range and parser; a new sampling option therefore appears here without a change.
Recommendable settings default to None on the command line, so that the bundle's
recommendation (else the library's default) applies when they are left out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from openriff.latent_diffusion.flags import COUNT, Number
from openriff.pipeline.generation.options import Sampling


def _flag(item: Field[Any]) -> str:
    return item.metadata["flag"] or "--" + item.name.replace("_", "-")


def _help(item: Field[Any]) -> str:
    meta, default = item.metadata, item.default
    shown = "the bundle's, else " + repr(default) if meta["recommend"] else repr(default)
    if meta["choices"]:
        return f"{meta['help']}: {', '.join(meta['choices'])} (default: {shown})"
    if meta["high"] is not None:
        span = f"{meta['low']:g}-{meta['high']:g}; default: {shown}"
        return f"{meta['help']} ({span})"
    if default is None or isinstance(default, bool):
        return meta["help"]
    return f"{meta['help']} (default: {shown})"


def _parser(item: Field[Any]) -> Callable[[str], Any]:
    """The field's parser; for a number, one that checks the field's range as it parses."""
    meta = item.metadata
    kind = meta["parse"] or type(item.default)
    if kind not in (int, float) or meta["low"] is None:
        return kind
    if meta["below"] is not None:
        return Number(kind, meta["low"], meta["below"], open_high=True)
    return Number(kind, meta["low"], meta["high"])


def add_sampling_flags(
    p: argparse.ArgumentParser, *, only: Collection[str] | None = None, candidates: bool = True
) -> None:
    """Add a flag per :class:`Sampling` field (those in ``only``, if given).

    Args:
        p: the command's parser.
        only: field names to add (default: all).
        candidates: add ``--candidates`` (commands making one stem per part do not).
    """
    for item in fields(Sampling):
        if (only is not None and item.name not in only) or (
            item.name == "num_candidates" and not candidates
        ):
            continue
        meta = item.metadata
        assert item.default is not MISSING  # every option has a default
        if isinstance(item.default, bool):  # on by default: the flag turns it off
            p.add_argument(_flag(item), dest=item.name, action="store_false", help=meta["help"])
            continue
        parse = _parser(item)
        default = None if meta["recommend"] else item.default
        metavar = _flag(item).lstrip("-").replace("-", "_").upper()
        p.add_argument(
            _flag(item), dest=item.name, type=parse, default=default, metavar=metavar,
            help=_help(item),
        )  # fmt: skip


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`Sampling` options the flags give (None where left to the bundle)."""
    return {f.name: getattr(args, f.name) for f in fields(Sampling) if hasattr(args, f.name)}


def check_sampling_flags(args: argparse.Namespace) -> None:
    """Refuse out-of-range flags before any model loads (the bundle fills the rest later)."""
    Sampling(**{k: v for k, v in sampling_options(args).items() if v is not None})


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """Where the model and its third-party weights are."""
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: shipped)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: as bundled)")
    p.add_argument(
        "--music2latent", type=Path, default=None,
        help="music2latent.pt on this machine, for bundles built on it (default: as bundled)",
    )  # fmt: skip


def add_precision_flag(p: argparse.ArgumentParser) -> None:
    """``--precision``: fp32, or bf16 autocast (:mod:`openriff.latent_diffusion.precision`)."""
    from openriff.latent_diffusion.precision import CHOICES

    p.add_argument(
        "--precision", default="auto", choices=CHOICES,
        help="arithmetic of encoding, sampling and decoding: bf16 (autocast) or fp32 (TF32 "
        "matrix products on CUDA); auto: bf16 on CUDA, fp32 on a CPU (default: auto)",
    )  # fmt: skip


def add_compile_flag(p: argparse.ArgumentParser) -> None:
    """``--compile``: the denoiser through ``torch.compile`` (off by default)."""
    p.add_argument(
        "--compile", action="store_true",
        help="compile the denoiser with torch.compile: its first step of each window shape "
        "takes seconds to a minute, the rest run faster (long or repeated generations on a "
        "GPU); off by default",
    )  # fmt: skip


def add_device_flags(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``: where a command runs, and on how many CPU threads."""
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument(
        "--threads", type=COUNT, default=None,
        help="CPU threads for torch (default: torch's, one per core); on a shared or busy "
        "machine give each process 1 or a few: oversubscribed cores run many times slower",
    )  # fmt: skip
