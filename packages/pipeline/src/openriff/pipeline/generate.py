"""Generating an accompaniment stem from a bundle (Diff-A-Riff 4.3.1, DiT follow-up 4.2).

:class:`AccompanimentPipeline` covers the paper's conditioning settings: context + CLAP
embedding of a reference (CLAP_A) or of a prompt (CLAP_T, through the bundle's bridge prior
when it has one), context only, embedding only, and unconditional; multi-condition CFG
(``cfg_context``, ``cfg_clap``, CFG rescale), the four samplers, any context length and
pseudo-stereo. Seeds reproduce exactly.

Long contexts are generated in windows of the training length: each window after the
first is inpainted with the last quarter of the previous one as its known start, so the
windows continue each other instead of being cross-faded. Pseudo-stereo (mono codecs):
the right channel is a variation of the left one with strength ``stereo_width`` (their
trajectories are shared until the last ``stereo_width`` of the steps, as in 4.3.1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.latent_diffusion.conditioning import Conditioning
from openriff.latent_diffusion.controls import inpaint, vary
from openriff.latent_diffusion.guidance import MultiConditionGuidance
from openriff.latent_diffusion.samplers import (
    sample_consistency,
    sample_ddim,
    sample_euler,
    sample_heun,
)
from openriff.latent_diffusion.schedules import karras_sigmas
from openriff.pipeline.bundle import AccompanimentModel

SAMPLERS = {
    "heun": sample_heun,
    "euler": sample_euler,
    "ddim": sample_ddim,
    "consistency": sample_consistency,
}
SAMPLE_RATE = 48_000


@dataclass
class Generation:
    """Generated stems ``[num_candidates, channels, samples]`` and every setting used."""

    audio: NDArray[np.float32]
    sample_rate: int
    settings: dict[str, Any]


class AccompanimentPipeline:
    """Accompaniment generation from an :class:`AccompanimentModel`.

    Args:
        model: a loaded bundle.
        device: where to run.
        dtype: dtype of the denoiser's inputs.
    """

    def __init__(
        self,
        model: AccompanimentModel,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self._clap: Any = None
        pairs = model.info.get("provenance", {}).get("prepare", {}).get("config", {})
        window = int(pairs.get("pairs", {}).get("window", 120 * model.codec.hop_length))
        self.window = max(1, window // model.codec.hop_length)  # latent frames

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> AccompanimentPipeline:
        """Load a bundle folder."""
        return cls(AccompanimentModel.load(directory, device=device), device, dtype)

    # Inputs ------------------------------------------------------------------------------

    def _context(self, context: Any, sample_rate: int) -> Tensor | None:
        """Context audio -> ``[1, C_codec, S]`` at 48 kHz, or None."""
        if context is None:
            return None
        from openriff.cae.audio import load_audio
        from openriff.cae.codec import adapt_channels

        if isinstance(context, (str, os.PathLike)):
            wave = load_audio(Path(context), SAMPLE_RATE)  # (C, S), errors name the file
        else:
            array = np.asarray(context, dtype=np.float32)
            if array.ndim == 1:
                array = array[None]
            if array.ndim != 2 or array.shape[-1] == 0:
                raise ValueError(f"context must be [S] or [C, S] audio, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise ValueError("context audio contains NaN or infinite samples")
            wave = torch.from_numpy(array)
            if sample_rate != SAMPLE_RATE:
                import soxr

                wave = torch.from_numpy(
                    soxr.resample(array.T, sample_rate, SAMPLE_RATE).T.astype(np.float32)
                )
        return adapt_channels(wave[None].float(), self.model.codec.channels).to(self.device)

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

    def _embedding(
        self, prompt: str | None, reference: Any, use_bridge: bool, generator: torch.Generator
    ) -> Tensor | None:
        """The CLAP embedding ``[1, E]`` of a reference or a prompt, or None."""
        if prompt is None and reference is None:
            return None
        if dict(self.model.config.overrides).get("embedding_dim", 1) == 0:
            raise ValueError("this bundle's model was trained without CLAP embeddings")
        clap = self._clap_encoder()
        if reference is not None:
            if isinstance(reference, (str, os.PathLike)):
                return clap.embed_audio([reference]).to(self.device)
            return clap.embed_audio([np.asarray(reference)], sample_rate=SAMPLE_RATE).to(
                self.device
            )
        text = clap.embed_text([prompt])
        if use_bridge and self.model.bridge is not None:
            sample = self.model.bridge.sample(text.to(self.device), 1, generator=generator)
            return sample[:, 0].to(self.device)
        return text.to(self.device)

    # Generation ----------------------------------------------------------------------------

    def generate(
        self,
        context: Any = None,
        prompt: str | None = None,
        reference: Any = None,
        *,
        steps: int = 30,
        sampler: str = "heun",
        cfg_context: float = 1.25,
        cfg_clap: float = 1.25,
        cfg_rescale: float = 0.0,
        stereo_width: float = 0.4,
        duration: float | None = None,
        seed: int | None = None,
        num_candidates: int = 1,
        use_bridge: bool = True,
        sample_rate: int = SAMPLE_RATE,
    ) -> Generation:
        """Generate stems that fit ``context``.

        Args:
            context: a path, an array ``[S]``/``[C, S]`` at ``sample_rate``, or None.
            prompt: text for the CLAP condition (CLAP_T).
            reference: a recording (path or 48 kHz array) for the CLAP condition (CLAP_A);
                takes precedence over ``prompt``.
            steps: sampler steps.
            sampler: ``heun``, ``euler``, ``ddim`` or ``consistency``.
            cfg_context: guidance strength of the context.
            cfg_clap: guidance strength of the CLAP embedding.
            cfg_rescale: CFG rescale in [0, 1].
            stereo_width: pseudo-stereo width in [0, 1] for mono codecs (0: mono).
            duration: seconds to generate when there is no context.
            seed: randomness (None draws one and reports it).
            num_candidates: stems generated at once.
            use_bridge: send prompts through the bundle's bridge prior.
            sample_rate: rate of an array context.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
        for name, value in (("cfg_context", cfg_context), ("cfg_clap", cfg_clap)):
            if not 0.0 <= value <= 20.0:
                raise ValueError(f"{name} must be in [0, 20], got {value}")
        if not 0.0 <= stereo_width <= 1.0:
            raise ValueError(f"stereo_width must be in [0, 1], got {stereo_width}")
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        codec = self.model.codec
        wave = self._context(context, sample_rate)
        if wave is not None:
            length = int(wave.shape[-1])
            if length == 0:
                raise ValueError("the context is empty (0 samples)")
            latents = codec.encode(wave)  # (1, D, T)
        else:
            if duration is None or duration <= 0:
                raise ValueError("without a context, give a duration > 0 in seconds")
            length = round(duration * SAMPLE_RATE)
            frames = -(-length // codec.hop_length)
            latents = torch.zeros(1, codec.latent_dim, frames, device=self.device)
        frames = int(latents.shape[-1])
        embedding = self._embedding(prompt, reference, use_bridge, generator)
        batch = num_candidates
        cond = Conditioning(
            context=latents.expand(batch, -1, -1).to(self.dtype),
            embedding=None if embedding is None else embedding.expand(batch, -1).to(self.dtype),
            keep_context=torch.full((batch,), wave is not None, device=self.device),
        )
        denoiser = MultiConditionGuidance(
            self.model.denoiser, cfg_context, cfg_clap, rescale_phi=cfg_rescale
        )
        sample: Any = SAMPLERS[sampler]
        sigmas = karras_sigmas(
            steps, self.model.denoiser.sigma_min, self.model.denoiser.sigma_max
        ).to(self.device)
        channels = [self._windows(sample, denoiser, sigmas, cond, batch, frames, generator)]
        if codec.channels == 1 and stereo_width > 0:
            channels.append(
                vary(
                    sample,
                    denoiser,
                    channels[0],
                    sigmas,
                    stereo_width,
                    cond=cond,
                    generator=generator,
                )
            )
        audio = [
            codec.decode(z.float(), generator=generator, length=length) for z in channels
        ]  # each (B, C_codec, S)
        stems = torch.cat(audio, dim=1).cpu().numpy().astype(np.float32)
        settings = {
            "prompt": prompt,
            "reference": str(reference) if isinstance(reference, (str, os.PathLike)) else None,
            "context": str(context) if isinstance(context, (str, os.PathLike)) else None,
            "steps": steps,
            "sampler": sampler,
            "cfg_context": cfg_context,
            "cfg_clap": cfg_clap,
            "cfg_rescale": cfg_rescale,
            "stereo_width": stereo_width if codec.channels == 1 else None,
            "duration": length / SAMPLE_RATE,
            "seed": seed,
            "num_candidates": num_candidates,
            "use_bridge": use_bridge and self.model.bridge is not None,
            "conditioning": _setting(wave is not None, embedding is not None, reference, prompt),
            "model": self.model.info.get("packages", {}),
        }
        return Generation(stems, SAMPLE_RATE, settings)

    def _windows(
        self,
        sample: Any,
        denoiser: Any,
        sigmas: Tensor,
        cond: Conditioning,
        batch: int,
        frames: int,
        generator: torch.Generator,
    ) -> Tensor:
        """Target latents ``[B, D, frames]``, in continuing windows when longer than one."""
        dim = self.model.codec.latent_dim
        window = self.window
        if frames <= window:
            noise = torch.randn(batch, dim, frames, generator=generator, device=self.device)
            out: Tensor = sample(
                denoiser, noise.to(self.dtype), sigmas, cond=cond, generator=generator
            )
            return out
        hop = window - max(1, window // 4)
        starts = [*list(range(0, frames - window, hop)), frames - window]
        result = torch.zeros(batch, dim, frames, device=self.device, dtype=self.dtype)
        done = 0  # frames [0, done) are generated
        for lo in starts:
            hi = lo + window
            part = _slice(cond, lo, hi)
            noise = torch.randn(batch, dim, window, generator=generator, device=self.device)
            noise = noise.to(self.dtype)
            if done == 0:
                piece = sample(denoiser, noise, sigmas, cond=part, generator=generator)
            else:
                mask = torch.zeros(1, 1, window, dtype=torch.bool, device=self.device)
                mask[..., : done - lo] = True  # what is generated already stays
                piece = inpaint(
                    sample, denoiser, noise, sigmas, result[..., lo:hi], mask,
                    cond=part, generator=generator,
                )  # fmt: skip
            result[..., lo:hi] = piece
            done = hi
        return result


def _slice(cond: Conditioning, lo: int, hi: int) -> Conditioning:
    context = None if cond.context is None else cond.context[..., lo:hi]
    return Conditioning(context, cond.embedding, cond.keep_context, cond.keep_embedding)


def _setting(has_context: bool, has_embedding: bool, reference: Any, prompt: Any) -> str:
    clap = "CLAP_A" if reference is not None else "CLAP_T" if prompt is not None else None
    if has_context and has_embedding:
        return f"{clap} + context"
    if has_context:
        return "context only"
    if has_embedding:
        return f"{clap} only"
    return "unconditional"
