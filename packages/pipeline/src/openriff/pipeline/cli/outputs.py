"""Writing what a generation command made: stems, mixes, a sidecar, a plot, together.

Every file of one command goes to a temporary name first and all are renamed together
when each is complete; existing outputs are refused unless ``--overwrite``, before the
model loads and again under the writers' lock. The JSON sidecar records the command, every
setting (the seed included) and the model's fingerprint, so ``openriff rerun`` can repeat
it bit for bit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openriff.pipeline.cli.sampling import check_sampling_flags

if TYPE_CHECKING:
    from openriff.pipeline.generation.options import Generation
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

AUDIO_SUFFIXES = (".wav", ".flac")
# Stems one command makes (candidates, interpolation points, song parts): each is a file.
MAX_STEMS = 64


def numbered(path: Path, count: int) -> list[Path]:
    """``path`` for one output; ``name-1.wav``, ``name-2.wav``, ... for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def audio_path(path: Path, flag: str) -> Path:
    """``path``, refused unless it names a .wav or .flac file (``flag`` names it)."""
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise ValueError(f"{flag} {path}: write .wav or .flac")
    return path


def load_pipeline(args: argparse.Namespace) -> AccompanimentPipeline:
    """The pipeline of ``--bundle`` (default: the shipped model) on ``--device``."""
    import torch

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

    bundle = args.bundle if args.bundle is not None else default_bundle()
    pipeline = AccompanimentPipeline.from_pretrained(
        bundle, device=torch.device(args.device), clap_checkpoint=args.clap,
        codec_checkpoint=args.music2latent, progress=not args.quiet,
        precision=getattr(args, "precision", "auto"), compile=getattr(args, "compile", False),
    )  # fmt: skip
    recorded = getattr(args, "expect_model", None)  # set by `openriff rerun`
    if recorded and recorded.get("sha256") and not getattr(args, "force", False):
        check_model(recorded, pipeline.fingerprint(), bundle)
    return pipeline


def check_model(recorded: dict[str, Any], loaded: dict[str, Any], bundle: Path) -> None:
    """Refuse to re-run a sidecar's command on another model than the one it records.

    Raises:
        ValueError: the hashes of the recorded and the loaded bundle differ, naming both.
    """
    if recorded.get("sha256") != loaded.get("sha256"):
        raise ValueError(
            f"the sidecar was made with another model ({recorded.get('bundle')}, sha256 "
            f"{str(recorded['sha256'])[:12]}) than the one loaded now ({bundle}, sha256 "
            f"{str(loaded.get('sha256'))[:12]}); give --bundle, or --force to re-run anyway"
        )


def write_outputs(
    args: argparse.Namespace,
    pipeline: AccompanimentPipeline,
    generation: Generation,
    stems: list[Path],
    *,
    mixes: list[Path] | None = None,
    sidecar: Path,
    plot: Path,
) -> list[Path]:
    """Write the stems, mixes, sidecar and plot together (all or nothing).

    Each file is written a chunk at a time, and a mix is summed as it is written, from a
    context kept on disk (``Generation.context_file``) too: no copy of a long stem or
    context is made.
    """
    from openriff.pipeline.audio_io import (
        Chunks,
        array_chunks,
        audio_writer,
        chunks_writer,
        mixed,
        plot_writer,
        write_together,
    )

    rate = generation.sample_rate
    writers: dict[Path, Callable[[str], object]] = {}
    for path, audio in zip(stems, generation.audio, strict=True):
        writers[path] = audio_writer(audio, rate, args.bits)
    # The context as the model heard it, over the stem's length.
    context: Chunks | None = None
    channels = 0
    if generation.context is not None:
        context, channels = array_chunks(generation.context), generation.context.shape[0]
    elif generation.context_file is not None:
        source, length = generation.context_file, generation.audio.shape[-1]
        context, channels = (lambda: source.chunks(length)), source.channels
    gains = []
    if generation.mix is not None:  # a song: the pipeline mixed it
        writers[(mixes or [])[0]] = audio_writer(generation.mix, rate, args.bits)
    elif mixes:
        for path, audio in zip(mixes, generation.audio, strict=True):
            parts = [array_chunks(audio)] if context is None else [context, array_chunks(audio)]
            together, gain = mixed(parts, max(channels, audio.shape[0]))
            gains.append(gain)
            writers[path] = chunks_writer(together, max(channels, audio.shape[0]), rate, args.bits)
    panels: list[tuple[str, Any]] = [] if context is None else [("context", context)]
    named = zip(stems, generation.audio, strict=True)
    panels += [(f"stem {path.name}", audio) for path, audio in named][:4]
    if generation.mix is not None:
        panels.append(("mix", generation.mix))
    if args.plot:
        writers[plot] = plot_writer(panels, rate)
    record = {
        "command": ["openriff", *args.argv],
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


def planned(args: argparse.Namespace, count: int) -> tuple[list[Path], list[Path], Path, Path]:
    """Output paths of a single-file command, checked before any work."""
    from openriff.pipeline.audio_io import check_outputs

    out = audio_path(args.out, "--out")
    stems = numbered(out, count)
    mixes = [] if args.mix is None else numbered(audio_path(args.mix, "--mix"), count)
    sidecar, plot = out.with_suffix(".json"), out.with_suffix(".png")
    check_outputs([*stems, *mixes, sidecar, *([plot] if args.plot else [])], args.overwrite)
    return stems, mixes, sidecar, plot


@contextlib.contextmanager
def exclusive(paths: list[Path], overwrite: bool) -> Iterator[None]:
    """Hold the writer's lock of every output, and check the outputs again under it.

    A writer that just finished leaves files that are then refused; one still running is
    named by the lock.
    """
    from openriff.latent_diffusion.files import writer_lock
    from openriff.pipeline.audio_io import check_outputs

    with writer_lock(paths):
        check_outputs(paths, overwrite)
        yield


def check_request_flags(args: argparse.Namespace, seconds: float | None, stems: int) -> None:
    """Refuse, before the model loads, settings out of range or a request too large."""
    from openriff.pipeline.limits import check_request, seconds_to_samples

    check_sampling_flags(args)
    if stems > MAX_STEMS:
        raise ValueError(f"at most {MAX_STEMS} stems per run, got {stems}")
    if seconds is not None:
        check_request(seconds_to_samples(seconds, "the output's length"), stems, args.command)


def report(paths: list[Path], generation: Generation) -> int:
    """Print what was written; the exit code 0."""
    seconds = generation.audio.shape[-1] / generation.sample_rate
    print(f"{len(paths)} files written ({seconds:.2f} s, seed {generation.settings['seed']}):")
    for path in paths:
        print(f"  {path}")
    return 0


def run(
    args: argparse.Namespace,
    count: int,
    make: Callable[[AccompanimentPipeline], Generation],
    seconds: float | None = None,
) -> int:
    """Plan and check the outputs, load the model, generate with ``make``, write.

    ``seconds`` (when known before reading any audio) is the output's length, checked
    against :mod:`openriff.pipeline.limits` before the model loads.
    """
    check_request_flags(args, seconds, count)
    stems, mixes, sidecar, plot = planned(args, count)
    with exclusive([*stems, *mixes, sidecar, *([plot] if args.plot else [])], args.overwrite):
        pipeline = load_pipeline(args)
        generation = make(pipeline)
        paths = write_outputs(
            args, pipeline, generation, stems, mixes=mixes, sidecar=sidecar, plot=plot
        )
    return report(paths, generation)
