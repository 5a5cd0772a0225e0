"""Generating accompaniment stems from a bundle, with all of Diff-A-Riff's controls.

:class:`AccompanimentPipeline` covers the paper's conditioning settings (Diff-A-Riff 4.3.1):
context + CLAP embedding of a reference (CLAP_A) or of a prompt (CLAP_T, through the
bundle's bridge prior when it has one), context only, embedding only, and unconditional;
multi-condition CFG (``cfg_context``, ``cfg_clap``, CFG rescale, DiT follow-up 4.2), four
samplers, any context length and pseudo-stereo. On top of :meth:`~AccompanimentPipeline.
generate` come the controls that "naturally emerge from the denoising process" (paper 5.3):
:meth:`~AccompanimentPipeline.inpaint` (and outpainting), :meth:`~AccompanimentPipeline.
vary`, :meth:`~AccompanimentPipeline.loop`, :meth:`~AccompanimentPipeline.interpolate`
between CLAP embeddings, style grounding to a reference (bass paper 3.3; the
``style_reference`` option of every method) and :meth:`~AccompanimentPipeline.song`, the
iterative whole-song mode of 4.3.3. Seeds reproduce exactly.

Every mode is a short function over :class:`~openriff.pipeline.generation.engine.Engine`
that says what is different about it; they all sample through one routine,
:func:`openriff.latent_diffusion.controls.sample_windowed`:

* Long sequences are sampled in windows of the training length. Each window after the
  first is inpainted with the last quarter of the previous one as its known start, so the
  windows continue each other instead of being cross-faded. Inpainting and variations use
  the same windows, with their own known frames added to each window's mask.
* Pseudo-stereo (mono codecs): the right channel is a variation of the left with strength
  ``stereo_width`` (:func:`~openriff.latent_diffusion.stereo.pseudo_stereo`); known
  frames (inpainting) stay identical in both channels.
* Loops (:mod:`.loops`) and the interpolation and whole-song modes (:mod:`.songs`) live in
  their own modules.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from openriff.pipeline.audio_io import SAMPLE_RATE, AudioInput, load_input
from openriff.pipeline.generation.conditions import EmbeddingInput
from openriff.pipeline.generation.engine import Engine
from openriff.pipeline.generation.loops import loop
from openriff.pipeline.generation.options import Generation, describe
from openriff.pipeline.generation.songs import interpolate, song
from openriff.pipeline.limits import STREAMED_BYTES_PER_SECOND, check_request
from openriff.pipeline.streamed import ContextFile


class AccompanimentPipeline(Engine):
    """Accompaniment generation from an :class:`~openriff.pipeline.bundle.AccompanimentModel`.

    Every method takes the :class:`~openriff.pipeline.generation.options.Sampling` options
    as keywords (``steps``, ``sampler``, ``cfg_context``, ``seed``, ...); one left out, or
    a recommendable one given as None, takes the bundle's recommendation, else the default.
    Construction (and :meth:`from_pretrained`) is :class:`~openriff.pipeline.generation.
    engine.Engine`'s.
    """

    loop = loop
    interpolate = interpolate
    song = song

    def generate(
        self,
        context: AudioInput | None = None,
        prompt: str | None = None,
        reference: AudioInput | None = None,
        *,
        duration: float | None = None,
        clap_embedding: EmbeddingInput | None = None,
        clap_unconditional: bool = False,
        sample_rate: int = SAMPLE_RATE,
        keep_context: bool = True,
        **options: Any,
    ) -> Generation:
        """Generate stems that fit ``context`` (as long as it).

        Args:
            context: a path, an array ``[S]``/``[C, S]`` at ``sample_rate``, or None.
            prompt: text for the CLAP condition (CLAP_T).
            reference: a recording (path or array) for the CLAP condition (CLAP_A);
                takes precedence over ``prompt``.
            duration: seconds to generate when there is no context.
            clap_embedding: a CLAP embedding to condition on as such (``.npy`` path or
                array ``[E]``/``[1, E]``, made unit-norm; CLAP_E), instead of a prompt or a
                reference.
            clap_unconditional: condition on an audio embedding the bridge prior draws
                without a prompt (CLAP_A*, DiT follow-up 5).
            sample_rate: rate of array inputs.
            keep_context: keep the context's audio in the result (``Generation.context``).
                False: a context file is read as it is needed and never held whole, so a
                long song takes little memory (``Generation.context_file`` names it; the
                stems are the same).
            **options: :class:`~openriff.pipeline.generation.options.Sampling` options.

        Returns:
            stems ``[num_candidates, channels, samples]`` and the settings.
        """
        call = self.begin(options, sample_rate)
        source = None if keep_context or duration is not None else self.context_file(context)
        latents: Tensor | None
        heard: Tensor | ContextFile | None
        if source is not None:  # the file stands for the audio, read as it is needed
            check_request(source.samples, call.options.num_candidates, "generate",
                          per_second=STREAMED_BYTES_PER_SECOND)  # fmt: skip
            latents, heard, length = self.encode_context_file(source), source, source.samples
        else:
            latents, heard, length = self.context_and_length(context, duration, sample_rate)
            check_request(length, call.options.num_candidates, "generate")
        embedding = self.embedding(call, prompt, reference, clap_embedding, clap_unconditional)
        clap = _clap_name(reference, prompt, clap_embedding, clap_unconditional)
        sampled = self.sample(call, self.frames(length), latents, embedding)
        audio = self.decode(sampled.channels, length, call.seed)
        conditioning = _setting(latents is not None, embedding is not None, clap)
        return self.result(
            sampled, audio, heard, "generate", prompt=prompt, reference=describe(reference),
            clap_embedding=describe(clap_embedding), clap_unconditional=clap_unconditional,
            context=describe(context), duration=length / SAMPLE_RATE, conditioning=conditioning,
        )  # fmt: skip

    def inpaint(
        self,
        stem: AudioInput,
        start: float,
        end: float,
        context: AudioInput | None = None,
        prompt: str | None = None,
        reference: AudioInput | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """Regenerate ``[start, end)`` seconds of ``stem``, keeping the rest (in/outpainting).

        A region reaching past the stem's end extends it (outpainting), one starting before
        0 s prepends to it; the output spans ``[min(0, start), max(duration, end))`` (a gap
        between the stem's end and a later ``start`` is kept as silence). The latent frames
        outside the region are kept exactly, so outside the region the output is the
        stem's codec round trip. A context, aligned with the output's start, must cover
        the output (longer ones are cropped).

        Args:
            stem: the stem to edit (path or array).
            start: region start in seconds (negative: prepend).
            end: region end in seconds (past the stem's end: extend).
            context: the music the stem belongs to, or None.
            prompt: text for the CLAP condition.
            reference: a recording for the CLAP condition.
            sample_rate: rate of array inputs.
            **options: :class:`~openriff.pipeline.generation.options.Sampling` options.
        """
        call = self.begin(options, sample_rate)
        if not (math.isfinite(start) and math.isfinite(end) and start < end):
            raise ValueError(f"the region must have start < end, got [{start}, {end})")
        wave = load_input(stem, "stem", sample_rate)  # (C, S)
        before = max(0, round(-start * SAMPLE_RATE))  # output samples before the stem
        pad = self.samples(self.frames(before)) if before else 0  # ...to whole frames
        length = before + max(int(wave.shape[-1]), round(end * SAMPLE_RATE))
        shift = pad - before  # padded samples before the output's start
        check_request(shift + length, call.options.num_candidates, "inpaint")
        frames = self.frames(shift + length)
        total = self.samples(frames)
        padded = torch.zeros(wave.shape[0], total)
        padded[:, pad : pad + wave.shape[-1]] = wave
        known = self.encode(padded)[..., :frames]  # (1, D, frames)
        lo, hi = pad + round(start * SAMPLE_RATE), pad + round(end * SAMPLE_RATE)
        index = torch.arange(frames, dtype=torch.float64)
        inside = (index * self.hop < hi) & ((index + 1) * self.hop > lo)
        if bool(inside.all()):
            raise ValueError("the region covers the whole stem: use generate() instead")
        latents = heard = None
        if context is not None:
            ctx = load_input(context, "context", sample_rate)
            if ctx.shape[-1] < length - self.hop:
                raise ValueError(
                    f"the context is {ctx.shape[-1] / SAMPLE_RATE:.2f} s, shorter than the "
                    f"output ({length / SAMPLE_RATE:.2f} s)"
                )
            aligned = torch.zeros(ctx.shape[0], total)
            take = min(ctx.shape[-1], total - shift)
            aligned[:, shift : shift + take] = ctx[:, :take]
            latents = self.encode_context(aligned)[..., :frames]
            heard = ctx[:, :length]
        embedding = self.embedding(call, prompt, reference)
        sampled = self.sample(call, frames, latents, embedding, known=known, mask=~inside)
        audio = self.decode(sampled.channels, total, call.seed)[..., shift : shift + length]
        return self.result(
            sampled, audio, heard, "inpaint", keep_level=True, stem=describe(stem), start=start,
            end=end, prompt=prompt, reference=describe(reference), context=describe(context),
            duration=length / SAMPLE_RATE, regenerated_frames=int(inside.sum()), frames=frames,
        )  # fmt: skip

    def vary(
        self,
        stem: AudioInput,
        strength: float = 0.5,
        context: AudioInput | None = None,
        prompt: str | None = None,
        reference: AudioInput | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """A variation of ``stem``: its latents noised part-way down the schedule and denoised.

        Args:
            stem: the stem to vary (path or array).
            strength: in (0, 1]: the share of the schedule run again; near 0 stays close to
                the stem, 1 starts from (almost) pure noise.
            context: the music the stem belongs to (covering the stem), or None.
            prompt: text for the CLAP condition.
            reference: a recording for the CLAP condition.
            sample_rate: rate of array inputs.
            **options: :class:`~openriff.pipeline.generation.options.Sampling` options.
        """
        call = self.begin(options, sample_rate)
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        wave = load_input(stem, "stem", sample_rate)
        length = int(wave.shape[-1])
        check_request(length, call.options.num_candidates, "vary")
        init = self.encode(wave)
        latents, heard = self.context_latents(context, sample_rate, length, "stem")
        embedding = self.embedding(call, prompt, reference)
        frames = int(init.shape[-1])
        sampled = self.sample(call, frames, latents, embedding, init=init, strength=strength)
        audio = self.decode(sampled.channels, length, call.seed)
        return self.result(
            sampled, audio, heard, "vary", keep_level=True, stem=describe(stem),
            strength=strength, prompt=prompt, reference=describe(reference),
            context=describe(context), duration=length / SAMPLE_RATE,
        )  # fmt: skip


def _clap_name(reference: object, prompt: object, given: object, unconditional: bool) -> str:
    """The papers' name of a CLAP condition (CLAP_E: an embedding given as such)."""
    if given is not None:
        return "CLAP_E"
    if unconditional:
        return "CLAP_A*"
    return "CLAP_A" if reference is not None else "CLAP_T" if prompt is not None else "CLAP"


def _setting(has_context: bool, has_embedding: bool, clap: str) -> str:
    """The paper's name of the conditioning setting (Diff-A-Riff 4.3.1)."""
    if has_context and has_embedding:
        return f"{clap} + context"
    if has_context:
        return "context only"
    if has_embedding:
        return f"{clap} only"
    return "unconditional"
