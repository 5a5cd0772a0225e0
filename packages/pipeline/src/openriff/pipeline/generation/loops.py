"""Seamless loops: stems whose end continues into their start (Diff-A-Riff 5.3).

The denoiser sees the sequence circularly padded
(:class:`~openriff.latent_diffusion.controls.LoopDenoiser`); the latents are decoded three
times over and the middle copy kept, its last latent frame cross-faded into the audio that
precedes its start, and the result resampled to exactly the loop's length in samples (the
latent grid rarely divides a bar; the pitch moves by at most half a frame over the loop's
length: up to 37 cents for 1 bar at 120 bpm, less for longer loops; ``exact_tempo=False``
keeps the pitch instead).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from openriff.pipeline.audio_io import SAMPLE_RATE, AudioInput, load_input
from openriff.pipeline.generation.engine import Engine
from openriff.pipeline.generation.options import Generation, describe
from openriff.pipeline.limits import check_request


def loop(
    self: Engine,
    bars: int = 4,
    bpm: float = 120.0,
    context: AudioInput | None = None,
    prompt: str | None = None,
    reference: AudioInput | None = None,
    *,
    beats_per_bar: int = 4,
    exact_tempo: bool = True,
    sample_rate: int = SAMPLE_RATE,
    **options: Any,
) -> Generation:
    """A seamless loop of ``bars`` bars at ``bpm``: played repeatedly, it has no seam.

    The loop is made on the latent grid (a whole number of frames) and then resampled to
    the bars' exact length, which shifts the pitch by at most half a frame over the loop's
    length (``settings["pitch_shift_cents"]``). With ``exact_tempo=False`` it is not
    resampled: the pitch is untouched and the tempo is ``settings["loop_bpm"]``.

    Args:
        self: the pipeline (this is its ``loop`` method).
        bars: loop length in bars.
        bpm: tempo in beats per minute.
        context: a loop of the other instruments (its first ``bars`` bars are used), or
            None.
        prompt: text for the CLAP condition.
        reference: a recording for the CLAP condition.
        beats_per_bar: beats in a bar.
        exact_tempo: resample to the exact length of the bars (else keep the pitch).
        sample_rate: rate of array inputs.
        **options: :class:`~openriff.pipeline.generation.options.Sampling` options.

    Returns:
        stems of exactly ``round(bars * beats_per_bar * 60 / bpm * 48000)`` samples
        (``exact_tempo``), else of a whole number of latent frames.
    """
    call = self.begin(options, sample_rate)
    if bars < 1 or beats_per_bar < 1:
        raise ValueError(f"bars and beats_per_bar must be >= 1, got {bars}, {beats_per_bar}")
    if not 20.0 <= bpm <= 400.0:
        raise ValueError(f"bpm must be in [20, 400], got {bpm}")
    length = round(bars * beats_per_bar * 60.0 / bpm * SAMPLE_RATE)
    check_request(length, call.options.num_candidates, f"loop of {bars} bars")
    frames = max(2, round(length / self.hop))
    period = self.samples(frames)  # the loop on the latent grid, resampled to `length`
    latents = heard = None
    if context is not None:
        ctx = load_input(context, "context", sample_rate)
        if ctx.shape[-1] < length:
            raise ValueError(
                f"the context is {ctx.shape[-1] / SAMPLE_RATE:.2f} s, shorter than the "
                f"loop ({length / SAMPLE_RATE:.2f} s)"
            )
        cycle = resample_periodic(ctx[:, :length].numpy(), length, period)
        tiled = torch.from_numpy(np.tile(cycle, (1, 3)))
        latents = self.encode_context(tiled)[..., frames : 2 * frames]
        heard = ctx[:, :length]
    embedding = self.embedding(call, prompt, reference)
    margin = min(frames, max(2, self.window // 4))
    sampled = self.sample(call, frames, latents, embedding, loop_margin=margin)
    three = self.decode([z.repeat(1, 1, 3) for z in sampled.channels], 3 * period, call.seed)
    cycle = seamless_cycle(three.cpu().numpy(), period, min(round(self.hop), period // 4))
    target = length if exact_tempo else period
    audio = np.stack([resample_periodic(c, period, target) for c in cycle])
    return self.result(
        sampled, torch.from_numpy(audio), heard, "loop", bars=bars, bpm=bpm,
        beats_per_bar=beats_per_bar, prompt=prompt, reference=describe(reference),
        context=describe(context), duration=target / SAMPLE_RATE, latent_frames=frames,
        exact_tempo=exact_tempo, pitch_shift_cents=1200 * math.log2(period / target),
        loop_bpm=bpm * length / target,
    )  # fmt: skip


def seamless_cycle(three: NDArray[np.float32], period: int, fade: int) -> NDArray[np.float32]:
    """The middle period of ``[B, C, 3 * period]`` audio, continuous across its wrap-around.

    The audio is a latent loop tiled three times and decoded. The middle copy's end
    continues into copy 2; it is faded (over ``fade`` samples) into copy 0's end, which is
    what precedes the middle copy's start.
    """
    cycle = three[..., period : 2 * period].copy()
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    tail = slice(period - fade, period)
    cycle[..., tail] = (1 - ramp) * cycle[..., tail] + ramp * three[..., tail]
    return cycle


def resample_periodic(wave: NDArray[np.float32], period: int, length: int) -> NDArray[np.float32]:
    """One period ``[C, period]`` of a periodic signal resampled to ``[C, length]``.

    Three periods are resampled and the middle one kept, so the filter sees the signal's
    own wrap-around at both ends and the result is periodic too.
    """
    if period == length:
        return wave
    import soxr

    tiled = np.tile(wave, (1, 3)).T  # (3P, C)
    out = soxr.resample(np.ascontiguousarray(tiled), period, length, quality="VHQ")
    return np.ascontiguousarray(out[length : 2 * length].T.astype(np.float32))
