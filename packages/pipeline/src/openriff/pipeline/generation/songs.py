"""Modes over several CLAP conditions: interpolation between two, and whole songs.

* :func:`interpolate`: stems along the spherical interpolation between two CLAP
  embeddings, all with the same seed, so only the embedding changes along the way;
* :func:`song`: the iterative whole-song mode of Diff-A-Riff 4.3.3, one stem per part,
  each conditioned on the mix of the context and the stems so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from openriff.pipeline.audio_io import SAMPLE_RATE, AudioInput, load_input, match_channels, mix
from openriff.pipeline.generation.engine import Engine
from openriff.pipeline.generation.options import Generation, describe
from openriff.pipeline.limits import check_request, seconds_to_samples


def interpolate(
    self: Engine,
    start: str | AudioInput,
    end: str | AudioInput,
    context: AudioInput | None = None,
    *,
    points: int = 5,
    duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    **options: Any,
) -> Generation:
    """Stems along the spherical interpolation between two CLAP conditions.

    Every point uses the same seed, so only the embedding changes along the way.

    Args:
        self: the pipeline (this is its ``interpolate`` method).
        start: a prompt (``str``) or a reference recording (path or array).
        end: the same kinds as ``start``.
        context: the music to fit, or None (then ``duration`` is needed).
        points: stems from ``start`` (t = 0) to ``end`` (t = 1), >= 2.
        duration: seconds to generate when there is no context.
        sample_rate: rate of array inputs.
        **options: :class:`~openriff.pipeline.generation.options.Sampling` options
            (``num_candidates`` must be 1).

    Returns:
        stems ``[points, channels, samples]``; the settings list the ``t`` values.
    """
    from openriff.clap_bridge.bridge import slerp

    call = self.begin(options, sample_rate)
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    if call.options.num_candidates != 1:
        raise ValueError("interpolate makes one stem per point: num_candidates must be 1")
    latents, heard, length = self.context_and_length(context, duration, sample_rate)
    check_request(length, points, f"interpolate over {points} points")
    use_bridge = call.options.use_bridge
    a, b = (self.embed(source, use_bridge=use_bridge, generator=call.bridge,
                       sample_rate=sample_rate) for source in (start, end))  # fmt: skip
    weights = np.linspace(0.0, 1.0, points).tolist()
    stems, codes = [], []
    for t in weights:
        call.noise = torch.Generator(device=self.device).manual_seed(call.seed)  # same noise
        sampled = self.sample(call, self.frames(length), latents, slerp(a, b, t).to(self.device))
        codes.append(sampled.stacked())
        stems.append(self.decode(sampled.channels, length, call.seed).cpu().numpy())
    context_audio = None if heard is None else heard.numpy()
    audio, level = self.level(np.concatenate(stems), self.output_lufs(context_audio))
    settings = self.settings(
        call, "interpolate", start=describe(start), end=describe(end), t=weights,
        context=describe(context), duration=length / SAMPLE_RATE, level=level,
    )  # fmt: skip
    return Generation(audio, SAMPLE_RATE, settings, np.concatenate(codes), None, context_audio)


def song(
    self: Engine,
    parts: list[str | AudioInput],
    context: AudioInput | None = None,
    *,
    duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    **options: Any,
) -> Generation:
    """Whole-song mode (Diff-A-Riff 4.3.3): one stem per part, each fitting the previous.

    The first stem is generated from its CLAP condition alone (or fitting ``context``, if
    given); every next one is conditioned on the sum of the context and all stems so far.

    Args:
        self: the pipeline (this is its ``song`` method).
        parts: prompts (``str``) or reference recordings (path or array), in order.
        context: music to start from, or None (then ``duration`` is needed).
        duration: seconds when there is no context.
        sample_rate: rate of array inputs.
        **options: :class:`~openriff.pipeline.generation.options.Sampling` options
            (``num_candidates`` must be 1).

    Returns:
        the stems ``[len(parts), channels, samples]`` in order and their mix (with the
        context, if any) in ``mix``.
    """
    call = self.begin(options, sample_rate)
    if not parts:
        raise ValueError("song needs at least one prompt or reference")
    if call.options.num_candidates != 1:
        raise ValueError("song makes one stem per part: num_candidates must be 1")
    if context is not None and duration is not None:
        raise ValueError("give a context or a duration, not both")
    first: list[NDArray[np.float32]] = []  # the context, mixed in with the stems
    if context is not None:
        first = [load_input(context, "context", sample_rate).numpy()]
        length = int(first[0].shape[-1])
    else:
        if duration is None:
            raise ValueError("without a context, give a duration > 0 in seconds")
        length = seconds_to_samples(duration, "duration")
    check_request(length, len(parts), f"song of {len(parts)} parts")
    running = first[0] if first else None
    stems: list[NDArray[np.float32]] = []
    codes, levels = [], []
    for part in parts:
        latents = None if running is None else self.encode_context(torch.from_numpy(running))
        embedding = self.embed(part, use_bridge=call.options.use_bridge, generator=call.bridge,
                               sample_rate=sample_rate)  # fmt: skip
        sampled = self.sample(call, self.frames(length), latents, embedding)
        codes.append(sampled.stacked())
        decoded = self.decode(sampled.channels, length, call.seed).cpu().numpy()
        leveled, level = self.level(decoded.astype(np.float32), self.output_lufs(running))
        levels.append(level)
        stem = leveled[0]  # set against the music so far
        stems.append(stem)
        running = stem if running is None else _sum(running, stem)
    song_mix, gain = mix([*first, *stems])
    settings = self.settings(
        call, "song", parts=[describe(p) for p in parts], context=describe(context),
        duration=length / SAMPLE_RATE, mix_gain=gain, level=levels,
    )  # fmt: skip
    width = max(s.shape[0] for s in stems)
    audio = np.stack([match_channels(s, width) for s in stems])
    return Generation(audio, SAMPLE_RATE, settings, np.concatenate(codes), song_mix)


def _sum(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    channels = max(a.shape[0], b.shape[0])
    return match_channels(a, channels) + match_channels(b, channels)
