"""Speed of the whole pipeline: context audio in, stem audio out, stage by stage.

For each model and context length, one ``generate`` is split into its stages (as
:meth:`AccompanimentPipeline.generate` runs them): encoding the context, sampling the
latents (Heun with two-condition guidance, or the consistency sampler), and decoding
them; the real-time factor is seconds of audio per wall-clock second of the three. The
sampling stage's FLOPs (torch's FlopCounterMode over one denoiser call, times the calls)
are given as a fraction of a matrix-product peak measured in the same run (fp32 on CPU,
bf16 on CUDA).

Models: ``shipped`` (the default bundle, or ``--bundle``), ``paper-dit`` (``dit/paper``
with the ``stereo`` codec, untrained: they time as trained ones do) and ``paper-unet``
(``unet1d/diffariff`` with the ``diffariff`` codec). Paper models get a random CLAP
embedding, so both guidance conditions run. The whole context is one pass
(``one_pass_frames`` covers it), as the backbones extrapolate, where the GPU's memory
allows (:mod:`openriff.latent_diffusion.memory`; each line gives the pass length). FLOPs
are counted over one pass of the whole context.

    python packages/pipeline/benchmarks/speed.py --models shipped --seconds 16
    python packages/pipeline/benchmarks/speed.py --device cuda --seconds 95 600
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.flop_counter import FlopCounterMode

from openriff.latent_diffusion.checkpoint import ModelConfig, build
from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.precision import CHOICES, PRECISIONS, resolve_precision
from openriff.pipeline.bundle import AccompanimentModel
from openriff.pipeline.codecs import load_codec
from openriff.pipeline.generation.pipeline import AccompanimentPipeline


def _latent_diffusion_benchmark() -> Any:
    """The latent-diffusion benchmark module (its matmul peak is the one every ratio uses)."""
    path = Path(__file__).resolve().parents[2] / "latent-diffusion" / "benchmarks" / "speed.py"
    spec = importlib.util.spec_from_file_location("latent_diffusion_speed", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PAPER = {  # name -> (backbone, preset, codec preset)
    "paper-dit": ("dit", "paper", "stereo"),
    "paper-unet": ("unet1d", "diffariff", "diffariff"),
}


def paper_pipeline(
    name: str, objective: str, device: torch.device, frames: int, precision: str
) -> AccompanimentPipeline:
    """An untrained paper-size pipeline whose one pass covers ``frames`` latent frames."""
    backbone, preset, codec_preset = PAPER[name]
    codec = load_codec({"preset": codec_preset, "seed": 0}, device)
    config = ModelConfig(backbone=backbone, preset=preset, objective=objective, overrides=(
        ("channels", codec.latent_dim), ("context_channels", codec.latent_dim),
    ))  # fmt: skip
    denoiser = build(config).to(device).eval()
    info = {"one_pass_frames": frames, "clap": {}}
    return AccompanimentPipeline(
        AccompanimentModel(codec, denoiser, config, None, None, info), device, precision=precision
    )


def run(
    pipeline: AccompanimentPipeline, seconds: float, options: dict[str, Any], device: torch.device
) -> dict[str, float]:
    """Seconds per stage of one generation over ``seconds`` of random stereo context."""
    g = torch.Generator().manual_seed(0)
    context = (0.1 * torch.randn(2, round(seconds * 48_000), generator=g)).numpy()
    embedding = None
    if pipeline.embedding_dim:
        embedding = torch.randn(pipeline.embedding_dim, generator=g).numpy()

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    times: dict[str, float] = {}
    start = sync()
    call = pipeline.begin(options, 48_000)
    latents, _, length = pipeline.context_and_length(context, None, 48_000)
    cond = None if embedding is None else pipeline.given_embedding(embedding)
    times["encode"] = sync() - start
    calls = 0

    def count(*_: object) -> None:
        nonlocal calls
        calls += 1

    # One per guided call; on the compiled module's wrapper when compiled, outside its graph.
    counted = cast(torch.nn.Module, pipeline.denoiser())
    hook = counted.register_forward_pre_hook(count)
    start = sync()
    sampled = pipeline.sample(call, pipeline.frames(length), latents, cond)
    times["sample"] = sync() - start
    hook.remove()
    start = sync()
    pipeline.decode(sampled.channels, length, call.seed)
    times["decode"] = sync() - start
    # FLOPs of one guided denoiser call (all its condition subsets in one batch), times
    # the calls the sampler made.
    x = sampled.channels[0]
    batch_cond = Conditioning(
        context=None if latents is None else latents.expand(x.shape[0], -1, -1).to(x),
        embedding=None if cond is None else cond.expand(x.shape[0], -1).to(x),
    )
    eager = pipeline.guided(call, compiled=False)  # counted eagerly: the same FLOPs
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        eager(x, torch.full((x.shape[0],), 1.0, device=x.device), batch_cond)
    times["sample_flops"] = float(counter.get_total_flops()) * calls
    times["pass_frames"] = float(sampled.call.pass_frames or 0)
    times["frames"] = float(x.shape[-1])
    return times


def main() -> None:
    """Print one line per (model, length, sampler)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--models", nargs="+", default=["shipped", "paper-dit", "paper-unet"],
                        choices=["shipped", *PAPER], help="models to time")  # fmt: skip
    parser.add_argument("--seconds", nargs="+", type=float, default=[95.0, 600.0],
                        help="context lengths")  # fmt: skip
    parser.add_argument("--bundle", type=Path, default=None, help="the shipped model's bundle")
    parser.add_argument("--heun-steps", type=int, default=30, help="Heun steps")
    parser.add_argument("--consistency-steps", type=int, default=5, help="consistency steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--precision", default="auto", choices=CHOICES,
                        help="auto: bf16 autocast on CUDA, fp32 on a CPU")  # fmt: skip
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the denoiser (warmed up at full length)")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    precision = resolve_precision(args.precision, device)
    dtype = PRECISIONS[precision]
    peak = _latent_diffusion_benchmark().matmul_peak(device, dtype)
    print(f"{device} matmul peak ({dtype}): {peak / 1e12:.2f} TFLOP/s")
    for name in args.models:
        for seconds in args.seconds:
            frames = math.ceil(seconds * 48_000 / 4096) + 1
            runs = [("edm", "heun", args.heun_steps)]
            if name != "shipped":  # DiT follow-up 4.2: the consistency-trained model, 5 steps
                runs.append(("consistency", "consistency", args.consistency_steps))
            for objective, sampler, steps in runs:
                if name == "shipped":
                    pipeline = AccompanimentPipeline.from_pretrained(
                        args.bundle, device=device, precision=precision
                    )
                    pipeline.window = max(pipeline.window, frames)  # one pass, as measured
                else:
                    pipeline = paper_pipeline(name, objective, device, frames, precision)
                pipeline.compile = args.compile
                options = {"sampler": sampler, "steps": steps, "seed": 0, "cfg_context": 1.25,
                           "cfg_clap": 1.25, "stereo_width": 0.4}  # fmt: skip
                # First a short untimed run: kernels, caches and lazy imports (the chroma's
                # librosa) warm up, as they are in any generation after the first. Compiled,
                # at full length: the timed run's window shapes are then compiled already.
                run(pipeline, seconds if args.compile else 2.0, options, device)
                t = run(pipeline, seconds, options, device)
                total = t["encode"] + t["sample"] + t["decode"]
                print(
                    f"{name:>10} {seconds:>5.0f} s {sampler:>11} {steps:>2} steps: "
                    f"{seconds / total:7.1f}x real time (encode {t['encode']:.2f} s, sample "
                    f"{t['sample']:.2f} s at {t['sample_flops'] / t['sample'] / peak:.1%} of "
                    f"peak, decode {t['decode']:.2f} s = {seconds / t['decode']:.0f}x; passes of "
                    f"{t['pass_frames']:.0f} of {t['frames']:.0f} frames)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
