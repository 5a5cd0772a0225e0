"""The generation commands of ``openriff``: generate, inpaint, vary, loop, interpolate, song.

::

    openriff generate --context song.wav --prompt "slap bass" [--reference ref.wav]
        [--bundle DIR] [--seed N] --out stem.wav [--mix mix.wav] [--plot] [--bits 24]
    openriff inpaint --stem stem.wav --start 4 --end 8 [--context song.wav] --out new.wav
    openriff vary --stem stem.wav --strength 0.5 [--context song.wav] --out var.wav
    openriff loop --bars 4 --bpm 120 [--context drums.wav] --prompt "funk guitar" --out loop.wav
    openriff interpolate --from-prompt "warm pad" --to-reference ref.wav --points 5 --out i.wav
    openriff song --prompt "drums" --prompt "bass" --prompt "piano" --duration 20 --out DIR

Without ``--bundle`` the default model is used (``OPENRIFF_BUNDLE``, else the one installed
with openriff-pipeline). Every command writes, next to its audio, a JSON sidecar with
every setting, the seed and the model's fingerprint: the same command with that seed
reproduces the audio bit for bit on the same machine. Files appear only when all of them
are complete; existing files are refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from openriff.latent_diffusion.flags import COUNT, POSITIVE, REAL, UNIT, Number
from openriff.pipeline.cli.argv import reference_part
from openriff.pipeline.cli.outputs import (
    check_request_flags,
    exclusive,
    load_pipeline,
    report,
    run,
    write_outputs,
)
from openriff.pipeline.cli.sampling import (
    add_compile_flag,
    add_device_flags,
    add_model_flags,
    add_precision_flag,
    add_sampling_flags,
    sampling_options,
)

if TYPE_CHECKING:
    from openriff.pipeline.audio_io import AudioInput

# Commands a sidecar may ask `openriff rerun` to repeat: generation only, never training
# or data commands (a sidecar may come from someone else).
RERUNNABLE = ("generate", "inpaint", "vary", "loop", "interpolate", "song", "demo")


def _conditioning_args(p: argparse.ArgumentParser, context_help: str) -> None:
    p.add_argument("--context", type=Path, default=None, help=context_help)
    p.add_argument("--prompt", default=None, help="text describing the stem (CLAP_T)")
    p.add_argument("--reference", type=Path, default=None, help="a recording to match (CLAP_A)")


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output .wav or .flac")
    p.add_argument("--mix", type=Path, default=None, help="also write context + stem here")


def add_run_flags(p: argparse.ArgumentParser, *, candidates: bool = True) -> None:
    """The flags every generation command shares: model, sampling, output format, device."""
    add_model_flags(p)
    add_sampling_flags(p, candidates=candidates)
    p.add_argument("--bits", default="24", choices=("16", "24", "float"), help="sample format")
    p.add_argument("--plot", action="store_true", help="also write a spectrogram PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_device_flags(p)
    add_precision_flag(p)
    add_compile_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_generate(args: argparse.Namespace) -> int:
    """``openriff generate``: a stem that fits the context."""
    if args.mix is not None and args.context is None:
        raise ValueError("--mix needs a --context to mix the stem with")
    # The context file is read as it is needed, never held whole: a long song fits.
    return run(args, args.num_candidates, lambda pipeline: pipeline.generate(
        args.context, args.prompt, args.reference, duration=args.duration,
        clap_embedding=args.clap_embedding, clap_unconditional=args.clap_unconditional,
        keep_context=False, **sampling_options(args),
    ), seconds=args.duration)  # fmt: skip


def cmd_inpaint(args: argparse.Namespace) -> int:
    """``openriff inpaint``: regenerate (or extend) a time range of a stem."""
    if not args.start < args.end:  # each is finite: the parser's check
        raise ValueError(f"--start must be before --end, got {args.start} and {args.end}")
    return run(args, args.num_candidates, lambda pipeline: pipeline.inpaint(
        args.stem, args.start, args.end, args.context, args.prompt, args.reference,
        **sampling_options(args),
    ), seconds=max(args.end, 0.0) - min(args.start, 0.0))  # fmt: skip


def cmd_vary(args: argparse.Namespace) -> int:
    """``openriff vary``: variations of a stem."""
    return run(args, args.num_candidates, lambda pipeline: pipeline.vary(
        args.stem, args.strength, args.context, args.prompt, args.reference,
        **sampling_options(args),
    ))  # fmt: skip


def cmd_loop(args: argparse.Namespace) -> int:
    """``openriff loop``: a seamless loop of N bars."""
    seconds = args.bars * args.beats_per_bar * 60.0 / args.bpm
    return run(args, args.num_candidates, lambda pipeline: pipeline.loop(
        args.bars, args.bpm, args.context, args.prompt, args.reference,
        beats_per_bar=args.beats_per_bar, exact_tempo=not args.keep_pitch, **sampling_options(args),
    ), seconds=seconds)  # fmt: skip


def _endpoint(prompt: str | None, reference: Path | None, which: str) -> str | AudioInput:
    if (prompt is None) == (reference is None):
        raise ValueError(f"give exactly one of --{which}-prompt and --{which}-reference")
    if prompt is not None:
        return prompt
    assert reference is not None
    return reference


def cmd_interpolate(args: argparse.Namespace) -> int:
    """``openriff interpolate``: stems between two prompts or references."""
    start = _endpoint(args.from_prompt, args.from_reference, "from")
    end = _endpoint(args.to_prompt, args.to_reference, "to")
    return run(args, args.points, lambda pipeline: pipeline.interpolate(
        start, end, args.context, points=args.points, duration=args.duration,
        **sampling_options(args),
    ), seconds=args.duration)  # fmt: skip


def cmd_song(args: argparse.Namespace) -> int:
    """``openriff song``: one stem per prompt, each fitting the previous ones."""
    from openriff.pipeline.audio_io import check_outputs

    if not args.parts:
        raise ValueError("song needs at least one --prompt or --reference")
    folder = args.out
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; song writes a folder")
    suffix = f".{args.format}"
    check_request_flags(args, args.duration, len(args.parts))
    stems = [folder / f"part-{i}{suffix}" for i in range(1, len(args.parts) + 1)]
    mixes, sidecar, plot = [folder / f"mix{suffix}"], folder / "song.json", folder / "song.png"
    outputs = [*stems, *mixes, sidecar, *([plot] if args.plot else [])]
    check_outputs(outputs, args.overwrite)
    with exclusive(outputs, args.overwrite):
        pipeline = load_pipeline(args)
        generation = pipeline.song(
            [kind_value[1] for kind_value in args.parts], args.context, duration=args.duration,
            **sampling_options(args),
        )  # fmt: skip
        paths = write_outputs(args, pipeline, generation, stems, mixes=mixes, sidecar=sidecar,
                              plot=plot)  # fmt: skip
    return report(paths, generation)


def add_generation_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the generation commands to ``openriff``'s subparsers."""
    p = sub.add_parser("generate", help="generate a stem that fits a context")
    _conditioning_args(p, "the music to accompany (.wav/.flac/...)")
    p.add_argument("--duration", type=POSITIVE, default=None, help="seconds, without --context")
    p.add_argument(
        "--clap-embedding", type=Path, default=None,
        help="a CLAP embedding .npy ([512] or [1, 512]) to condition on as such (CLAP_E)",
    )  # fmt: skip
    p.add_argument(
        "--clap-unconditional", action="store_true",
        help="condition on an audio embedding the bridge prior draws without a prompt "
        "(CLAP_A*; bundles with a bridge)",
    )  # fmt: skip
    _output_args(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("inpaint", help="regenerate or extend a time range of a stem")
    p.add_argument("--stem", type=Path, required=True, help="the stem to edit")
    p.add_argument("--start", type=REAL, required=True, help="seconds (< 0: prepend)")
    p.add_argument("--end", type=REAL, required=True, help="seconds (> length: extend)")
    _conditioning_args(p, "the music the stem belongs to, covering the output")
    _output_args(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("vary", help="variations of a stem")
    p.add_argument("--stem", type=Path, required=True, help="the stem to vary")
    p.add_argument("--strength", type=UNIT, default=0.5, help="0 (same) to 1 (new)")
    _conditioning_args(p, "the music the stem belongs to")
    _output_args(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_vary)

    p = sub.add_parser("loop", help="a seamless loop of N bars at a tempo")
    p.add_argument("--bars", type=COUNT, default=4, help="loop length in bars")
    p.add_argument(
        "--bpm",
        type=Number(float, low=20.0, high=400.0),
        default=120.0,
        help="tempo, 20-400 beats per minute",
    )
    p.add_argument("--beats-per-bar", type=COUNT, default=4, help="beats in a bar")
    p.add_argument(
        "--keep-pitch",
        action="store_true",
        help="do not resample to the exact tempo (the sidecar gives the loop's bpm)",
    )
    _conditioning_args(p, "a loop of the other instruments (its first bars are used)")
    _output_args(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_loop)

    p = sub.add_parser("interpolate", help="stems between two prompts or references")
    p.add_argument("--from-prompt", default=None, help="the first end, described in text")
    p.add_argument(
        "--from-reference", type=Path, default=None, help="the first end, given by a recording"
    )
    p.add_argument("--to-prompt", default=None, help="the last end, described in text")
    p.add_argument(
        "--to-reference", type=Path, default=None, help="the last end, given by a recording"
    )
    p.add_argument(
        "--points", type=Number(int, low=2), default=5, help="stems from start to end (>= 2)"
    )
    p.add_argument("--context", type=Path, default=None, help="the music to accompany")
    p.add_argument("--duration", type=POSITIVE, default=None, help="seconds, without --context")
    _output_args(p)
    add_run_flags(p, candidates=False)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("song", help="a whole song, one stem per prompt or reference")
    p.add_argument("--prompt", dest="parts", action="append", type=lambda s: ("prompt", s),
                   help="a part described in text (repeat; order kept)")  # fmt: skip
    p.add_argument("--reference", dest="parts", action="append", type=reference_part,
                   help="a part given by a recording (repeat; order kept)")  # fmt: skip
    p.add_argument("--context", type=Path, default=None, help="music to start from")
    p.add_argument("--duration", type=POSITIVE, default=None, help="seconds, without --context")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format", default="wav", choices=("wav", "flac"), help="audio format of the files"
    )
    add_run_flags(p, candidates=False)
    p.set_defaults(func=cmd_song)
