"""How long a denoiser may run in one pass: held-out loss against the sequence length.

The backbones run at any length (the U-Net's convolutions and attention, the DiT's rotary
positions) but are trained on windows of one length, and far beyond it their estimates
degrade (a tiny DiT's held-out loss: +16 % at 16x its training length, +57 % at 64x, in
the issue-28 audit). :func:`length_ratios` measures it on held-out songs: for each
multiple ``m`` of the training window, the denoising loss of crops ``m`` windows long
denoised in one pass, over the loss of the same crops cut into training-length windows,
with the same noise at the same levels. :func:`longest_one_pass` reads off the longest
multiple whose ratio stays within a tolerance; ``openriff evaluate lengths --record``
writes it as the bundle's ``one_pass_frames``, the longest pass generation makes (longer
audio goes in cross-faded windows).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.samplers import Denoiser
from openriff.pipeline.data.layout import load_stems, read_songs
from openriff.pipeline.levels import db_to_gain, gain_to

if TYPE_CHECKING:
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline

# Noise levels (times sigma_data) the loss is averaged over: where the pitch and the
# rhythm are decided (high) down to the detail (low).
LEVELS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class LengthReport:
    """Held-out loss in one pass over loss in training-length windows, per multiple.

    Attributes:
        window: the training window in latent frames.
        multiples: lengths measured, in windows.
        ratios: one-pass loss over windowed loss at each multiple (1: no degradation).
        crops: crops measured at each multiple.
        songs: songs the crops came from.
        tolerance: the largest ratio counted as no meaningful increase.
        longest: the longest one-pass length in frames (``window`` times the largest
            multiple whose ratio, and every shorter one's, is within the tolerance).
    """

    window: int
    multiples: list[int] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    crops: list[int] = field(default_factory=list)
    songs: int = 0
    tolerance: float = 0.05
    longest: int = 0

    def summary(self) -> str:
        """One line per multiple, then the verdict."""
        lines = [f"training window: {self.window} frames; {self.songs} songs"]
        for m, r, c in zip(self.multiples, self.ratios, self.crops, strict=True):
            lines.append(f"  {m:>3}x ({m * self.window:>5} frames, {c} crops): loss x{r:.3f}")
        lines.append(f"longest one pass within +{self.tolerance:.0%}: {self.longest} frames")
        return "\n".join(lines)


def weighted_loss(
    denoiser: Denoiser, target: Tensor, cond: Conditioning, noise: Tensor, levels: Sequence[float]
) -> Tensor:
    """EDM-weighted denoising error ``[B]`` of ``target`` ``[B, D, T]`` at ``levels``.

    ``lambda = (sigma^2 + sd^2) / (sigma sd)^2`` makes every level's error 1 for an
    estimate no better than the data's mean (Karras et al. 2022, eq. 8).
    """
    sd = float(denoiser.sigma_data)
    total = torch.zeros(target.shape[0], dtype=torch.float64, device=target.device)
    for i, level in enumerate(levels):
        sigma = level * sd
        x = target + sigma * noise[i]
        estimate = denoiser(x, torch.full((target.shape[0],), sigma, device=x.device), cond)
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        total += weight * (estimate.float() - target).square().double().mean(dim=(1, 2))
    return total / len(levels)


@torch.no_grad()
def length_ratios(
    pipeline: AccompanimentPipeline,
    data: str | Path,
    *,
    layout: str = "generic",
    split: str | None = "test",
    target: str = "bass",
    multiples: Sequence[int] = (1, 2, 4, 8),
    tolerance: float = 0.05,
    seed: int = 0,
) -> LengthReport:
    """Measure :class:`LengthReport` on the songs of a data set.

    Each song's target (its non-vocal stems of instrument ``target``) and context (every
    other stem) are encoded whole as generation would (context at the bundle's level,
    the target with the same gain); crops of each multiple are cut from the start of each
    song long enough, one per song and multiple.
    """
    if not multiples or any(m < 1 for m in multiples) or tolerance < 0:
        raise ValueError("multiples must be >= 1 and the tolerance >= 0")
    report = LengthReport(window=pipeline.training_window, tolerance=tolerance)
    encoded = []
    for song in read_songs(layout, data, split)[0]:
        names = [s.name for s in song.stems if s.instrument == target and not s.vocal]
        waves = load_stems(song)
        if not any(n in waves for n in names) or not any(n not in names for n in waves):
            continue
        stem = np.sum([waves[n] for n in names if n in waves], axis=0, dtype=np.float32)
        context = np.sum([w for n, w in waves.items() if n not in names], axis=0, dtype=np.float32)
        gain = 1.0
        if pipeline.levels is not None:
            gain = db_to_gain(gain_to(context[None], pipeline.levels.context_lufs))
        cond = pipeline.encode_context(torch.from_numpy(context[None]).float())
        latents = pipeline.encode(torch.from_numpy(stem[None] * gain).float())
        encoded.append((latents.float(), cond.float()))
    report.songs = len(encoded)
    generator = torch.Generator().manual_seed(seed)
    denoiser = pipeline.model.denoiser
    for m in sorted(set(multiples)):
        frames = m * report.window
        crops = [(z[..., :frames], c[..., :frames]) for z, c in encoded if z.shape[-1] >= frames]
        if not crops:
            break
        target_, context_ = torch.cat([z for z, _ in crops]), torch.cat([c for _, c in crops])
        noise = torch.randn((len(LEVELS), *target_.shape), generator=generator).to(target_)
        keep = torch.ones(target_.shape[0], dtype=torch.bool, device=target_.device)
        whole = weighted_loss(
            denoiser, target_, Conditioning(context=context_, keep_context=keep), noise, LEVELS
        )
        parts = [
            weighted_loss(
                denoiser, target_[..., i : i + report.window],
                Conditioning(context=context_[..., i : i + report.window], keep_context=keep),
                noise[..., i : i + report.window], LEVELS,
            )
            for i in range(0, frames, report.window)
        ]  # fmt: skip
        report.multiples.append(m)
        report.ratios.append(float(whole.mean() / torch.stack(parts).mean()))
        report.crops.append(len(crops))
    if not report.multiples:
        raise ValueError(f"{data}: no song with a {target!r} stem and a context to measure")
    report.longest = longest_one_pass(report.multiples, report.ratios, tolerance) * report.window
    return report


def longest_one_pass(multiples: Sequence[int], ratios: Sequence[float], tolerance: float) -> int:
    """The largest multiple whose ratio and every shorter multiple's are within tolerance."""
    longest = 1
    for m, ratio in sorted(zip(multiples, ratios, strict=True)):
        if not math.isfinite(ratio) or ratio > 1.0 + tolerance:
            break
        longest = m
    return longest


def record_one_pass(bundle: Path, report: LengthReport) -> None:
    """Write ``one_pass_frames`` (and the measurement) into ``bundle/bundle.json``."""
    from openriff.latent_diffusion.files import write_atomic

    path = bundle / "bundle.json"
    info = json.loads(path.read_text())
    info["one_pass_frames"] = report.longest
    info["one_pass_measured"] = {
        "window": report.window, "multiples": report.multiples,
        "ratios": [round(r, 4) for r in report.ratios], "crops": report.crops,
        "songs": report.songs, "tolerance": report.tolerance,
    }  # fmt: skip
    text = json.dumps(info, indent=1) + "\n"
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))
