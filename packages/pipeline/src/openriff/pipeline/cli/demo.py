"""``openriff demo``: the default model accompanies a synthetic song it never heard.

It renders a held-out synthetic song without its bass, generates a bass for it, and
writes the context, the stem, their mix, spectrograms and a JSON record with the seconds
each step took (the README's figures).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from openriff.latent_diffusion.flags import COUNT, SEED
from openriff.pipeline.cli.generate import add_run_flags
from openriff.pipeline.cli.outputs import exclusive, load_pipeline
from openriff.pipeline.cli.sampling import sampling_options

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from openriff.pipeline.data.music import SynthSong


def demo_context(
    seed: int, bars: int, target: str = "bass"
) -> tuple[NDArray[np.float32], SynthSong]:
    """A held-out synthetic song without its ``target`` stem: ``([1, S] context, song)``."""
    import numpy as np

    from openriff.pipeline.data.synth import synth_song

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
    with exclusive(paths, args.overwrite):
        return _demo(args, paths)


def _demo(args: argparse.Namespace, paths: list[Path]) -> int:
    from openriff.pipeline.audio_io import audio_writer, mix, plot_writer, write_together

    started = time.perf_counter()
    pipeline = load_pipeline(args)
    loaded = time.perf_counter()
    context, song = demo_context(args.song_seed, args.bars)
    rendered = time.perf_counter()
    generation = pipeline.generate(context, args.prompt, **sampling_options(args))
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
        "command": ["openriff", *args.argv],
        "song": {"seed": song.seed, "style": song.style, "key": song.key, "mode": song.mode,
                 "tempo": song.tempo, "time_signature": str(song.meter),
                 "beats_per_bar": song.meter.quarters, "bars": song.bars, "removed": "bass"},
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


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to ``openriff``'s subparsers."""
    p = sub.add_parser("demo", help="accompany a synthetic song with the default model")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--song-seed", type=SEED, default=1_000_000, help="synthetic song (held out)")
    p.add_argument("--bars", type=COUNT, default=8, help="length of the demo song in bars")
    p.add_argument("--prompt", default=None, help="text, for bundles with CLAP")
    add_run_flags(p, candidates=False)
    p.set_defaults(func=cmd_demo, seed=0)
