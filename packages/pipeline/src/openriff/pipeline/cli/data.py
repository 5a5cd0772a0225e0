"""``openriff data`` and ``openriff prepare``: songs in, latent shards out.

::

    openriff data synth --songs N --out DIR [--seed 0] [--bars 8] [--style wide] [--workers 1]
    openriff data corpus --out MIDI [--collection NAME ...] [--split all|train|validation]
    openriff data render --midi DIR --out DIR [--soundfont FILE] [--songs N] [--seed 0]
    openriff data codec-audio --data SONGS --out DIR --target bass [--layout generic]
    openriff prepare --data SONGS --out PREPARED (--codec CKPT | --codec-preset NAME)
        [--layout generic] [--clap CLAP.pt] [--window-latents 120] [--hop-seconds 3]
        [--context-chroma]

``prepare`` runs CLAP-free unless ``--clap`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openriff.latent_diffusion.flags import COUNT, POSITIVE, SEED, SHARE, Number
from openriff.pipeline.cli.sampling import add_device_flags


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Write synthetic multitrack songs in the generic layout (``data synth``)."""
    from openriff.pipeline.data.synth import synth_dataset

    folders = synth_dataset(
        args.out, args.songs, seed=args.seed, bars=args.bars, workers=args.workers,
        style=args.style,
    )  # fmt: skip
    print(f"{len(folders)} songs in {args.out}")
    return 0


def cmd_data_corpus(args: argparse.Namespace) -> int:
    """Export music21's corpus (never Bach) as arranged MIDI files (``data corpus``)."""
    from openriff.pipeline.data.corpus import COLLECTIONS, export_corpus

    report = export_corpus(
        args.out, args.collection or COLLECTIONS, split=args.split,
        validation=args.validation, pieces=args.pieces, seed=args.seed,
    )  # fmt: skip
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(
        f"{len(report.written)} pieces exported, {len(report.kept)} kept from before, "
        f"{len(report.skipped)} skipped, in {args.out}"
    )
    return 0


def cmd_data_render(args: argparse.Namespace) -> int:
    """Render MIDI files into multitrack songs in the generic layout (``data render``)."""
    from openriff.pipeline.data.render import RenderConfig, render_dataset

    config = RenderConfig(
        soundfont=args.soundfont, random_programs=not args.keep_programs,
        max_seconds=args.max_seconds,
    )  # fmt: skip
    report = render_dataset(args.midi, args.out, config, songs=args.songs, seed=args.seed)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(
        f"{len(report.written)} songs rendered, {len(report.kept)} kept from before, "
        f"{len(report.skipped)} files skipped, in {args.out}"
    )
    if not report.written and not report.kept:
        raise ValueError(f"no MIDI file under {args.midi} could be rendered")
    return 0


def cmd_data_codec_audio(args: argparse.Namespace) -> int:
    """Write target stems and the mix of the other stems per song (``data codec-audio``)."""
    from openriff.pipeline.data.codec_audio import write_codec_audio

    folders, report = write_codec_audio(
        args.data, args.out, args.target, layout=args.layout, split=split_of(args)
    )
    print(f"{len(folders)} songs in {args.out}")
    if report.skipped:
        print(report.summary())
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Encode songs into latent shards (``prepare``)."""
    import os

    import torch

    from openriff.pipeline.codecs import codec_source, load_codec
    from openriff.pipeline.data.prepare import prepare, prepare_config

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
        args.data, codec.hop_length, layout=args.layout, split=split_of(args),
        window_latents=args.window_latents,
        hop_seconds=args.hop_seconds, reference_seconds=args.reference_seconds,
        targets=args.target, validation=args.validation, seed=args.seed,
        context_chroma=args.context_chroma, context_lufs=args.context_lufs,
        level_augment_db=args.level_augment_db,
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


def cmd_data_levels(args: argparse.Namespace) -> int:
    """Print (and optionally write) the loudness of a data set's pairs (``data levels``)."""
    import json

    from openriff.pipeline.data.pairs import PairConfig
    from openriff.pipeline.data.survey import survey_levels

    pairs = PairConfig(
        window=round(args.window_latents * 4096), hop=int(args.hop_seconds * 48_000),
        targets=tuple(args.target),
    )  # fmt: skip
    survey = survey_levels(
        args.data, pairs, layout=args.layout, split=split_of(args), seed=args.seed,
        songs=args.songs,
    )  # fmt: skip
    summary = survey.summary()
    print(json.dumps(summary, indent=1))
    if args.json is not None:
        from openriff.pipeline.audio_io import check_outputs, write_together

        check_outputs([args.json], args.overwrite)
        text = json.dumps(summary, indent=1) + "\n"
        write_together({args.json: lambda tmp: Path(tmp).write_text(text)})
    return 0


def _lufs(text: str) -> float | None:
    """``--context-lufs``: a loudness in LUFS (-60 to 0), or ``none``."""
    return None if text.lower() == "none" else float(LUFS(text))


LUFS = Number(float, low=-60.0, high=0.0)  # as PrepareConfig takes it


STYLES = ("classic", "wide")  # openriff.pipeline.data.music.STYLES, without importing numpy
LAYOUTS = ("generic", "slakh", "musdb", "moisesdb")  # data.layout.READERS, likewise
SPLITS = ("train", "validation", "test")  # data.layout.SPLITS, likewise


def add_layout_flags(p: argparse.ArgumentParser, split: str) -> None:
    """``--layout`` and ``--split`` (default ``split``) of a command reading a data set."""
    p.add_argument(
        "--layout", default="generic", choices=LAYOUTS, help="how the data set is laid out"
    )
    p.add_argument(
        "--split", default=split, choices=(*SPLITS, "all"),
        help=f"official split of Slakh2100 or MUSDB18-HQ (default: {split}; all: every split, "
        "never Slakh's omitted/); other layouts are used whole",
    )  # fmt: skip


