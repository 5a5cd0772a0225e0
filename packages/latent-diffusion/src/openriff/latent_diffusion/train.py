"""Training a Denoiser on a ``LatentDataset``: one process, or many with ``torchrun``.

The same function runs on one CPU, one GPU or many processes (DDP; gloo on CPU, NCCL on
GPU, chosen from the device). Every rank draws the *global* batch's indices, noise levels,
noise and condition drops from one generator seeded identically everywhere and keeps its
own shard, so a run gives the same result for any number of processes with the same
global batch, and the generator state is all a resume needs.

Paper settings (Diff-A-Riff 4.2.3; DiT follow-up 4.3): AdamW, lr 1e-4, betas 0.9/0.999,
linear warm-up, then cosine decay or reduce-on-plateau down to 1e-6, EMA 0.9999, each
condition dropped with probability 0.5.

A run folder holds ``train.json`` (the settings), ``log.jsonl``, ``checkpoints/step-X/``
(``config.json``, ``model.safetensors``, ``ema.safetensors``, ``trainer.pt``: optimizer,
step, RNG and schedule state, read back with ``weights_only=True``) and, at the end,
``final/`` (load it with :func:`~openriff.latent_diffusion.checkpoint.from_pretrained`).
Checkpoints are written to a temporary folder and renamed when complete; starting again
in a folder with the same settings resumes from its newest checkpoint exactly.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from openriff.latent_diffusion.checkpoint import (
    ModelConfig,
    build,
    save_pretrained,
    write_weights,
)
from openriff.latent_diffusion.config import from_dict, to_dict
from openriff.latent_diffusion.data import LatentDataset
from openriff.latent_diffusion.files import (
    atomic_directory,
    load_weights,
    read_torch_state,
    remove_temporaries,
    writer_lock,
)
from openriff.latent_diffusion.objectives import OBJECTIVES, Loss
from openriff.latent_diffusion.runs import (
    Dist,
    barrier,
    check_settings,
    checkpoint_folder,
    checkpoints,
    init_distributed,
    prune_checkpoints,
    truncate_log,
    update_ema,
)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (stored as ``train.json`` in the run folder).

    Attributes:
        model: what to train (backbone, its config, objective, noise range).
        steps: optimisation steps.
        batch_size: global batch per step, split evenly across processes.
        accumulation: micro-batches per step in each process (gradient accumulation).
        lr: peak learning rate.
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up from 0 to ``lr``.
        schedule: ``"cosine"`` decay to ``min_lr``, ``"plateau"`` (halve when the logged
            loss has not improved for ``plateau_patience`` logs, down to ``min_lr``) or
            ``"constant"``.
        min_lr: the learning rate's floor.
        plateau_patience: logs without improvement before a plateau reduction.
        plateau_factor: multiplier of a plateau reduction.
        ema_decay: decay of the weights' exponential moving average.
        grad_clip: maximum global gradient norm.
        p_drop_context: probability of dropping an example's context.
        p_drop_embedding: probability of dropping an example's embedding.
        p_mean: mean of the log-normal draw of training noise levels,
            ``ln sigma ~ N(p_mean, p_std^2)``, for the EDM and consistency objectives (None:
            the objective's own default, EDM -1.2, consistency -1.1). The v-objective draws
            uniform times and ignores both.
        p_std: its standard deviation (None: EDM 1.2, consistency 2.0).
        bf16: bf16 autocast on CUDA (ignored on CPU).
        compile: run the model through ``torch.compile``.
        checkpoint_every: steps between checkpoints (and at the end).
        keep_checkpoints: newest checkpoints kept.
        log_every: steps between log lines.
        seed: seed of the run's generator (and of the initial weights).
    """

    model: ModelConfig
    steps: int = 100_000
    batch_size: int = 64
    accumulation: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    schedule: str = "cosine"
    min_lr: float = 1e-6
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    ema_decay: float = 0.9999
    grad_clip: float = 1.0
    p_drop_context: float = 0.5
    p_drop_embedding: float = 0.5
    p_mean: float | None = None
    p_std: float | None = None
    bf16: bool = True
    compile: bool = False
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "plateau", "constant"):
            raise ValueError(f"schedule must be cosine, plateau or constant, got {self.schedule!r}")
        for name in ("steps", "batch_size", "accumulation", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("p_drop_context", "p_drop_embedding"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        positive = ("lr", "grad_clip", "plateau_factor")
        for name in positive:
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        for name in ("min_lr", "weight_decay"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.warmup_steps < 0 or self.keep_checkpoints < 1:
            raise ValueError("warmup_steps must be >= 0 and keep_checkpoints >= 1")
        if any(not 0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        if self.p_std is not None and self.p_std <= 0:
            raise ValueError("p_std must be > 0")
        draws = OBJECTIVES[self.model.objective].log_normal_draw
        if not draws and (self.p_mean, self.p_std) != (None, None):
            raise ValueError(
                "p_mean and p_std set the noise-level draw of the edm and consistency "
                "objectives; the v-objective draws uniform times"
            )


def make_loss(config: ModelConfig, p_mean: float | None = None, p_std: float | None = None) -> Loss:
    """The loss that goes with a model's objective and noise range.

    ``p_mean`` and ``p_std`` replace the log-normal noise-level draw of the EDM and
    consistency losses where given (see :class:`TrainConfig`).
    """
    draw = {k: v for k, v in (("p_mean", p_mean), ("p_std", p_std)) if v is not None}
    return OBJECTIVES[config.objective].loss(config.noise_range(), draw)


def learning_rate(step: int, config: TrainConfig, plateau_scale: float = 1.0) -> float:
    """Learning rate for optimisation step ``step`` (0-based)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "plateau":
        return max(config.min_lr, config.lr * plateau_scale)
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


@dataclass
class _Plateau:
    """Reduce-on-plateau state (kept in the checkpoint for an exact resume)."""

    scale: float = 1.0
    best: float = math.inf
    bad: int = 0

    def update(self, loss: float, config: TrainConfig) -> None:
        if loss < self.best * (1 - 1e-4):
            self.best, self.bad = loss, 0
            return
        self.bad += 1
        if self.bad >= config.plateau_patience:
            self.scale *= config.plateau_factor
            self.bad = 0


def initial_model(config: TrainConfig) -> nn.Module:
    """The untrained Denoiser a run starts from, initialised from the run's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build(config.model)


def train(
    config: TrainConfig,
    dataset: LatentDataset,
    run_dir: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> Path:
    """Train (or resume training) a Denoiser; returns the ``final/`` checkpoint folder.

    Args:
        config: run settings.
        dataset: examples (see :class:`~openriff.latent_diffusion.data.LatentDataset`).
        run_dir: run folder (created, or resumed if it holds the same settings).
        device: ``cpu`` or ``cuda``; under ``torchrun`` with CUDA each process takes
            ``cuda:LOCAL_RANK``.
        show_progress: show a progress bar on rank 0.
    """
    device = torch.device(device)
    d = init_distributed(device)
    if device.type == "cuda" and d.world > 1:
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    if config.batch_size % (d.world * config.accumulation):
        raise ValueError(
            f"batch_size {config.batch_size} is not divisible by {d.world} processes "
            f"x {config.accumulation} micro-batches"
        )
    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    run = Path(run_dir)
    # One writer per run folder: a second run into it is refused (rank 0 holds the lock).
    with writer_lock(run) if d.rank == 0 else contextlib.nullcontext():
        return _train(config, dataset, run, device, d, show_progress)


def _train(
    config: TrainConfig,
    dataset: LatentDataset,
    run: Path,
    device: torch.device,
    d: Dist,
    show_progress: bool,
) -> Path:
    check_settings(run, to_dict(config), lambda stored: to_dict(from_dict(TrainConfig, stored)), d)

    model = initial_model(config).to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    plateau = _Plateau()
    step = 0
    if d.rank == 0:  # a killed run's half-written checkpoint folders
        remove_temporaries(run / "checkpoints", "step-")
    existing = checkpoints(run)
    if existing:
        step = _resume(existing[-1], model, ema, optimizer, generator, plateau, device)
    net: nn.Module = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    loss_fn = make_loss(config.model, config.p_mean, config.p_std)
    local = config.batch_size // d.world
    shard = slice(d.rank * local, (d.rank + 1) * local)
    micro = local // config.accumulation
    log_path = run / "log.jsonl"
    if d.rank == 0:
        truncate_log(log_path, step)
    bar = tqdm(
        total=config.steps, initial=step, disable=not show_progress or d.rank != 0, unit="step"
    )
    autocast = device.type == "cuda" and config.bf16
    started = time.perf_counter()
    while step < config.steps:
        progress = step / config.steps
        # Global draws, identical on every rank; each keeps its shard.
        indices = torch.randint(0, len(dataset), (config.batch_size,), generator=generator)
        levels = loss_fn.draw(config.batch_size, generator, progress)
        drops = torch.rand(2, config.batch_size, generator=generator)
        # This rank's shard is read once; micro-batches are slices of it.
        target, cond = dataset.batch(indices[shard])
        noise = torch.randn((config.batch_size, *target.shape[1:]), generator=generator)[shard]
        cond = cond.dropped(config.p_drop_context, config.p_drop_embedding, draws=drops[:, shard])
        target, cond, noise = target.to(device), cond.to(device), noise.to(device)
        lr = learning_rate(step, config, plateau.scale)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for m in range(config.accumulation):
            rows = slice(m * micro, (m + 1) * micro)
            # Gradients are all-reduced once, after the last micro-batch.
            last = m == config.accumulation - 1
            context = net.no_sync() if d.world > 1 and not last else contextlib.nullcontext()  # type: ignore[operator]
            with context, torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(
                    net, target[rows], cond.index(rows), levels[shard][rows], noise[rows]
                )
                loss = loss.mean()
                torch.autograd.backward(loss / config.accumulation)
            total += loss.detach().float() / config.accumulation
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, min(config.ema_decay, (1 + step) / (10 + step)))
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            if d.world > 1:
                dist.all_reduce(total)
                total /= d.world
            value = total.item()
            if config.schedule == "plateau" and step > config.warmup_steps:
                plateau.update(value, config)
            if d.rank == 0:
                record = {
                    "step": step,
                    "loss": value,
                    "grad_norm": float(grad_norm),
                    "lr": lr,
                    "seconds": round(time.perf_counter() - started, 3),
                }
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=f"{value:.4g}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            if d.rank == 0:
                _save_checkpoint(run, step, model, ema, optimizer, generator, plateau, config)
            barrier(d)
    bar.close()
    final = run / "final"
    if d.rank == 0:
        save_pretrained(model, config.model, final, ema=ema, overwrite=True)
    barrier(d)
    return final


def _save_checkpoint(
    run: Path,
    step: int,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    plateau: _Plateau,
    config: TrainConfig,
) -> Path:
    target = checkpoint_folder(run, step)
    with atomic_directory(target) as tmp:
        write_weights(model, config.model, tmp, ema=ema)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "plateau": torch.tensor(
                [plateau.scale, plateau.best, plateau.bad], dtype=torch.float64
            ),
        }
        torch.save(state, tmp / "trainer.pt")
    prune_checkpoints(run, config.keep_checkpoints)
    return target


def _resume(
    checkpoint: Path,
    model: nn.Module,
    ema: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    plateau: _Plateau,
    device: torch.device,
) -> int:
    config = checkpoint / "config.json"
    load_weights(model, checkpoint / "model.safetensors", config)
    load_weights(ema, checkpoint / "ema.safetensors", config)
    state = read_torch_state(checkpoint / "trainer.pt", map_location=device)
    if not isinstance(state, dict) or not {"optimizer", "generator", "step"} <= set(state):
        raise ValueError(f"{checkpoint / 'trainer.pt'} is not a trainer state written by OpenRiff")
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    values: Tensor = state["plateau"]
    plateau.scale, plateau.best, plateau.bad = float(values[0]), float(values[1]), int(values[2])
    return int(state["step"])
