"""Speed of the paper backbones: forward latency and full-sampling real-time factor.

For each paper preset (``unet1d/diffariff``, ``dit/paper``) at the CAE latent rate
(48 kHz / 4096 = 11.72 frames per second), over ``--seconds`` of audio (95 s: the
length the issue asks for):

* latency of one forward pass of a batch of 1;
* Heun sampling with ``--heun-steps`` steps (30) under two-condition classifier-free
  guidance (context and CLAP strengths 1.25: three condition subsets in one batch);
* the ``--consistency-steps``-step (5) consistency sampler with full conditioning.

Real-time factor = seconds of audio generated per wall-clock second. Achieved FLOP/s
(torch's FlopCounterMode over one call) is given as a fraction of a matrix-product peak
measured in the same run (fp32 on CPU; bf16 on CUDA, where the models also run in bf16).
Untrained weights time the same as trained ones.

    python packages/latent-diffusion/benchmarks/speed.py --seconds 10 --heun-steps 4
    python packages/latent-diffusion/benchmarks/speed.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from openriff.latent_diffusion import (
    Conditioning,
    ConsistencyPrecond,
    EDMPrecond,
    MultiConditionGuidance,
    consistency_sigmas,
    create_backbone,
    karras_sigmas,
    sample_consistency,
    sample_heun,
)

FRAME_RATE = 48_000 / 4096


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Best FLOP/s of a square matrix product (4096 on CPU, 8192 on CUDA)."""
    n = 8192 if device.type == "cuda" else 4096
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """(best seconds over ``repeats`` after a counted warm-up call, FLOPs of one call)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, float(counter.get_total_flops())


def main() -> None:
    """Print one line per (model, measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=95.0)
    parser.add_argument("--heun-steps", type=int, default=30)
    parser.add_argument("--consistency-steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", default="unet1d:diffariff,dit:paper")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = matmul_peak(device, dtype)
    frames = round(args.seconds * FRAME_RATE)
    print(f"device {device} ({dtype}), matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{args.seconds:g} s of audio = {frames} latent frames")
    for spec in args.models.split(","):
        name, preset = spec.split(":")
        measure(name, preset, args, device, dtype, peak)
    # A second peak measurement shows how steady the machine was during the run.
    print(f"matmul peak again at the end: {matmul_peak(device, dtype) / 1e9:.1f} GFLOP/s")


def measure(
    name: str,
    preset: str,
    args: argparse.Namespace,
    device: torch.device,
    dtype: torch.dtype,
    peak: float,
) -> None:
    """Time one preset's forward pass and both samplers."""
    frames = round(args.seconds * FRAME_RATE)
    torch.manual_seed(0)
    backbone = create_backbone(name, preset).to(device=device, dtype=dtype).eval()
    config = backbone.config
    params = sum(p.numel() for p in backbone.parameters())
    g = torch.Generator(device=device).manual_seed(0)
    noise = torch.randn(1, config.channels, frames, device=device, generator=g)
    cond = Conditioning(
        context=torch.randn(1, config.context_channels, frames, device=device, generator=g),
        embedding=torch.randn(1, config.embedding_dim, device=device, generator=g),
    )
    edm = EDMPrecond(backbone)
    guided = MultiConditionGuidance(edm, 1.25, 1.25)
    consistency = ConsistencyPrecond(backbone)
    sigma = torch.ones(1, device=device)
    heun_sigmas = karras_sigmas(args.heun_steps, 0.002, 80.0)
    few_sigmas = consistency_sigmas(args.consistency_steps, 0.002, 80.0)
    runs: list[tuple[str, Callable[[], object], float]] = [
        ("forward (batch 1)", lambda: edm(noise, sigma, cond), 0.0),
        (
            f"heun {args.heun_steps} steps + 2-condition CFG",
            lambda: sample_heun(guided, noise, heun_sigmas, cond=cond),
            args.seconds,
        ),
        (
            f"consistency {args.consistency_steps} steps",
            lambda: sample_consistency(consistency, noise, few_sigmas, cond=cond, generator=g),
            args.seconds,
        ),
    ]
    with torch.inference_mode():
        for label, fn, audio in runs:
            seconds, flops = timed(fn, device, args.repeats)
            rate = f", real-time factor {audio / seconds:.2f}x" if audio else ""
            achieved = flops / seconds
            print(
                f"{name}/{preset} ({params / 1e6:.0f} M) {label}: {seconds * 1e3:.0f} ms{rate}, "
                f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.2f} of peak"
            )


if __name__ == "__main__":
    main()
