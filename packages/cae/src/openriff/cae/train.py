"""Training a CAE end to end on a folder of audio: one process, or many with ``torchrun``.

The same function runs on one CPU, one GPU or many processes (DDP; gloo on CPU, NCCL on
GPU, chosen from the device). Every rank draws the *global* batch's crops, noise levels and
noise from one generator seeded identically everywhere and takes its own shard, so a run
gives the same result for any number of processes with the same global batch, and the
generator state is all a resume needs.

A run folder holds ``train.json`` (the settings), ``log.jsonl`` (one line per logged step),
``checkpoints/step-XXXXXXXX/`` (``config.json``, ``model.safetensors``, ``ema.safetensors``,
``trainer.pt``: optimizer, step and RNG, read back with ``weights_only=True``) and, at the
end, ``final/`` (the model to load with :func:`openriff.cae.from_pretrained`). Checkpoints
are written to a temporary folder and renamed when complete; starting a run in an existing
folder with the same settings resumes from its newest checkpoint exactly.
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
from torch import nn
from tqdm import tqdm

from openriff.cae.checkpoint import checkpoint_weights, from_preset, save_pretrained, write_weights
from openriff.cae.codec import SpectrogramCodec
from openriff.cae.config import from_dict, to_dict
from openriff.cae.consistency import sample_training_sigmas
from openriff.cae.data import AudioCrops
from openriff.cae.files import (
    atomic_directory,
    load_weights,
    read_torch_state,
    remove_temporaries,
    writer_lock,
)
from openriff.cae.runs import (
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
from openriff.cae.spectral import to_spectrogram


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a CAE training run (stored as ``train.json`` in the run folder).

    Attributes:
        data: folder of audio files (searched recursively).
        preset: model preset to train (see ``openriff.cae.PRESETS``).
        steps: optimisation steps.
        batch_size: global batch, split evenly across processes.
        crop_latents: crop length in latent frames (``crop_latents * hop_length`` samples);
            None takes the model's ``training_latents``.
        lr: peak learning rate (AdamW).
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up from 0 to ``lr``.
        schedule: ``"constant"`` after warm-up, or ``"cosine"`` decay to ``min_lr``.
        min_lr: final learning rate of the cosine schedule.
        ema_decay: decay of the exponential moving average of the weights.
        grad_clip: maximum global gradient norm.
        checkpoint_every: steps between checkpoints (and at the end).
        keep_checkpoints: newest checkpoints kept.
        log_every: steps between log lines.
        seed: seed of the run's generator.
        bf16: bf16 autocast on CUDA (ignored on CPU).
        init: a checkpoint folder whose weights start the run instead of the preset's
            initialisation (fine-tuning); parameters the preset adds to it (a new head)
            keep their initialisation, anything else that does not fit is refused.
        frozen: parameter-name prefixes that are not trained (``"encoder"``: fine-tune
            the decoder of a codec whose latents a diffusion model already uses; its
            latents stay exactly what they were).
    """

    data: str
    preset: str = "diffariff-tiny"
    steps: int = 100_000
    batch_size: int = 16
    crop_latents: int | None = None
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    schedule: str = "constant"
    min_lr: float = 1e-6
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    bf16: bool = True
    init: str | None = None
    frozen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        for name in ("steps", "batch_size", "crop_latents", "checkpoint_every", "log_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("lr", "grad_clip"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        for name in ("min_lr", "weight_decay"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Learning rate used for optimisation step ``step`` (0-based)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def _save_checkpoint(
    run: Path,
    step: int,
    model: SpectrogramCodec,
    ema: SpectrogramCodec,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    keep: int,
) -> Path:
    target = checkpoint_folder(run, step)
    with atomic_directory(target) as tmp:
        write_weights(model, tmp, ema=ema)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        torch.save(state, tmp / "trainer.pt")
    prune_checkpoints(run, keep)
    return target


