"""Encode/decode speed of the CAE presets: real-time factor and achieved FLOP/s.

Real-time factor = seconds of audio processed per wall-clock second (above 1 is faster
than real time). Achieved FLOP/s (counted with torch's FlopCounterMode) is reported as a
fraction of a matrix-product peak measured in the same run (fp32 on CPU, bf16 on CUDA).
music2latent's reference architecture (random weights, extra ``[music2latent]``) runs in
the same process for comparison. Untrained weights time the same as trained ones.

    python packages/cae/benchmarks/speed.py                      # CPU, 10 s of audio
    python packages/cae/benchmarks/speed.py --device cuda --seconds 60
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from openriff.cae import PRESETS, from_preset


def matmul_peak(device: torch.device) -> float:
    """Best FLOP/s of a square matrix product (fp32 2048 on CPU, bf16 8192 on CUDA)."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
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
    """(best seconds over ``repeats`` after one warm-up, FLOPs of one call)."""
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


def report(
    name: str, what: str, seconds_audio: float, wall: float, flops: float, peak: float
) -> None:
    """Print one result line."""
    rate = flops / wall
    print(
        f"{name:<22} {what:<12} {seconds_audio / wall:8.2f}x real time   "
        f"{wall:8.2f} s   {rate / 1e9:8.1f} GFLOP/s   {rate / peak:6.1%} of peak"
    )


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length")
    parser.add_argument("--presets", nargs="*", default=[p for p in PRESETS if "tiny" not in p])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--window-batch",
        type=int,
        nargs="*",
        default=[0],
        help="windows per batch of the consistency decoding, one run each (0: the codec's "
        "default: up to 16 that fit in a GPU's memory, its cpu_window_batch on a CPU)",
    )
    parser.add_argument(
        "--music2latent-seconds",
        type=float,
        default=2.0,
        help="audio length for the music2latent reference (0 skips it; it is slow on a CPU)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    peak = matmul_peak(device)
    threads = torch.get_num_threads()
    print(f"device {device}, {threads} threads, matmul peak {peak / 1e9:.1f} GFLOP/s")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    for name in args.presets:
        model = from_preset(name).to(device).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        samples = int(args.seconds * model.sample_rate)
        wave = torch.randn(1, model.channels, samples, device=device) * 0.1
        print(f"{name}: {params:.1f} M parameters, {model.channels} channel(s), {args.seconds} s")
        with autocast:
            latents = model.encode(wave)
            wall, flops = timed(lambda m=model, w=wave: m.encode(w), device, args.repeats)
            report(name, "encode", args.seconds, wall, flops, peak)
            generator = torch.Generator(device).manual_seed(0)
            for batch in args.window_batch:
                wall, flops = timed(
                    lambda m=model, z=latents, g=generator, b=batch or None: m.decode(
                        z, generator=g, window_batch=b
                    ),
                    device,
                    args.repeats,
                )
                report(name, f"decode/{batch or 'auto'}", args.seconds, wall, flops, peak)

    if args.music2latent_seconds > 0:
        from music2latent.models import UNet

        from openriff.cae.music2latent import Music2LatentCodec

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "music2latent.pt"
            torch.save({"gen_state_dict": UNet().state_dict()}, path)
            codec = Music2LatentCodec(path, device=device)
        params = sum(p.numel() for p in codec.gen.parameters()) / 1e6
        seconds = args.music2latent_seconds
        wave = torch.randn(1, 1, int(seconds * 48_000)) * 0.1
        print(f"music2latent (reference, random weights): {params:.1f} M parameters, {seconds} s")
        latents = codec.encode(wave)
        wall, flops = timed(lambda: codec.encode(wave), device, 1)
        report("music2latent", "encode", seconds, wall, flops, peak)
        wall, flops = timed(lambda: codec.decode(latents), device, 1)
        report("music2latent", "decode", seconds, wall, flops, peak)


if __name__ == "__main__":
    main()
