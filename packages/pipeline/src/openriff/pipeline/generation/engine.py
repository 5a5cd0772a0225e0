"""The steps every generation mode shares: options, seeds, sampling, decoding, settings.

A mode (:mod:`~openriff.pipeline.generation.pipeline`, :mod:`.loops`, :mod:`.songs`)
reads its inputs, then asks :class:`Engine` to

1. :meth:`~Engine.begin` a call: the options over the bundle's recommendations, the seed
   and its generators (one per purpose: sampling noise, bridge draws, decoding), so a seed
   means the same noise in every mode;
2. :meth:`~Engine.sample` latents: the guided, optionally style-grounded and circular
   denoiser over the objective's schedule, through
   :func:`openriff.latent_diffusion.controls.sample_windowed` (windows, known frames,
   variations) and :func:`~openriff.latent_diffusion.stereo.pseudo_stereo`;
3. :meth:`~Engine.decode` them and :meth:`~Engine.result` the :class:`Generation` with
   every setting used.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.controls import (
    LoopDenoiser,
    StyleGrounding,
    sample_windowed,
    vary_schedule,
)
from openriff.latent_diffusion.guidance import ClippedDenoiser, MultiConditionGuidance
from openriff.latent_diffusion.memory import longest_pass
from openriff.latent_diffusion.objectives import OBJECTIVES
from openriff.latent_diffusion.precision import precision_scope
from openriff.latent_diffusion.samplers import SAMPLERS, Denoiser
from openriff.latent_diffusion.stereo import pseudo_stereo
from openriff.pipeline.audio_io import SAMPLE_RATE, AudioInput, load_input
from openriff.pipeline.bundle import AccompanimentModel, default_bundle
from openriff.pipeline.generation.calls import Call, Sampled, to_numpy
from openriff.pipeline.generation.conditions import Conditioner
from openriff.pipeline.generation.decoding import decode_latents
from openriff.pipeline.generation.options import (
    Generation,
    Sampling,
    derived_seed,
    describe,
    resolve,
)
from openriff.pipeline.generation.progress import Progress, Report
from openriff.pipeline.levels import SILENCE_LUFS, db_to_gain, gain_to, level_stems, loudness
from openriff.pipeline.streamed import ContextFile

Self = TypeVar("Self", bound="Engine")


class Engine(Conditioner):
    """A bundle on a device, with the shared steps of generation (see the module).

    Args:
        model: a loaded bundle.
        device: where to run.
        dtype: dtype of the denoiser's inputs.
        progress: show a progress bar (tqdm, on stderr) while sampling.
        root: the bundle's folder, if it came from one (for :meth:`fingerprint`).
        precision: ``"auto"`` (bf16 on CUDA, fp32 elsewhere), ``"bf16"`` or ``"fp32"``
            (:mod:`openriff.latent_diffusion.precision`): encoding, sampling and decoding.
        compile: run the denoiser through ``torch.compile`` (its first call of each window
            shape compiles, seconds to a minute: worth it for long or repeated
            generations on a GPU; the samples agree with eager ones to float rounding).
    """

    def __init__(
        self,
        model: AccompanimentModel,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        *,
        progress: bool = False,
        root: Path | None = None,
        precision: str = "auto",
        compile: bool = False,
    ) -> None:
        super().__init__(model, device, precision)
        self.dtype = dtype
        self.compile = compile
        self._compiled: Denoiser | None = None
        self.progress = progress
        self.root = root
        # Called with (stage, done, total) after each sampling step ("sampling") and each
        # decoded block ("decoding"): a UI's progress bar; an exception it raises stops
        # the generation there (cancelling).
        self.on_progress: Report | None = None
        self.objective = OBJECTIVES[model.config.objective]
        # The objective's defaults (a consistency model: 5 consistency steps) under the
        # bundle's own recommendations.
        self.recommended = {**dict(self.objective.sampling), **model.sampling}
        try:  # the bundle's recommendations are checked now, not at the first generation
            recommended = Sampling(**self.recommended)
        except ValueError as error:
            raise ValueError(f"the bundle's recommended sampling is invalid: {error}") from error
        self._check_sampler(recommended.sampler, "the bundle recommends")
        declared = model.info.get("min_steps", 1)
        if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
            raise ValueError(
                f"bundle.json 'min_steps' must be a positive integer, got {declared!r}"
            )
        self.min_steps = declared  # fewer steps than this were not checked: a warning

    @classmethod
    def from_pretrained(
        cls: type[Self],
        directory: str | os.PathLike[str] | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        clap_checkpoint: str | os.PathLike[str] | None = None,
        codec_checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
        precision: str = "auto",
        compile: bool = False,
    ) -> Self:
        """Load a bundle folder.

        Args:
            directory: the bundle (default: :func:`~openriff.pipeline.bundle.default_bundle`,
                ``$OPENRIFF_BUNDLE`` else the shipped model).
            device: where to run.
            dtype: dtype of the denoiser's inputs.
            clap_checkpoint: the LAION-CLAP ``.pt`` to use instead of the one the bundle
                names (e.g. the same file at another place on this machine).
            codec_checkpoint: where the official ``music2latent.pt`` is on this machine,
                for a bundle built on it (bundles reference it by path, never copy it).
            progress: show a progress bar while sampling.
            precision: ``"auto"``, ``"bf16"`` or ``"fp32"`` (see the class).
            compile: run the denoiser through ``torch.compile`` (see the class).
        """
        if directory is None:
            directory = default_bundle()
        model = AccompanimentModel.load(directory, device=device, codec_override=codec_checkpoint)
        if clap_checkpoint is not None:
            model.clap_checkpoint = str(clap_checkpoint)
        return cls(
            model, device, dtype, progress=progress, root=Path(directory), precision=precision,
            compile=compile,
        )  # fmt: skip

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the model: ``AccompanimentModel.fingerprint`` of its folder."""
        return self.model.fingerprint(self.root)

    def round_trip(
        self, audio: AudioInput, *, seed: int = 0, sample_rate: int = SAMPLE_RATE
    ) -> NDArray[np.float32]:
        """``audio`` through the bundle's codec, as ``[C_codec, S]`` at 48 kHz.

        Decoded with the noise a generation with ``seed`` uses, so it is what a denoiser
        that found the audio's own latents would give. For a bundle with levels, the audio
        passes through the codec at the loudness of a training stem (as a generated stem
        does) and comes back at its own level.
        """
        wave = load_input(audio, "audio", sample_rate)
        gain = 0.0 if self.levels is None else gain_to(wave.numpy(), self.levels.stem_lufs)
        latents = self.encode(wave * db_to_gain(gain))
        decoded = to_numpy(self.decode([latents], int(wave.shape[-1]), seed))[0]
        return (decoded / np.float32(db_to_gain(gain))).astype(np.float32)

    # The shared steps ----------------------------------------------------------------------

    def begin(self, options: dict[str, Any], sample_rate: int) -> Call:
        """A call with ``options`` over the bundle's recommendations, and its generators.

        Each purpose has its own generator, so a seed gives the same sampling noise in
        every mode, with or without a bridge draw before it (decoding has its own too).
        """
        opts = resolve(options, self.recommended)
        self._check_sampler(opts.sampler, "asked for")
        if opts.steps < self.min_steps:
            warnings.warn(
                f"{opts.steps} sampling steps: this model declares at least {self.min_steps} "
                "(fewer were not checked and may give a noisy or distorted stem)",
                stacklevel=3,
            )
        seed = opts.seed
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        noise = torch.Generator(device=self.device).manual_seed(seed)
        bridge = torch.Generator(device=self.device).manual_seed(derived_seed(seed, "bridge"))
        return Call(opts, seed, noise, bridge, sample_rate)

    def _check_sampler(self, sampler: str, how: str) -> None:
        if sampler not in self.objective.samplers:
            fits = " or ".join(sorted(self.objective.samplers))
            raise ValueError(
                f"sampler {sampler!r} ({how}) does not fit this model's objective "
                f"{self.model.config.objective!r}: use {fits}"
            )

    def guided(self, call: Call, loop_margin: int = 0, *, compiled: bool = True) -> Denoiser:
        """The bundle's denoiser with CFG, style grounding, clipping and loop padding.

        Clipping (on by default) keeps the clean estimate within the codec's
        ``latent_bound``, where the codec has one. ``compiled=False``: on the eager
        denoiser even when :attr:`compile` is set.
        """
        opts = call.options
        net = self.denoiser() if compiled else self.model.denoiser
        denoiser: Denoiser = MultiConditionGuidance(
            net, opts.cfg_context, opts.cfg_clap, rescale_phi=opts.cfg_rescale
        )
        if opts.style_reference is not None and call.style is None:
            call.style = self.style(opts.style_reference, opts.style_strength, call.sample_rate)
        if call.style is not None:
            denoiser = StyleGrounding(denoiser, call.style, opts.style_strength)
        bound = self.model.codec.latent_bound
        if opts.clip_estimate and bound is not None:
            denoiser = ClippedDenoiser(denoiser, bound)
        if loop_margin:
            denoiser = LoopDenoiser(denoiser, loop_margin)
        return denoiser

    def denoiser(self) -> Denoiser:
        """The bundle's denoiser, compiled once when :attr:`compile` is set.

        One compiled graph per window shape (the guidance batch and the window length are
        fixed within a call), so a long context compiles once or twice, not per step.
        """
        if not self.compile:
            return self.model.denoiser
        if self._compiled is None:
            # The compiled module reads sigma_min, sigma_max, ... through to the denoiser.
            compiled = torch.compile(self.model.denoiser, dynamic=False)
            self._compiled = cast(Denoiser, compiled)
        return self._compiled

    def sample(
        self,
        call: Call,
        frames: int,
        context: Tensor | None,
        embedding: Tensor | None,
        *,
        known: Tensor | None = None,
        mask: Tensor | None = None,
        init: Tensor | None = None,
        strength: float = 1.0,
        loop_margin: int = 0,
    ) -> Sampled:
        """Latents of every output channel; a pseudo-stereo right channel for mono codecs.

        Args:
            call: the call.
            frames: latent frames to sample.
            context: ``[1, Dc, frames]`` context, or None.
            embedding: ``[1, E]`` CLAP embedding, or None.
            known: ``[B or 1, D, frames]`` latents kept where ``mask`` is True.
            mask: ``[frames]`` bool.
            init: ``[B or 1, D, frames]`` latents to vary with ``strength``.
            strength: share of the schedule a variation runs.
            loop_margin: circular padding in frames (a loop), or 0.
        """
        opts = call.options
        batch, has_context = opts.num_candidates, context is not None
        if context is None:
            context = torch.zeros(1, self.context_channels, frames, device=self.device)
        cond = Conditioning(
            context=context.expand(batch, -1, -1).to(self.dtype),
            embedding=None if embedding is None else embedding.expand(batch, -1).to(self.dtype),
            keep_context=torch.full((batch,), has_context, device=self.device),
        )
        denoiser = self.guided(call, loop_margin)
        shape = (batch, self.model.codec.latent_dim, frames)
        with precision_scope(self.device, self.precision):
            # One pass up to the declared length where memory allows (CUDA; on a CPU: the
            # declared length).
            call.pass_frames = longest_pass(
                self.guided(call, loop_margin, compiled=False), shape, cond,
                self.training_window, min(self.window, frames),
                device=self.device, dtype=self.dtype,
            )  # fmt: skip
        # The objective's own schedule: Karras for EDM, Karras above sigma_min for
        # consistency, cosine for v.
        net = self.model.denoiser
        schedule = self.objective.schedule
        sigmas = schedule(opts.steps, net.sigma_min, net.sigma_max)  # read on the CPU
        width = opts.stereo_width if self.model.codec.channels == 1 else 0.0
        loop = loop_margin > 0
        first = len(vary_schedule(sigmas, strength) if init is not None else sigmas) - 1
        second = len(vary_schedule(sigmas, width)) - 1 if width > 0 else 0
        total = first + second
        with Progress("sampling", "step", self.progress, self.on_progress) as steps:

            def windowed(init_: Tensor | None, strength_: float) -> Tensor:
                return sample_windowed(
                    SAMPLERS[opts.sampler], denoiser, shape, sigmas, window=call.pass_frames,
                    cond=cond, generator=call.noise, known=known, mask=mask,
                    init=init if init_ is None else init_,
                    strength=strength if init_ is None else strength_, loop=loop,
                    device=self.device, dtype=self.dtype,
                    callback=lambda _: steps.step(total),
                )  # fmt: skip

            with precision_scope(self.device, self.precision):
                channels = pseudo_stereo(windowed, width)
        return Sampled(call, channels, denoiser, sigmas)

    def decode(self, channels: list[Tensor], length: int, seed: int) -> Tensor:
        """Latents per channel -> audio ``[B, C, length]`` (:func:`.decoding.decode_latents`)."""
        return decode_latents(
            self.model.codec, channels, length, seed, device=self.device,
            precision=self.precision, progress=self.progress, report=self.on_progress,
        )  # fmt: skip

    def settings(self, call: Call, mode: str, **facts: Any) -> dict[str, Any]:
        """Everything a sidecar records: the mode, its facts, the options and the model."""
        options = asdict(call.options)
        options["seed"] = call.seed
        options["style_reference"] = describe(call.options.style_reference)
        if self.model.codec.channels != 1:
            options["stereo_width"] = None
        options["use_bridge"] = call.options.use_bridge and self.model.bridge is not None
        options["precision"] = self.precision
        options["compile"] = self.compile
        options["pass_frames"] = call.pass_frames
        return {"mode": mode, **facts, **options, "model": self.model.info.get("packages", {})}

    def output_lufs(self, context: NDArray[np.float32] | ContextFile | None) -> float | None:
        """The loudness (LUFS) a stem should have, or None for a bundle without levels.

        The context's loudness plus the bundle's stem-to-context ratio; without a
        (non-silent) context, the loudness of a stem in training.
        """
        if self.levels is None:
            return None
        if isinstance(context, ContextFile):
            level = context.loudness
        else:
            level = -math.inf if context is None else loudness(context)
        if math.isfinite(level) and level > SILENCE_LUFS:
            return level + self.levels.stem_to_context_db
        return self.levels.stem_lufs

    def level(
        self, audio: NDArray[np.float32], target: float | None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Stems ``[N, C, S]`` set in place to ``target`` LUFS, never clipping (level_stems)."""
        return level_stems(audio, target, in_place=True)

    def result(
        self,
        sampled: Sampled,
        audio: Tensor,
        heard: Tensor | ContextFile | None,
        mode: str,
        *,
        keep_level: bool = False,
        **facts: Any,
    ) -> Generation:
        """The :class:`Generation` of one sampling: audio, settings, latents, context.

        ``heard`` is the context's audio ``[C, S]`` (cropped to the output here), the
        :class:`~openriff.pipeline.streamed.ContextFile` it is read from, or None. The
        stems are set to :meth:`output_lufs` of the context (``keep_level``: left at the
        level of the stem they edit), and never peak above the output ceiling; the
        settings say how (``"level"``).
        """
        source = heard if isinstance(heard, ContextFile) else None
        context = None
        if isinstance(heard, Tensor):
            context = to_numpy(heard[..., : audio.shape[-1]])
        target = None if keep_level else self.output_lufs(source or context)
        stems, level = self.level(to_numpy(audio), target)
        settings = self.settings(sampled.call, mode, **facts, level=level)
        return Generation(stems, SAMPLE_RATE, settings, sampled.stacked(), None, context, source)