def initial_model(config: TrainConfig) -> SpectrogramCodec:
    """The model a run starts from.

    The preset initialised from the run's seed, then the weights of ``config.init`` where
    given, with the ``config.frozen`` parameters fixed.

    Raises:
        FileNotFoundError: ``init`` has no weights.
        ValueError: ``init``'s weights do not fit the preset, or a ``frozen`` prefix names
            no parameter.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = from_preset(config.preset)
    if config.init is not None:
        load_weights(model, checkpoint_weights(Path(config.init)), Path(config.init), partial=True)
    for prefix in config.frozen:
        named = [p for name, p in model.named_parameters() if (name + ".").startswith(prefix + ".")]
        if not named:
            raise ValueError(f"frozen: {prefix!r} names no parameter of preset {config.preset}")
        for parameter in named:
            parameter.requires_grad_(False)
    return model


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> Path:
    """Train (or resume training) a CAE; returns the ``final/`` checkpoint folder.

    Args:
        config: run settings.
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
    if config.batch_size % d.world:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by {d.world} processes")
    run = Path(run_dir)
    model = initial_model(config).to(device).train()
    crop_latents = config.crop_latents or model.training_latents
    # The data is checked before the run folder is made: a refused run leaves nothing.
    dataset = AudioCrops(
        config.data, model.sample_rate, model.channels, crop_latents * model.hop_length
    )
    # One writer per run folder: a second run into it is refused (rank 0 holds the lock).
    with writer_lock(run) if d.rank == 0 else contextlib.nullcontext():
        return _train(config, run, model, dataset, crop_latents, device, d, show_progress)


def _train(
    config: TrainConfig,
    run: Path,
    model: SpectrogramCodec,
    dataset: AudioCrops,
    crop_latents: int,
    device: torch.device,
    d: Dist,
    show_progress: bool,
) -> Path:
    check_settings(run, to_dict(config), lambda stored: to_dict(from_dict(TrainConfig, stored)), d)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
    )
    generator = torch.Generator().manual_seed(config.seed)
    step = 0
    if d.rank == 0:  # a killed run's half-written checkpoint folders
        remove_temporaries(run / "checkpoints", "step-")
    existing = checkpoints(run)
    if existing:
        step = _resume(existing[-1], model, ema, optimizer, generator, device)
    ddp: nn.Module = model
    if d.world > 1:
        ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    local = config.batch_size // d.world
    shard = slice(d.rank * local, (d.rank + 1) * local)
    spec_shape = (
        config.batch_size,
        2 * model.channels,
        model.spectrogram.bins,
        crop_latents * model.frames_per_latent,
    )
    log_path = run / "log.jsonl"
    if d.rank == 0:
        truncate_log(log_path, step)
    bar = tqdm(
        total=config.steps, initial=step, disable=not show_progress or d.rank != 0, unit="step"
    )
    autocast = device.type == "cuda" and config.bf16
    started = time.perf_counter()
    while step < config.steps:
        crops = dataset.draw(config.batch_size, generator)
        sigma, sigma_teacher = sample_training_sigmas(
            config.batch_size,
            step / config.steps,
            model.consistency,
            generator=generator,
            device=torch.device("cpu"),
        )
        noise = torch.randn(spec_shape, generator=generator)
        uniform = torch.rand(config.batch_size, generator=generator)
        wave = dataset.batch(crops[shard]).to(device)
        spec = to_spectrogram(wave, model.spectrogram)
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = ddp(
                spec,
                noise[shard].to(device),
                sigma[shard].to(device),
                sigma_teacher[shard].to(device),
                uniform[shard].to(device),
                step / config.steps,
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        update_ema(ema, model, min(config.ema_decay, (1 + step) / (10 + step)))
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            mean_loss = loss.detach().float()
            if d.world > 1:
                dist.all_reduce(mean_loss)
                mean_loss /= d.world
            if d.rank == 0:
                record = {
                    "step": step,
                    "loss": mean_loss.item(),
                    "grad_norm": float(grad_norm),
                    "lr": lr,
                    "seconds": round(time.perf_counter() - started, 3),
                }
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=f"{record['loss']:.4g}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            if d.rank == 0:
                _save_checkpoint(
                    run, step, model, ema, optimizer, generator, config.keep_checkpoints
                )
            barrier(d)
    bar.close()
    final = run / "final"
    if d.rank == 0:
        save_pretrained(model, final, ema=ema, overwrite=True)
    barrier(d)
    return final


def _resume(
    checkpoint: Path,
    model: SpectrogramCodec,
    ema: SpectrogramCodec,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
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
    return int(state["step"])
