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

How the pieces fit:

* Long sequences are sampled in windows of the training length. Each window after the
  first is inpainted with the last quarter of the previous one as its known start, so the
  windows continue each other instead of being cross-faded. Inpainting and variations use
  the same windows, with their own known frames added to each window's mask.
* Pseudo-stereo (mono codecs): the right channel is a variation of the left with strength
  ``stereo_width``, so both share their trajectory until the last ``stereo_width`` of the
  steps (4.3.1); known frames (inpainting) stay identical in both channels.
* Loops: the denoiser sees the sequence circularly padded (:class:`LoopDenoiser`); the
  latents are decoded three times over and the middle copy kept, its last latent frame
  cross-faded into the audio that precedes its start, and the result resampled to exactly
  the loop's length in samples (the latent grid rarely divides a bar; the pitch moves by at
  most half a frame over the loop's length: up to 37 cents for 1 bar at 120 bpm, less for
  longer loops; ``exact_tempo=False`` keeps the pitch instead).
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.controls import (
    LoopDenoiser,
    StyleGrounding,
    plan_windows,
    pseudo_stereo,
    sample_windowed,
    vary_schedule,
)
from openriff.latent_diffusion.guidance import MultiConditionGuidance
from openriff.latent_diffusion.objectives import OBJECTIVES
from openriff.latent_diffusion.samplers import SAMPLERS
from openriff.pipeline.audio_io import SAMPLE_RATE, load_input, match_channels, mix
from openriff.pipeline.bundle import RECOMMENDABLE, AccompanimentModel
from openriff.pipeline.chroma import CHROMA_BINS, append_context_chroma
from openriff.pipeline.limits import check_request, seconds_to_samples


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (``"bridge"``, ...), drawn from ``seed``.

    numpy's ``SeedSequence`` mixes the two, so each purpose gets an independent stream and
    the same ``seed`` always gives the same one.
    """
    state = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]).generate_state(1)
    return int(state[0])


MAX_CFG = 20.0
MAX_STEPS = 1000


@dataclass(frozen=True)
class Sampling:
    """Sampling options shared by every generation method (checked on creation).

    Attributes:
        steps: sampler steps, 1 to 1000.
        sampler: ``heun``, ``euler``, ``ddim`` or ``consistency``.
        cfg_context: guidance strength of the context, in [0, 20].
        cfg_clap: guidance strength of the CLAP embedding, in [0, 20].
        cfg_rescale: CFG rescale in [0, 1].
        stereo_width: pseudo-stereo width in [0, 1] for mono codecs (0: mono).
        seed: randomness (None draws one; the settings report it).
        num_candidates: stems generated at once.
        use_bridge: send prompts through the bundle's bridge prior.
        style_reference: a recording (path or array) to ground the style to, or None.
        style_strength: strength of the style grounding (1: as in the bass paper).
    """

    steps: int = 30
    sampler: str = "heun"
    cfg_context: float = 1.25
    cfg_clap: float = 1.25
    cfg_rescale: float = 0.0
    stereo_width: float = 0.4
    seed: int | None = None
    num_candidates: int = 1
    use_bridge: bool = True
    style_reference: Any = None
    style_strength: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {self.steps}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}")
        for name in ("cfg_context", "cfg_clap"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_CFG:
                raise ValueError(f"{name} must be in [0, {MAX_CFG:g}], got {value}")
        for name in ("cfg_rescale", "stereo_width", "style_strength"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")


@dataclass
class Generation:
    """Generated audio and every setting used.

    Attributes:
        audio: ``[N, channels, samples]`` stems (candidates, interpolation points, or the
            stems of a song in order).
        sample_rate: 48000.
        settings: everything needed to reproduce the result (seed included).
        latents: ``[N, channels, D, frames]`` the generated latents (for a mono codec,
            one latent sequence per output channel), before decoding.
        mix: ``[channels, samples]`` mix of a song's stems (and context), else None.
    """

    audio: NDArray[np.float32]
    sample_rate: int
    settings: dict[str, Any]
    latents: NDArray[np.float32] | None = None
    mix: NDArray[np.float32] | None = None


@dataclass
class _Job:
    """One sampling job: the guided denoiser, schedule, conditions and randomness."""

    options: Sampling
    seed: int
    generator: torch.Generator
    denoiser: Any
    sigmas: Tensor
    cond: Conditioning


class AccompanimentPipeline:
    """Accompaniment generation from an :class:`AccompanimentModel`.

    Args:
        model: a loaded bundle.
        device: where to run.
        dtype: dtype of the denoiser's inputs.
        progress: show a progress bar (tqdm, on stderr) while sampling.
        root: the bundle's folder, if it came from one (for :meth:`fingerprint`).
    """

    def __init__(
        self,
        model: AccompanimentModel,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        *,
        progress: bool = False,
        root: Path | None = None,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.progress = progress
        self.root = root
        self._clap: Any = None
        prepared = model.info.get("provenance", {}).get("prepare", {}).get("config", {})
        window = float(prepared.get("pairs", {}).get("window", 120 * model.codec.hop_length))
        self.window = max(1, round(window / model.codec.hop_length))  # latent frames
        # Trained on contexts with their chromagram appended: append it here too.
        self.context_chroma = bool(prepared.get("context_chroma", False))
        try:  # the bundle's recommendations are checked now, not at the first generation
            Sampling(**model.sampling)
        except ValueError as error:
            raise ValueError(f"the bundle's recommended sampling is invalid: {error}") from error

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        clap_checkpoint: str | os.PathLike[str] | None = None,
        codec_checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> AccompanimentPipeline:
        """Load a bundle folder.

        Args:
            directory: the bundle.
            device: where to run.
            dtype: dtype of the denoiser's inputs.
            clap_checkpoint: the LAION-CLAP ``.pt`` to use instead of the one the bundle
                names (e.g. the same file at another place on this machine).
            codec_checkpoint: where the official ``music2latent.pt`` is on this machine,
                for a bundle built on it (bundles reference it by path, never copy it).
            progress: show a progress bar while sampling.
        """
        model = AccompanimentModel.load(directory, device=device, codec_override=codec_checkpoint)
        if clap_checkpoint is not None:
            model.clap_checkpoint = str(clap_checkpoint)
        return cls(model, device, dtype, progress=progress, root=Path(directory))

    @property
    def hop(self) -> float:
        """48 kHz samples per latent frame (not a whole number for music2latent)."""
        return float(self.model.codec.hop_length)

    def samples(self, frames: int) -> int:
        """Samples covered by ``frames`` latent frames (whole samples)."""
        return round(frames * self.hop)

    def frames(self, samples: int) -> int:
        """Latent frames that cover ``samples`` samples."""
        return max(1, math.ceil(samples / self.hop - 1e-9))

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the model: bundle folder, versions, and a hash of its files."""
        info = {
            "bundle": None if self.root is None else str(self.root.resolve()),
            "bundle_version": self.model.info.get("version"),
            "packages": self.model.info.get("packages", {}),
            "codec": self.model.info.get("codec"),
            "clap_checkpoint": self.model.clap_checkpoint,
        }
        if self.root is not None:
            digest = hashlib.sha256()
            for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(self.root)).encode())
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            info["sha256"] = digest.hexdigest()
        return info

    def round_trip(self, audio: Any, *, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> Any:
        """``audio`` through the bundle's codec, as ``[C_codec, S]`` at 48 kHz.

        Decoded with the noise a generation with ``seed`` uses, so it is what a denoiser
        that found the audio's own latents would give.
        """
        wave = load_input(audio, "audio", sample_rate)
        latents = self._encode(wave)
        return _numpy(self._decode([latents], int(wave.shape[-1]), seed))[0]

    # Inputs ------------------------------------------------------------------------------

    def _encode(self, wave: Tensor) -> Tensor:
        """``[C, S]`` 48 kHz audio -> latents ``[1, D, ceil(S / hop)]``."""
        from openriff.cae.codec import adapt_channels

        wave = adapt_channels(wave[None].float(), self.model.codec.channels)
        latents: Tensor = self.model.codec.encode(wave.to(self.device))
        return latents

    def _encode_context(self, wave: Tensor) -> Tensor:
        """``[C, S]`` context -> the denoiser's context ``[1, Dc, T]``.

        Its latents, then, for a bundle prepared with ``context_chroma``, its chromagram
        (:func:`openriff.pipeline.chroma.context_chroma`): ``Dc = D + 12``.
        """
        latents = self._encode(wave)
        if not self.context_chroma:
            return latents
        mono = wave.float().mean(0, keepdim=True).to(latents.device)  # (1, S)
        return append_context_chroma(latents, mono, self.hop)  # (1, D + 12, T)

    def _clap_encoder(self) -> Any:
        if self._clap is None:
            checkpoint = self.model.clap_checkpoint
            if checkpoint is None:
                raise ValueError(
                    "prompts and references need a CLAP checkpoint, and this bundle names "
                    "none (it was prepared CLAP-free)"
                )
            from openriff.clap_bridge.encoder import ClapEncoder

            recorded = self.model.info.get("clap", {})
            self._clap = ClapEncoder(
                checkpoint,
                amodel=recorded.get("amodel"),
                fusion=recorded.get("fusion"),
                device=self.device,
            )
        return self._clap

    def _check_embeddings(self) -> None:
        if dict(self.model.config.overrides).get("embedding_dim", 1) == 0:
            raise ValueError("this bundle's model was trained without CLAP embeddings")

    def embed_reference(self, reference: Any, sample_rate: int = SAMPLE_RATE) -> Tensor:
        """CLAP_A: the unit-norm CLAP embedding ``[1, E]`` of a recording (path or array)."""
        self._check_embeddings()
        wave = load_input(reference, "reference", sample_rate).mean(0)  # (S,) mono
        clap = self._clap_encoder()
        out: Tensor = clap.embed_audio([wave.numpy()], sample_rate=SAMPLE_RATE)
        return out.to(self.device)

    def embed_prompt(
        self, prompt: str, *, use_bridge: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """CLAP_T: ``[1, E]``, through the bridge prior when the bundle has one."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"a prompt must be non-empty text, got {prompt!r}")
        self._check_embeddings()
        text: Tensor = self._clap_encoder().embed_text([prompt]).to(self.device)
        if use_bridge and self.model.bridge is not None:
            sample: Tensor = self.model.bridge.sample(text, 1, generator=generator)
            return sample[:, 0].to(self.device)
        return text

    def _embedding(
        self,
        prompt: str | None,
        reference: Any,
        options: Sampling,
        generator: torch.Generator,
        sample_rate: int,
    ) -> Tensor | None:
        """The CLAP embedding ``[1, E]`` of a reference (preferred) or a prompt, or None."""
        if reference is not None:
            return self.embed_reference(reference, sample_rate)
        if prompt is not None:
            return self.embed_prompt(prompt, use_bridge=options.use_bridge, generator=generator)
        return None

    def _source_embedding(
        self, source: Any, options: Sampling, generator: torch.Generator, sample_rate: int
    ) -> Tensor:
        """A ``str`` is a prompt; a path or an array is a reference recording."""
        if isinstance(source, str):
            return self.embed_prompt(source, use_bridge=options.use_bridge, generator=generator)
        return self.embed_reference(source, sample_rate)

    def _context_latents(
        self, context: Any, sample_rate: int, length: int | None, what: str = "output"
    ) -> tuple[Tensor | None, int | None]:
        """Context latents ``[1, D, T]`` (cropped to ``length`` samples when given)."""
        if context is None:
            return None, None
        wave = load_input(context, "context", sample_rate)
        if length is not None:
            if wave.shape[-1] < length - self.hop:
                raise ValueError(
                    f"the context is {wave.shape[-1] / SAMPLE_RATE:.2f} s, shorter than the "
                    f"{what} ({length / SAMPLE_RATE:.2f} s)"
                )
            wave = torch.nn.functional.pad(wave, (0, max(0, length - wave.shape[-1])))
            wave = wave[..., :length]
        return self._encode_context(wave), int(wave.shape[-1])

    # Jobs ----------------------------------------------------------------------------------

    def _job(
        self,
        options: Sampling,
        context: Tensor | None,
        embedding: Tensor | None,
        frames: int,
        *,
        seed: int,
        generator: torch.Generator,
        style: Tensor | None = None,
        loop_margin: int = 0,
    ) -> _Job:
        """Guided (optionally style-grounded, circular) denoiser and conditions.

        ``style`` is the latents of the style reference (:meth:`_style`), or None.
        """
        batch = options.num_candidates
        has_context = context is not None
        if context is None:
            channels = self.model.codec.latent_dim + (CHROMA_BINS if self.context_chroma else 0)
            context = torch.zeros(1, channels, frames, device=self.device)
        cond = Conditioning(
            context=context.expand(batch, -1, -1).to(self.dtype),
            embedding=None if embedding is None else embedding.expand(batch, -1).to(self.dtype),
            keep_context=torch.full((batch,), has_context, device=self.device),
        )
        denoiser: Any = MultiConditionGuidance(
            self.model.denoiser, options.cfg_context, options.cfg_clap,
            rescale_phi=options.cfg_rescale,
        )  # fmt: skip
        if style is not None:
            denoiser = StyleGrounding(denoiser, style, options.style_strength)
        if loop_margin:
            denoiser = LoopDenoiser(denoiser, loop_margin)
        # The objective's own schedule: Karras for EDM and consistency, cosine for v.
        schedule = OBJECTIVES[self.model.config.objective].schedule
        denoiser_range = self.model.denoiser
        sigmas = schedule(options.steps, denoiser_range.sigma_min, denoiser_range.sigma_max)
        sigmas = sigmas.to(self.device)
        return _Job(options, seed, generator, denoiser, sigmas, cond)

    def _style(self, options: Sampling, sample_rate: int) -> Tensor | None:
        """Latents ``[1, D, T]`` of the style reference, read and encoded once per call."""
        if options.style_reference is None or options.style_strength == 0:
            return None
        return self._encode(load_input(options.style_reference, "style reference", sample_rate))

    def _start(self, options: Sampling) -> tuple[int, torch.Generator, torch.Generator]:
        """The seed and its generators: sampling noise, and the bridge prior's draws.

        Each purpose has its own generator, so a seed gives the same sampling noise in
        every mode, with or without a bridge draw before it (decoding has its own too).
        """
        seed = options.seed
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        noise = torch.Generator(device=self.device).manual_seed(seed)
        bridge = torch.Generator(device=self.device).manual_seed(derived_seed(seed, "bridge"))
        return seed, noise, bridge

    def _channels(
        self,
        job: _Job,
        frames: int,
        *,
        known: Tensor | None = None,
        mask: Tensor | None = None,
        init: Tensor | None = None,
        strength: float = 1.0,
        loop: bool = False,
    ) -> list[Tensor]:
        """Latents ``[B, D, frames]`` of every output channel (see :func:`sample_windowed`).

        A mono codec gets a pseudo-stereo right channel (:func:`pseudo_stereo`).
        """
        width = job.options.stereo_width if self.model.codec.channels == 1 else 0.0
        shape = (job.options.num_candidates, self.model.codec.latent_dim, frames)
        windows = len(plan_windows(frames, self.window, mask, loop=loop))
        first = len(job.sigmas) - 1 if init is None else len(vary_schedule(job.sigmas, strength)) - 1
        second = len(vary_schedule(job.sigmas, width)) - 1 if width > 0 else 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=windows * (first + second), unit="step", leave=False)

        def sample(start: Tensor | None, share: float) -> Tensor:
            return sample_windowed(
                SAMPLERS[job.options.sampler], job.denoiser, shape, job.sigmas,
                window=self.window, cond=job.cond, generator=job.generator, known=known,
                mask=mask, init=init if start is None else start,
                strength=strength if start is None else share, loop=loop,
                device=self.device, dtype=self.dtype,
                callback=None if bar is None else lambda _: bar.update(1),
            )  # fmt: skip

        try:
            return pseudo_stereo(sample, width)
        finally:
            if bar is not None:
                bar.close()

    def _decode(self, channels: list[Tensor], length: int, seed: int) -> Tensor:
        """Latents per channel -> audio ``[B, C, length]``.

        The decoding noise comes from its own generator seeded with ``seed``, so it does
        not depend on how the latents were sampled: equal latents decode to equal audio
        (an inpainted stem outside its region matches the stem's codec round trip decoded
        with the same seed).
        """
        codec = self.model.codec
        generator = torch.Generator(device=self.device).manual_seed(seed)
        audio = [codec.decode(z.float(), generator=generator, length=length) for z in channels]
        return torch.cat(audio, dim=1)

    def _settings(self, job: _Job, mode: str, **facts: Any) -> dict[str, Any]:
        options = asdict(job.options)
        options["seed"] = job.seed
        options["style_reference"] = _describe(job.options.style_reference)
        if self.model.codec.channels != 1:
            options["stereo_width"] = None
        options["use_bridge"] = job.options.use_bridge and self.model.bridge is not None
        return {"mode": mode, **facts, **options, "model": self.model.info.get("packages", {})}

    def _options(self, options: dict[str, Any]) -> Sampling:
        """``options`` over the bundle's recommendations over ``Sampling``'s defaults.

        A recommendable setting given as None takes the bundle's value (else the default).
        """
        given = {k: v for k, v in options.items() if not (k in RECOMMENDABLE and v is None)}
        try:
            return Sampling(**{**self.model.sampling, **given})
        except TypeError as error:
            raise ValueError(f"unknown sampling option: {error}") from error

    # Generation ----------------------------------------------------------------------------

    def generate(
        self,
        context: Any = None,
        prompt: str | None = None,
        reference: Any = None,
        *,
        steps: int | None = None,
        sampler: str | None = None,
        cfg_context: float | None = None,
        cfg_clap: float | None = None,
        cfg_rescale: float | None = None,
        stereo_width: float | None = None,
        duration: float | None = None,
        seed: int | None = None,
        num_candidates: int = 1,
        use_bridge: bool = True,
        style_reference: Any = None,
        style_strength: float = 1.0,
        sample_rate: int = SAMPLE_RATE,
    ) -> Generation:
        """Generate stems that fit ``context`` (as long as it).

        Args:
            context: a path, an array ``[S]``/``[C, S]`` at ``sample_rate``, or None.
            prompt: text for the CLAP condition (CLAP_T).
            reference: a recording (path or array) for the CLAP condition (CLAP_A);
                takes precedence over ``prompt``.
            steps: sampler steps.
            sampler: ``heun``, ``euler``, ``ddim`` or ``consistency``.
            cfg_context: guidance strength of the context.
            cfg_clap: guidance strength of the CLAP embedding.
            cfg_rescale: CFG rescale in [0, 1].
            stereo_width: pseudo-stereo width in [0, 1] for mono codecs (0: mono).
                For these six, None takes the bundle's recommendation
                (:attr:`AccompanimentModel.sampling`), else :class:`Sampling`'s default.
            duration: seconds to generate when there is no context.
            seed: randomness (None draws one and reports it).
            num_candidates: stems generated at once.
            use_bridge: send prompts through the bundle's bridge prior.
            style_reference: a recording whose latent statistics the stem is grounded to.
            style_strength: strength of the style grounding in [0, 1].
            sample_rate: rate of array inputs.

        Returns:
            stems ``[num_candidates, channels, samples]`` and the settings.
        """
        options = self._options({
            "steps": steps, "sampler": sampler, "cfg_context": cfg_context,
            "cfg_clap": cfg_clap, "cfg_rescale": cfg_rescale, "stereo_width": stereo_width,
            "seed": seed, "num_candidates": num_candidates, "use_bridge": use_bridge,
            "style_reference": style_reference, "style_strength": style_strength,
        })  # fmt: skip
        if context is not None and duration is not None:
            raise ValueError("give a context or a duration, not both (the stem is as long as "
                             "the context)")  # fmt: skip
        latents, length = self._context_latents(context, sample_rate, None)
        if length is None:
            if duration is None:
                raise ValueError("without a context, give a duration > 0 in seconds")
            length = seconds_to_samples(duration, "duration")
        check_request(length, options.num_candidates, "generate")
        frames = self.frames(length)
        used_seed, generator, bridge = self._start(options)
        embedding = self._embedding(prompt, reference, options, bridge, sample_rate)
        job = self._job(options, latents, embedding, frames, seed=used_seed,
                        generator=generator, style=self._style(options, sample_rate))  # fmt: skip
        channels = self._channels(job, frames)
        audio = self._decode(channels, length, used_seed)
        settings = self._settings(
            job, "generate", prompt=prompt, reference=_describe(reference),
            context=_describe(context), duration=length / SAMPLE_RATE,
            conditioning=_setting(latents is not None, embedding is not None, reference, prompt),
        )  # fmt: skip
        return Generation(_numpy(audio), SAMPLE_RATE, settings, _stack(channels))

    def inpaint(
        self,
        stem: Any,
        start: float,
        end: float,
        context: Any = None,
        prompt: str | None = None,
        reference: Any = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """Regenerate ``[start, end)`` seconds of ``stem``, keeping the rest (in/outpainting).

        A region reaching past the stem's end extends it (outpainting), one starting before
        0 s prepends to it; the output spans ``[min(0, start), max(duration, end))`` (a gap
        between the stem's end and a later ``start`` is kept as silence). The
        latent frames outside the region are kept exactly, so outside the region the output
        is the stem's codec round trip. A context, aligned with the output's start, must
        cover the output (longer ones are cropped).

        Args:
            stem: the stem to edit (path or array).
            start: region start in seconds (negative: prepend).
            end: region end in seconds (past the stem's end: extend).
            context: the music the stem belongs to, or None.
            prompt: text for the CLAP condition.
            reference: a recording for the CLAP condition.
            sample_rate: rate of array inputs.
            **options: any :class:`Sampling` option (one left out takes the bundle's
                recommendation, else the default).
        """
        opts = self._options(options)
        if not (math.isfinite(start) and math.isfinite(end) and start < end):
            raise ValueError(f"the region must have start < end, got [{start}, {end})")
        wave = load_input(stem, "stem", sample_rate)  # (C, S)
        stem_length = int(wave.shape[-1])
        before = max(0, round(-start * SAMPLE_RATE))  # output samples before the stem
        pad = self.samples(self.frames(before)) if before else 0  # ...to whole frames
        length = before + max(stem_length, round(end * SAMPLE_RATE))
        check_request(pad - before + length, opts.num_candidates, "inpaint")
        frames = self.frames(pad - before + length)
        total = self.samples(frames)
        padded = torch.zeros(wave.shape[0], total)
        padded[:, pad : pad + stem_length] = wave
        known = self._encode(padded)[..., :frames]  # (1, D, frames)
        lo = pad + round(start * SAMPLE_RATE)  # region in padded samples
        hi = pad + round(end * SAMPLE_RATE)
        index = torch.arange(frames, dtype=torch.float64)
        inside = (index * self.hop < hi) & ((index + 1) * self.hop > lo)
        if bool(inside.all()):
            raise ValueError("the region covers the whole stem: use generate() instead")
        context_latents = None
        if context is not None:
            ctx = load_input(context, "context", sample_rate)
            if ctx.shape[-1] < length - self.hop:
                raise ValueError(
                    f"the context is {ctx.shape[-1] / SAMPLE_RATE:.2f} s, shorter than the "
                    f"output ({length / SAMPLE_RATE:.2f} s)"
                )
            aligned = torch.zeros(ctx.shape[0], total)
            take = min(ctx.shape[-1], total - (pad - before))
            aligned[:, pad - before : pad - before + take] = ctx[:, :take]
            context_latents = self._encode_context(aligned)[..., :frames]
        seed, generator, bridge = self._start(opts)
        embedding = self._embedding(prompt, reference, opts, bridge, sample_rate)
        job = self._job(opts, context_latents, embedding, frames, seed=seed,
                        generator=generator, style=self._style(opts, sample_rate))  # fmt: skip
        channels = self._channels(job, frames, known=known, mask=~inside)
        audio = self._decode(channels, total, seed)
        audio = audio[..., pad - before : pad - before + length]
        settings = self._settings(
            job, "inpaint", stem=_describe(stem), start=start, end=end, prompt=prompt,
            reference=_describe(reference), context=_describe(context),
            duration=length / SAMPLE_RATE,
            regenerated_frames=int(inside.sum()), frames=frames,
        )  # fmt: skip
        return Generation(_numpy(audio), SAMPLE_RATE, settings, _stack(channels))

    def vary(
        self,
        stem: Any,
        strength: float = 0.5,
        context: Any = None,
        prompt: str | None = None,
        reference: Any = None,
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
            **options: any :class:`Sampling` option (one left out takes the bundle's
                recommendation, else the default).
        """
        opts = self._options(options)
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        wave = load_input(stem, "stem", sample_rate)
        length = int(wave.shape[-1])
        check_request(length, opts.num_candidates, "vary")
        init = self._encode(wave)
        frames = int(init.shape[-1])
        latents, _ = self._context_latents(context, sample_rate, length, "stem")
        seed, generator, bridge = self._start(opts)
        embedding = self._embedding(prompt, reference, opts, bridge, sample_rate)
        job = self._job(opts, latents, embedding, frames, seed=seed, generator=generator,
                        style=self._style(opts, sample_rate))  # fmt: skip
        channels = self._channels(job, frames, init=init, strength=strength)
        audio = self._decode(channels, length, seed)
        settings = self._settings(
            job, "vary", stem=_describe(stem), strength=strength, prompt=prompt,
            reference=_describe(reference), context=_describe(context),
            duration=length / SAMPLE_RATE,
        )  # fmt: skip
        return Generation(_numpy(audio), SAMPLE_RATE, settings, _stack(channels))

    def loop(
        self,
        bars: int = 4,
        bpm: float = 120.0,
        context: Any = None,
        prompt: str | None = None,
        reference: Any = None,
        *,
        beats_per_bar: int = 4,
        exact_tempo: bool = True,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """A seamless loop of ``bars`` bars at ``bpm``: played repeatedly, it has no seam.

        The loop is made on the latent grid (a whole number of frames) and then resampled
        to the bars' exact length, which shifts the pitch by at most half a frame over the
        loop's length (``settings["pitch_shift_cents"]``). With ``exact_tempo=False`` it is
        not resampled: the pitch is untouched and the tempo is ``settings["loop_bpm"]``.

        Args:
            bars: loop length in bars.
            bpm: tempo in beats per minute.
            context: a loop of the other instruments (its first ``bars`` bars are used), or
                None.
            prompt: text for the CLAP condition.
            reference: a recording for the CLAP condition.
            beats_per_bar: beats in a bar.
            exact_tempo: resample to the exact length of the bars (else keep the pitch).
            sample_rate: rate of array inputs.
            **options: any :class:`Sampling` option (one left out takes the bundle's
                recommendation, else the default).

        Returns:
            stems of exactly ``round(bars * beats_per_bar * 60 / bpm * 48000)`` samples
            (``exact_tempo``), else of a whole number of latent frames.
        """
        opts = self._options(options)
        if bars < 1 or beats_per_bar < 1:
            raise ValueError(f"bars and beats_per_bar must be >= 1, got {bars}, {beats_per_bar}")
        if not 20.0 <= bpm <= 400.0:
            raise ValueError(f"bpm must be in [20, 400], got {bpm}")
        length = round(bars * beats_per_bar * 60.0 / bpm * SAMPLE_RATE)
        check_request(length, opts.num_candidates, f"loop of {bars} bars")
        frames = max(2, round(length / self.hop))
        # The loop on the latent grid, resampled to `length` at the end.
        period = self.samples(frames)
        context_latents = None
        if context is not None:
            ctx = load_input(context, "context", sample_rate)
            if ctx.shape[-1] < length:
                raise ValueError(
                    f"the context is {ctx.shape[-1] / SAMPLE_RATE:.2f} s, shorter than the "
                    f"loop ({length / SAMPLE_RATE:.2f} s)"
                )
            cycle = _resample_periodic(ctx[:, :length].numpy(), length, period)
            tiled = torch.from_numpy(np.tile(cycle, (1, 3)))
            context_latents = self._encode_context(tiled)[..., frames : 2 * frames]
        seed, generator, bridge = self._start(opts)
        embedding = self._embedding(prompt, reference, opts, bridge, sample_rate)
        margin = min(frames, max(2, self.window // 4))
        job = self._job(
            opts, context_latents, embedding, frames, seed=seed, generator=generator,
            style=self._style(opts, sample_rate), loop_margin=margin,
        )  # fmt: skip
        channels = self._channels(job, frames, loop=True)
        tiled_audio = self._decode([z.repeat(1, 1, 3) for z in channels], 3 * period, seed)
        y = tiled_audio.cpu().numpy()  # (B, C, 3P): copies 0, 1, 2
        cycle = y[..., period : 2 * period].copy()
        fade = min(round(self.hop), period // 4)
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        # The middle copy's end continues into copy 2; fade it into copy 0's end, which is
        # what precedes the middle copy's start, so the wrap-around is continuous.
        cycle[..., period - fade :] = (1 - ramp) * cycle[..., period - fade :] + ramp * y[
            ..., period - fade : period
        ]
        target = length if exact_tempo else period
        audio = np.stack([_resample_periodic(c, period, target) for c in cycle])
        settings = self._settings(
            job, "loop", bars=bars, bpm=bpm, beats_per_bar=beats_per_bar, prompt=prompt,
            reference=_describe(reference), context=_describe(context),
            duration=target / SAMPLE_RATE, latent_frames=frames, exact_tempo=exact_tempo,
            pitch_shift_cents=1200 * math.log2(period / target),
            loop_bpm=bpm * length / target,
        )  # fmt: skip
        return Generation(audio.astype(np.float32), SAMPLE_RATE, settings, _stack(channels))

    def interpolate(
        self,
        start: Any,
        end: Any,
        context: Any = None,
        *,
        points: int = 5,
        duration: float | None = None,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """Stems along the spherical interpolation between two CLAP conditions.

        Every point uses the same seed, so only the embedding changes along the way.

        Args:
            start: a prompt (``str``) or a reference recording (path or array).
            end: the same kinds as ``start``.
            context: the music to fit, or None (then ``duration`` is needed).
            points: stems from ``start`` (t = 0) to ``end`` (t = 1), >= 2.
            duration: seconds to generate when there is no context.
            sample_rate: rate of array inputs.
            **options: any :class:`Sampling` option (``num_candidates`` must be 1; one
                left out takes the bundle's recommendation, else the default).

        Returns:
            stems ``[points, channels, samples]``; the settings list the ``t`` values.
        """
        from openriff.clap_bridge.bridge import slerp

        opts = self._options(options)
        if points < 2:
            raise ValueError(f"points must be >= 2, got {points}")
        if opts.num_candidates != 1:
            raise ValueError("interpolate makes one stem per point: num_candidates must be 1")
        if context is not None and duration is not None:
            raise ValueError("give a context or a duration, not both")
        latents, length = self._context_latents(context, sample_rate, None)
        if length is None:
            if duration is None:
                raise ValueError("without a context, give a duration > 0 in seconds")
            length = seconds_to_samples(duration, "duration")
        check_request(length, points, f"interpolate over {points} points")
        frames = self.frames(length)
        seed, _, bridge = self._start(opts)
        a = self._source_embedding(start, opts, bridge, sample_rate)
        b = self._source_embedding(end, opts, bridge, sample_rate)
        weights = np.linspace(0.0, 1.0, points).tolist()
        style = self._style(opts, sample_rate)
        stems, codes = [], []
        for t in weights:
            generator = torch.Generator(device=self.device).manual_seed(seed)  # same noise
            embedding = slerp(a, b, t).to(self.device)
            job = self._job(opts, latents, embedding, frames, seed=seed, generator=generator,
                            style=style)  # fmt: skip
            channels = self._channels(job, frames)
            codes.append(_stack(channels))
            stems.append(self._decode(channels, length, seed))
        settings = self._settings(
            job, "interpolate", start=_describe(start), end=_describe(end), t=weights,
            context=_describe(context), duration=length / SAMPLE_RATE,
        )  # fmt: skip
        return Generation(_numpy(torch.cat(stems)), SAMPLE_RATE, settings, np.concatenate(codes))

    def song(
        self,
        parts: list[Any],
        context: Any = None,
        *,
        duration: float | None = None,
        sample_rate: int = SAMPLE_RATE,
        **options: Any,
    ) -> Generation:
        """Whole-song mode (Diff-A-Riff 4.3.3): one stem per part, each fitting the previous.

        The first stem is generated from its CLAP condition alone (or fitting ``context``,
        if given); every next one is conditioned on the sum of the context and all stems
        so far.

        Args:
            parts: prompts (``str``) or reference recordings (path or array), in order.
            context: music to start from, or None (then ``duration`` is needed).
            duration: seconds when there is no context.
            sample_rate: rate of array inputs.
            **options: any :class:`Sampling` option (``num_candidates`` must be 1; one
                left out takes the bundle's recommendation, else the default).

        Returns:
            the stems ``[len(parts), channels, samples]`` in order and their mix (with the
            context, if any) in ``mix``.
        """
        opts = self._options(options)
        if not parts:
            raise ValueError("song needs at least one prompt or reference")
        if opts.num_candidates != 1:
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
        frames = self.frames(length)
        seed, generator, bridge = self._start(opts)
        style = self._style(opts, sample_rate)
        stems, codes = [], []
        for part in parts:
            latents = None if running is None else self._encode_context(torch.from_numpy(running))
            embedding = self._source_embedding(part, opts, bridge, sample_rate)
            job = self._job(opts, latents, embedding, frames, seed=seed, generator=generator,
                            style=style)  # fmt: skip
            channels = self._channels(job, frames)
            codes.append(_stack(channels))
            stem = _numpy(self._decode(channels, length, seed))[0]
            stems.append(stem)
            running = stem if running is None else _sum(running, stem)
        song_mix, gain = mix([*first, *stems])
        settings = self._settings(
            job, "song", parts=[_describe(p) for p in parts], context=_describe(context),
            duration=length / SAMPLE_RATE, mix_gain=gain,
        )  # fmt: skip
        width = max(s.shape[0] for s in stems)
        audio = np.stack([match_channels(s, width) for s in stems])
        return Generation(audio, SAMPLE_RATE, settings, np.concatenate(codes), song_mix)


def _sum(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    channels = max(a.shape[0], b.shape[0])
    return match_channels(a, channels) + match_channels(b, channels)


def _resample_periodic(wave: NDArray[np.float32], period: int, length: int) -> NDArray[np.float32]:
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


def _stack(channels: list[Tensor]) -> NDArray[np.float32]:
    """Latents per channel ``[B, D, T]`` -> ``[B, channels, D, T]``."""
    return _numpy(torch.stack(channels, dim=1).float())


def _numpy(audio: Tensor) -> NDArray[np.float32]:
    out: NDArray[np.float32] = audio.cpu().numpy().astype(np.float32)
    return out


def _slice(cond: Conditioning, lo: int, hi: int) -> Conditioning:
    context = None if cond.context is None else cond.context[..., lo:hi]
    return Conditioning(context, cond.embedding, cond.keep_context, cond.keep_embedding)


def _describe(value: Any) -> Any:
    """A JSON-able record of an input: its path, or the shape of an array."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    return f"array{list(np.shape(value))}"


def _setting(has_context: bool, has_embedding: bool, reference: Any, prompt: Any) -> str:
    clap = "CLAP_A" if reference is not None else "CLAP_T" if prompt is not None else None
    if has_context and has_embedding:
        return f"{clap} + context"
    if has_context:
        return "context only"
    if has_embedding:
        return f"{clap} only"
    return "unconditional"
