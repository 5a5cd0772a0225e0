"""Training throughput of the latent-diffusion trainer: steps/s and model FLOP utilisation.

Runs :func:`openriff.latent_diffusion.train.train` itself (data draws, condition dropout,
bf16 autocast on CUDA, AdamW, gradient clipping, EMA) on random latents of ``--seconds``
crops, and reads the step times off its ``log.jsonl``: the steps after ``--warmup`` are
timed. Model FLOPs per step are torch's FlopCounterMode over one forward and backward pass
of the preconditioned model on a batch (the optimiser's few FLOPs per parameter are left
out, as in the usual MFU definition); utilisation is their rate over a matrix-product
peak measured in the same run (bf16 on CUDA, fp32 on CPU).

    python packages/latent-diffusion/benchmarks/train_speed.py --device cuda  # dit/paper, 16 x 10 s
    python packages/latent-diffusion/benchmarks/train_speed.py --preset tiny --batch 4 --steps 6
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from openriff.latent_diffusion.checkpoint import ModelConfig
from openriff.latent_diffusion.data import TensorLatents
from openriff.latent_diffusion.train import TrainConfig, initial_model, make_loss, train

FRAME_RATE = 48_000 / 4096  # latent frames per second of the OpenRiff codecs


def _speed_module():  # type: ignore[no-untyped-def]
    """The inference benchmark beside this file (its matmul peak)."""
    spec = importlib.util.spec_from_file_location("ld_speed", Path(__file__).with_name("speed.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step_flops(config: TrainConfig, batch: TensorLatents, device: torch.device) -> float:
    """FLOPs of one forward and backward pass of the model on the whole batch."""
    model = initial_model(config).to(device).train()
    loss_fn = make_loss(config.model)
    target, cond = batch.batch(torch.arange(config.batch_size))
    g = torch.Generator().manual_seed(0)
    levels = loss_fn.draw(config.batch_size, g, 0.0)
    noise = torch.randn(target.shape, generator=g)
    with FlopCounterMode(display=False) as counter:
        loss = loss_fn(model, target.to(device), cond.to(device), levels, noise.to(device))
        loss.mean().backward()
    return float(counter.get_total_flops())


def main() -> None:
    """Print steps/s, examples/s and MFU for one backbone preset."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--backbone", default="dit", help="backbone (dit, unet1d)")
    parser.add_argument("--preset", default="paper", help="its preset")
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="crop length")
    parser.add_argument("--steps", type=int, default=30, help="steps in all")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    if not 0 < args.warmup < args.steps:
        parser.error("need 0 < --warmup < --steps")
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peak = _speed_module().matmul_peak(device, dtype)
    frames = round(args.seconds * FRAME_RATE)
    model = ModelConfig(backbone=args.backbone, preset=args.preset)
    backbone = model.backbone_config()
    config = TrainConfig(
        model=model, steps=args.steps, batch_size=args.batch, warmup_steps=1,
        checkpoint_every=10 * args.steps, log_every=1, compile=args.compile,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    examples = max(args.batch, 64)
    data = TensorLatents(
        target=torch.randn(examples, backbone.channels, frames, generator=g),
        context=torch.randn(examples, backbone.context_channels, frames, generator=g),
        embedding=torch.randn(examples, backbone.embedding_dim, generator=g),
    )
    flops = step_flops(replace(config, steps=1), data, device)
    with tempfile.TemporaryDirectory() as run:
        train(config, data, run, device=device, show_progress=False)
        log = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
    seconds = {entry["step"]: entry["seconds"] for entry in log}
    timed = args.steps - args.warmup
    per_step = (seconds[args.steps] - seconds[args.warmup]) / timed
    params = sum(p.numel() for p in initial_model(config).parameters())
    print(f"{device} matmul peak ({dtype}): {peak / 1e12:.2f} TFLOP/s")
    arithmetic = "bf16 autocast" if device.type == "cuda" else "fp32"
    print(
        f"{args.backbone}/{args.preset} ({params / 1e6:.1f} M), batch {args.batch} x "
        f"{args.seconds:g} s ({frames} frames), {arithmetic}"
        f"{', compiled' if args.compile else ''}: {1 / per_step:.2f} steps/s, "
        f"{args.batch / per_step:.1f} examples/s, {flops / 1e9:.1f} GFLOP per step, "
        f"MFU {flops / per_step / peak:.1%} (over {timed} steps after {args.warmup})"
    )


if __name__ == "__main__":
    main()
