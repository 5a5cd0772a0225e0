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
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from openriff.pipeline.generate import AccompanimentPipeline, Generation
    from openriff.pipeline.synth import SynthSong

AUDIO_SUFFIXES = (".wav", ".flac")
# Commands a sidecar may ask `openriff rerun` to repeat: generation only, never training
# or data commands (a sidecar may come from someone else).
RERUNNABLE = ("generate", "inpaint", "vary", "loop", "interpolate", "song", "demo")
# Stems one command makes (candidates, interpolation points, song parts): each is a file.
MAX_STEMS = 64


def _sampling_args(p: argparse.ArgumentParser, *, candidates: bool = True) -> None:
    """Options every generation command shares."""
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: shipped)")
    p.add_argument("--clap", type=Path, default=None, help="LAION-CLAP .pt (default: as bundled)")
    p.add_argument(
        "--music2latent", type=Path, default=None,
        help="music2latent.pt on this machine, for bundles built on it (default: as bundled)",
    )  # fmt: skip
    # Left out, these six take the bundle's recommendation, else the library's default.
    p.add_argument("--steps", type=int, default=None, help="sampler steps (1-1000; 30)")
    p.add_argument("--sampler", default=None, help="heun, euler, ddim or consistency (heun)")
    p.add_argument("--cfg-context", type=float, default=None, help="context guidance (0-20)")
    p.add_argument("--cfg-clap", type=float, default=None, help="CLAP guidance (0-20)")
    p.add_argument("--cfg-rescale", type=float, default=None, help="CFG rescale (0-1; 0)")
    p.add_argument("--stereo-width", type=float, default=None, help="pseudo-stereo (0-1; 0.4)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: drawn, recorded)")
    if candidates:
        p.add_argument("--candidates", type=int, default=1, help="stems to generate")
    p.add_argument("--no-bridge", action="store_true", help="prompts skip the bridge prior")
    p.add_argument("--style-reference", type=Path, default=None, help="ground style to this")
    p.add_argument("--style-strength", type=float, default=1.0)
    p.add_argument("--bits", default="24", choices=("16", "24", "float"), help="sample format")
    p.add_argument("--plot", action="store_true", help="also write a spectrogram PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _conditioning_args(p: argparse.ArgumentParser, context_help: str) -> None:
    p.add_argument("--context", type=Path, default=None, help=context_help)
    p.add_argument("--prompt", default=None, help="text describing the stem (CLAP_T)")
    p.add_argument("--reference", type=Path, default=None, help="a recording to match (CLAP_A)")


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output .wav or .flac")
    p.add_argument("--mix", type=Path, default=None, help="also write context + stem here")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The Sampling options the flags give."""
    return {
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg_context": args.cfg_context,
        "cfg_clap": args.cfg_clap,
        "cfg_rescale": args.cfg_rescale,
        "stereo_width": args.stereo_width,
        "seed": args.seed,
        "num_candidates": getattr(args, "candidates", 1),
        "use_bridge": not args.no_bridge,
        "style_reference": args.style_reference,
        "style_strength": args.style_strength,
    }


def _numbered(path: Path, count: int) -> list[Path]:
    """``path`` for one output; ``name-1.wav``, ``name-2.wav``, ... for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def _audio_path(path: Path, flag: str) -> Path:
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise ValueError(f"{flag} {path}: write .wav or .flac")
    return path


def _pipeline(args: argparse.Namespace) -> AccompanimentPipeline:
    import torch

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.generate import AccompanimentPipeline

    bundle = args.bundle if args.bundle is not None else default_bundle()
    return AccompanimentPipeline.from_pretrained(
        bundle, device=torch.device(args.device), clap_checkpoint=args.clap,
        codec_checkpoint=args.music2latent, progress=not args.quiet,
    )  # fmt: skip


def _write(
    args: argparse.Namespace,
    pipeline: AccompanimentPipeline,
    generation: Generation,
    stems: list[Path],
    *,
    mixes: list[Path] | None = None,
    context: Path | None = None,
    sidecar: Path,
    plot: Path,
) -> list[Path]:
    """Write the stems, mixes, sidecar and plot together (all or nothing)."""
    from openriff.pipeline.audio_io import (
        audio_writer,
        load_input,
        mix,
        plot_writer,
        write_together,
    )

    rate = generation.sample_rate
    writers: dict[Path, Callable[[str], object]] = {}
    for path, audio in zip(stems, generation.audio, strict=True):
        writers[path] = audio_writer(audio, rate, args.bits)
    context_wave = None
    if context is not None:  # mixed over the stem's length (a loop uses its first bars)
        context_wave = load_input(context, "context").numpy()[:, : generation.audio.shape[-1]]
    gains = []
    if generation.mix is not None:  # a song: the pipeline mixed it
        writers[(mixes or [])[0]] = audio_writer(generation.mix, rate, args.bits)
    elif mixes:
        for path, audio in zip(mixes, generation.audio, strict=True):
            parts = [audio] if context_wave is None else [context_wave, audio]
            together, gain = mix(parts)
            gains.append(gain)
            writers[path] = audio_writer(together, rate, args.bits)
    panels = [] if context_wave is None else [("context", context_wave)]
    named = zip(stems, generation.audio, strict=True)
    panels += [(f"stem {path.name}", audio) for path, audio in named][:4]
    if generation.mix is not None:
        panels.append(("mix", generation.mix))
    if args.plot:
        writers[plot] = plot_writer(panels, rate)
    record = {
        "command": ["openriff", *sys.argv[1:]] if args.argv is None else ["openriff", *args.argv],
        "settings": generation.settings,
        "model": pipeline.fingerprint(),
        "outputs": {
            "stems": [p.name for p in stems],
            "mixes": [p.name for p in mixes or []],
            "mix_gains": gains or None,
            "plot": plot.name if args.plot else None,
            "sample_rate": rate,
            "bits": args.bits,
        },
    }
    text = json.dumps(record, indent=1, default=str) + "\n"
    writers[sidecar] = lambda tmp: Path(tmp).write_text(text)
    return write_together(writers)


def _planned(args: argparse.Namespace, count: int) -> tuple[list[Path], list[Path], Path, Path]:
    """Output paths of a single-file command, checked before any work."""
    from openriff.pipeline.audio_io import check_outputs

    out = _audio_path(args.out, "--out")
    stems = _numbered(out, count)
    mixes = [] if args.mix is None else _numbered(_audio_path(args.mix, "--mix"), count)
    sidecar, plot = out.with_suffix(".json"), out.with_suffix(".png")
    check_outputs([*stems, *mixes, sidecar, *([plot] if args.plot else [])], args.overwrite)
    return stems, mixes, sidecar, plot


@contextlib.contextmanager
def _exclusive(paths: list[Path], overwrite: bool) -> Iterator[None]:
    """Hold the writer's lock of every output, and check the outputs again under it.

    A writer that just finished leaves files that are then refused; one still running is
    named by the lock.
    """
    from openriff.latent_diffusion.files import writer_lock
    from openriff.pipeline.audio_io import check_outputs

    with writer_lock(paths):
        check_outputs(paths, overwrite)
        yield


def _request(args: argparse.Namespace, seconds: float | None, stems: int) -> None:
    """Refuse, before the model loads, settings out of range or a request too large."""
    from openriff.pipeline.generate import Sampling
    from openriff.pipeline.limits import check_request, seconds_to_samples

    given = {k: v for k, v in _options(args).items() if v is not None}
    Sampling(**given)  # the bundle's recommendations fill what is left out, later
    if stems > MAX_STEMS:
        raise ValueError(f"at most {MAX_STEMS} stems per run, got {stems}")
    if seconds is not None:
        check_request(seconds_to_samples(seconds, "the output's length"), stems, args.command)


def _report(paths: list[Path], generation: Generation) -> int:
    seconds = generation.audio.shape[-1] / generation.sample_rate
    print(f"{len(paths)} files written ({seconds:.2f} s, seed {generation.settings['seed']}):")
    for path in paths:
        print(f"  {path}")
    return 0


def _run(
    args: argparse.Namespace,
    count: int,
    make: Callable[[AccompanimentPipeline], Generation],
    seconds: float | None = None,
) -> int:
    """Plan and check the outputs, load the model, generate with ``make``, write.

    ``seconds`` (when known before reading any audio) is the output's length, checked
    against :mod:`openriff.pipeline.limits` before the model loads.
    """
    _request(args, seconds, count)
    stems, mixes, sidecar, plot = _planned(args, count)
    with _exclusive([*stems, *mixes, sidecar, *([plot] if args.plot else [])], args.overwrite):
        pipeline = _pipeline(args)
        generation = make(pipeline)
        paths = _write(args, pipeline, generation, stems, mixes=mixes, context=args.context,
                       sidecar=sidecar, plot=plot)  # fmt: skip
    return _report(paths, generation)


def cmd_generate(args: argparse.Namespace) -> int:
    """``openriff generate``: a stem that fits the context."""
    if args.mix is not None and args.context is None:
        raise ValueError("--mix needs a --context to mix the stem with")
    return _run(args, args.candidates, lambda pipeline: pipeline.generate(
        args.context, args.prompt, args.reference, duration=args.duration, **_options(args),
    ), seconds=args.duration)  # fmt: skip


def cmd_inpaint(args: argparse.Namespace) -> int:
    """``openriff inpaint``: regenerate (or extend) a time range of a stem."""
    if not (math.isfinite(args.start) and math.isfinite(args.end) and args.start < args.end):
        raise ValueError(f"--start and --end must be finite with start < end, got "
                         f"{args.start}, {args.end}")  # fmt: skip
    return _run(args, args.candidates, lambda pipeline: pipeline.inpaint(
        args.stem, args.start, args.end, args.context, args.prompt, args.reference,
        **_options(args),
    ), seconds=max(args.end, 0.0) - min(args.start, 0.0))  # fmt: skip


def cmd_vary(args: argparse.Namespace) -> int:
    """``openriff vary``: variations of a stem."""
    return _run(args, args.candidates, lambda pipeline: pipeline.vary(
        args.stem, args.strength, args.context, args.prompt, args.reference, **_options(args),
    ))  # fmt: skip


def cmd_loop(args: argparse.Namespace) -> int:
    """``openriff loop``: a seamless loop of N bars."""
    if args.bars < 1 or args.beats_per_bar < 1 or not 20.0 <= args.bpm <= 400.0:
        raise ValueError(f"--bars and --beats-per-bar must be >= 1 and --bpm in [20, 400], got "
                         f"{args.bars}, {args.beats_per_bar}, {args.bpm}")  # fmt: skip
    seconds = args.bars * args.beats_per_bar * 60.0 / args.bpm
    return _run(args, args.candidates, lambda pipeline: pipeline.loop(
        args.bars, args.bpm, args.context, args.prompt, args.reference,
        beats_per_bar=args.beats_per_bar, exact_tempo=not args.keep_pitch, **_options(args),
    ), seconds=seconds)  # fmt: skip


def _endpoint(prompt: str | None, reference: Path | None, which: str) -> Any:
    if (prompt is None) == (reference is None):
        raise ValueError(f"give exactly one of --{which}-prompt and --{which}-reference")
    return prompt if prompt is not None else reference


def cmd_interpolate(args: argparse.Namespace) -> int:
    """``openriff interpolate``: stems between two prompts or references."""
    start = _endpoint(args.from_prompt, args.from_reference, "from")
    end = _endpoint(args.to_prompt, args.to_reference, "to")
    if args.points < 2:
        raise ValueError(f"--points must be >= 2, got {args.points}")
    return _run(args, args.points, lambda pipeline: pipeline.interpolate(
        start, end, args.context, points=args.points, duration=args.duration,
        **_options(args),
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
    _request(args, args.duration, len(args.parts))
    stems = [folder / f"part-{i}{suffix}" for i in range(1, len(args.parts) + 1)]
    mixes, sidecar, plot = [folder / f"mix{suffix}"], folder / "song.json", folder / "song.png"
    outputs = [*stems, *mixes, sidecar, *([plot] if args.plot else [])]
    check_outputs(outputs, args.overwrite)
    with _exclusive(outputs, args.overwrite):
        pipeline = _pipeline(args)
        generation = pipeline.song(
            [kind_value[1] for kind_value in args.parts], args.context, duration=args.duration,
            **_options(args),
        )  # fmt: skip
        paths = _write(args, pipeline, generation, stems, mixes=mixes, context=None,
                       sidecar=sidecar, plot=plot)  # fmt: skip
    return _report(paths, generation)


def demo_context(
    seed: int, bars: int, target: str = "bass"
) -> tuple[NDArray[np.float32], SynthSong]:
    """A held-out synthetic song without its ``target`` stem: ``([1, S] context, song)``."""
    import numpy as np

    from openriff.pipeline.synth import synth_song

    song = synth_song(seed, bars=bars, vocals=False)
    parts = [s.audio for name, s in song.stems.items() if name != target and s.audio is not None]
    context = np.sum(parts, axis=0)[None].astype(np.float32)  # (1, S)
    peak = float(np.abs(context).max())
    return (context * (0.9 / peak) if peak > 0.9 else context), song


def cmd_demo(args: argparse.Namespace) -> int:
    """``openriff demo``: a synthetic context, an accompaniment for it, their mix, a plot."""
    from openriff.pipeline.audio_io import check_outputs

    out = args.out
    names = ("context.wav", "stem.wav", "mix.wav", "spectrograms.png", "demo.json")
    paths = [out / name for name in names]
    check_outputs(paths, args.overwrite)
    with _exclusive(paths, args.overwrite):
        return _demo(args, paths)


def _demo(args: argparse.Namespace, paths: list[Path]) -> int:
    from openriff.pipeline.audio_io import audio_writer, mix, plot_writer, write_together

    started = time.perf_counter()
    pipeline = _pipeline(args)
    loaded = time.perf_counter()
    context, song = demo_context(args.song_seed, args.bars)
    rendered = time.perf_counter()
    generation = pipeline.generate(context, args.prompt, **_options(args))
    seconds = {
        "load": round(loaded - started, 2),
        "render_context": round(rendered - loaded, 2),
        "generate": round(time.perf_counter() - rendered, 2),
    }
    stem = generation.audio[0]
    together, gain = mix([context, stem])
    rate = generation.sample_rate
    panels = [("context (synthetic song without its bass)", context), ("generated stem", stem)]
    record = {
        "command": ["openriff", *(args.argv if args.argv is not None else sys.argv[1:])],
        "song": {"seed": song.seed, "key": song.key, "mode": song.mode, "tempo": song.tempo,
                 "bars": song.bars, "removed": "bass"},
        "settings": generation.settings,
        "model": pipeline.fingerprint(),
        "mix_gain": gain,
        "seconds": seconds,
    }  # fmt: skip
    text = json.dumps(record, indent=1, default=str) + "\n"
    writers = {
        paths[0]: audio_writer(context, rate, args.bits),
        paths[1]: audio_writer(stem, rate, args.bits),
        paths[2]: audio_writer(together, rate, args.bits),
        paths[3]: plot_writer([*panels, ("mix", together)], rate),
        paths[4]: lambda tmp: Path(tmp).write_text(text),
    }
    for path in write_together(writers):
        print(f"  {path}")
    print(
        f"Generated a {stem.shape[-1] / rate:.1f} s stem for synthetic song {song.seed} "
        f"({song.tempo:.0f} bpm, seed {generation.settings['seed']}) in "
        f"{seconds['generate']:.1f} s (model loaded in {seconds['load']:.1f} s)."
    )
    return 0


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
    add_generation_commands(parser.add_subparsers(dest="command", required=True))
    again = parser.parse_args(argv)
    again.argv = argv
    resolve_device(again.device)
    code: int = again.func(again)
    return code


def add_generation_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the generation commands to ``openriff``'s subparsers."""
    p = sub.add_parser("generate", help="generate a stem that fits a context")
    _conditioning_args(p, "the music to accompany (.wav/.flac/...)")
    p.add_argument("--duration", type=float, default=None, help="seconds, without --context")
    _output_args(p)
    _sampling_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("inpaint", help="regenerate or extend a time range of a stem")
    p.add_argument("--stem", type=Path, required=True, help="the stem to edit")
    p.add_argument("--start", type=float, required=True, help="seconds (< 0: prepend)")
    p.add_argument("--end", type=float, required=True, help="seconds (> length: extend)")
    _conditioning_args(p, "the music the stem belongs to, covering the output")
    _output_args(p)
    _sampling_args(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("vary", help="variations of a stem")
    p.add_argument("--stem", type=Path, required=True, help="the stem to vary")
    p.add_argument("--strength", type=float, default=0.5, help="0 (same) to 1 (new)")
    _conditioning_args(p, "the music the stem belongs to")
    _output_args(p)
    _sampling_args(p)
    p.set_defaults(func=cmd_vary)

    p = sub.add_parser("loop", help="a seamless loop of N bars at a tempo")
    p.add_argument("--bars", type=int, default=4)
    p.add_argument("--bpm", type=float, default=120.0)
    p.add_argument("--beats-per-bar", type=int, default=4)
    p.add_argument(
        "--keep-pitch",
        action="store_true",
        help="do not resample to the exact tempo (the sidecar gives the loop's bpm)",
    )
    _conditioning_args(p, "a loop of the other instruments (its first bars are used)")
    _output_args(p)
    _sampling_args(p)
    p.set_defaults(func=cmd_loop)

    p = sub.add_parser("interpolate", help="stems between two prompts or references")
    p.add_argument("--from-prompt", default=None)
    p.add_argument("--from-reference", type=Path, default=None)
    p.add_argument("--to-prompt", default=None)
    p.add_argument("--to-reference", type=Path, default=None)
    p.add_argument("--points", type=int, default=5, help="stems from start to end (>= 2)")
    p.add_argument("--context", type=Path, default=None, help="the music to accompany")
    p.add_argument("--duration", type=float, default=None, help="seconds, without --context")
    _output_args(p)
    _sampling_args(p, candidates=False)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("song", help="a whole song, one stem per prompt or reference")
    p.add_argument("--prompt", dest="parts", action="append", type=lambda s: ("prompt", s),
                   help="a part described in text (repeat; order kept)")  # fmt: skip
    p.add_argument("--reference", dest="parts", action="append",
                   type=lambda s: ("reference", Path(s)),
                   help="a part given by a recording (repeat; order kept)")  # fmt: skip
    p.add_argument("--context", type=Path, default=None, help="music to start from")
    p.add_argument("--duration", type=float, default=None, help="seconds, without --context")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", default="wav", choices=("wav", "flac"))
    _sampling_args(p, candidates=False)
    p.set_defaults(func=cmd_song)

    p = sub.add_parser("rerun", help="re-run the command a JSON sidecar records, exactly")
    p.add_argument("sidecar", type=Path, help="the .json written next to a generated file")
    p.add_argument("--out", type=Path, required=True, help="new output (file, or folder)")
    p.add_argument("--mix", type=Path, default=None, help="also write the mix here")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("demo", help="accompany a synthetic song with the default model")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--song-seed", type=int, default=1_000_000, help="synthetic song (held out)")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--prompt", default=None, help="text, for bundles with CLAP")
    _sampling_args(p, candidates=False)
    p.set_defaults(func=cmd_demo, seed=0)