def split_of(args: argparse.Namespace) -> str | None:
    """The split ``--split`` names (None: all)."""
    return None if args.split == "all" else str(args.split)


def add_data_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``data`` and ``prepare`` to ``openriff``'s subparsers."""
    data = sub.add_parser("data", help="data sets").add_subparsers(dest="action", required=True)
    p = data.add_parser("synth", help="generate synthetic multitrack songs")
    p.add_argument("--songs", type=COUNT, required=True, help="how many songs")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the first song")
    p.add_argument("--bars", type=COUNT, default=8, help="length of each song in bars")
    p.add_argument(
        "--style", choices=sorted(STYLES), default="wide",
        help="what the songs are drawn from: wide (60-200 bpm, 4/4 3/4 6/8, seven modes, "
        "inversions, passing notes, rests, drumless sections, dynamics) or classic (4/4, "
        "80-140 bpm, major/minor, bass on the roots, always drums)",
    )  # fmt: skip
    p.add_argument("--workers", type=COUNT, default=1, help="processes (same songs as one)")
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("corpus", help="music21's corpus (never Bach) as arranged MIDI files")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument(
        "--collection", action="append", default=[],
        help="a music21 corpus collection, e.g. monteverdi (repeat; default: all multi-part "
        "ones but Bach)",
    )  # fmt: skip
    p.add_argument(
        "--split", default="all", choices=("all", "train", "validation"),
        help="music21 pieces of this split only (Bach is never exported)",
    )  # fmt: skip
    p.add_argument("--validation", type=SHARE, default=0.2, help="share of pieces held out")
    p.add_argument("--pieces", type=COUNT, default=None, help="at most this many pieces")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the split and the programs")
    p.set_defaults(func=cmd_data_corpus)
    p = data.add_parser("render", help="render MIDI files into multitrack songs (FluidSynth)")
    p.add_argument("--midi", type=Path, required=True, help="folder of .mid/.midi files")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument("--soundfont", type=Path, default=None, help="General MIDI .sf2")
    p.add_argument("--songs", type=COUNT, default=None, help="at most this many songs")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the program draws")
    p.add_argument(
        "--keep-programs", action="store_true",
        help="render each instrument with its own program, not a random one of its family",
    )  # fmt: skip
    p.add_argument("--max-seconds", type=POSITIVE, default=None, help="cut songs to this length")
    p.set_defaults(func=cmd_data_render)
    p = data.add_parser(
        "codec-audio", help="target stems and the mix of the other stems, to train a codec on"
    )
    p.add_argument("--data", type=Path, required=True, help="data set root")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed if present)")
    p.add_argument(
        "--target", action="append", required=True, help="target instrument (repeat for more)"
    )
    add_layout_flags(p, "train")
    p.set_defaults(func=cmd_data_codec_audio)

    p = data.add_parser("levels", help="loudness of the pairs a data set gives (LUFS)")
    p.add_argument("--data", type=Path, required=True, help="data set root")
    add_layout_flags(p, "train")
    p.add_argument("--target", action="append", default=[], help="target instrument (repeat)")
    p.add_argument("--window-latents", type=COUNT, default=120, help="window in 4096-sample frames")
    p.add_argument("--hop-seconds", type=POSITIVE, default=3.0, help="seconds between pair windows")
    p.add_argument("--songs", type=COUNT, default=None, help="only the first N songs")
    p.add_argument("--seed", type=SEED, default=0, help="preparation's seed (the same pairs)")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    p.set_defaults(func=cmd_data_levels)

    p = sub.add_parser("prepare", help="encode multitrack songs into latent shards")
    p.add_argument("--data", type=Path, required=True, help="data set root")
    p.add_argument("--out", type=Path, required=True, help="output folder (resumed)")
    add_layout_flags(p, "train")
    codec = p.add_mutually_exclusive_group(required=True)
    codec.add_argument(
        "--codec", type=Path,
        help="trained CAE checkpoint folder, or the official music2latent.pt ([music2latent])",
    )  # fmt: skip
    codec.add_argument("--codec-preset", help="untrained CAE preset (testing)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: no CLAP)")
    p.add_argument("--amodel", default=None, help="HTSAT-base or HTSAT-tiny")
    p.add_argument("--window-latents", type=COUNT, default=120, help="window in latent frames")
    p.add_argument("--hop-seconds", type=POSITIVE, default=3.0, help="seconds between pair windows")
    p.add_argument(
        "--reference-seconds", type=POSITIVE, default=10.0,
        help="length of the CLAP reference excerpt of each pair's target",
    )  # fmt: skip
    p.add_argument("--validation", type=SHARE, default=0.1, help="share of songs held out")
    p.add_argument(
        "--target", action="append", default=[],
        help="instrument a target may be (repeat; default: any non-vocal stem)",
    )  # fmt: skip
    p.add_argument(
        "--context-chroma", action="store_true",
        help="append a 12-bin chromagram of the context to its latents (for codecs whose "
        "latents keep little of the harmony; bundles built on it append it when generating)",
    )  # fmt: skip
    p.add_argument(
        "--context-lufs", type=_lufs, default=-14.0,
        help="bring contexts to this loudness (LUFS; 'none': keep the songs' levels)",
    )  # fmt: skip
    p.add_argument(
        "--level-augment-db", type=Number(float, low=0.0, high=20.0), default=6.0,
        help="draw each pair's level within +/- this many dB of --context-lufs",
    )  # fmt: skip
    p.add_argument("--seed", type=SEED, default=0, help="seed of the split and of the pairs")
    add_device_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prepare)
