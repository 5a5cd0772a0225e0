"""What generation is conditioned on: context latents, CLAP embeddings, style latents.

:class:`Conditioner` turns a bundle's inputs into the denoiser's conditions (Diff-A-Riff
4.3.1): a context recording into context latents (with its chromagram appended for
bundles prepared with ``context_chroma``), a reference recording into CLAP_A, a prompt
into CLAP_T (through the bundle's bridge prior when it has one), a given embedding
(``.npy`` or array) into a unit-norm CLAP embedding, the bridge's unconditional draw into
CLAP_A* (DiT follow-up 5), and a style reference into the latents whose time-mean style
grounding pulls towards (bass paper 3.3).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.cae.contract import ReaderEncoder
from openriff.latent_diffusion.controls import plan_windows
from openriff.latent_diffusion.precision import precision_scope, resolve_precision
from openriff.pipeline.audio_io import SAMPLE_RATE, AudioInput, load_input
from openriff.pipeline.bundle import AccompanimentModel
from openriff.pipeline.chroma import CHROMA_BINS, append_context_chroma
from openriff.pipeline.contracts import ClapEmbedder
from openriff.pipeline.generation.calls import Call
from openriff.pipeline.levels import Levels, db_to_gain, gain_for, gain_to
from openriff.pipeline.limits import seconds_to_samples
from openriff.pipeline.streamed import ContextFile

EmbeddingInput = str | os.PathLike[str] | NDArray[np.float32] | NDArray[np.float64] | Tensor
"""A CLAP embedding given as such: a ``.npy`` file, or an array ``[E]`` / ``[1, E]``."""


class Conditioner:
    """The conditions of a bundle's denoiser, from audio and text.

    Args:
        model: a loaded bundle.
        device: where the conditions go.
        precision: of the codec's encoder (:mod:`openriff.latent_diffusion.precision`).
    """

    def __init__(
        self, model: AccompanimentModel, device: torch.device | str = "cpu", precision: str = "auto"
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self._clap: ClapEmbedder | None = None
        prepared = model.info.get("provenance", {}).get("prepare", {}).get("config", {})
        window = float(prepared.get("pairs", {}).get("window", 120 * model.codec.hop_length))
        training = max(1, round(window / model.codec.hop_length))  # latent frames
        self.training_window = training  # latent frames of the training windows
        self.window = training  # the longest pass
        # A backbone that extrapolates in length (the U-Net's dynamic position bias, a
        # rotary DiT) may be declared to sample up to this many frames in one pass: no
        # seams below it.
        declared = model.info.get("one_pass_frames")
        if declared is not None:
            if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
                raise ValueError(
                    f"bundle.json 'one_pass_frames' must be a positive integer, got {declared!r}"
                )
            self.window = max(training, declared)
        # Trained on contexts with their chromagram appended: append it here too.
        self.context_chroma = bool(prepared.get("context_chroma", False))
        # The loudness its contexts were trained at; None: contexts keep their level.
        self.levels = Levels.from_info(model.info)

    @property
    def hop(self) -> float:
        """48 kHz samples per latent frame (not a whole number for music2latent)."""
        return float(self.model.codec.hop_length)

    @property
    def context_channels(self) -> int:
        """Channels of the denoiser's context: latents, plus 12 chroma bins if prepared so."""
        return self.model.codec.latent_dim + (CHROMA_BINS if self.context_chroma else 0)

    def samples(self, frames: int) -> int:
        """Samples covered by ``frames`` latent frames (whole samples)."""
        return round(frames * self.hop)

    def frames(self, samples: int) -> int:
        """Latent frames that cover ``samples`` samples."""
        return max(1, math.ceil(samples / self.hop - 1e-9))

    def seams(self, samples: int, window: int | None = None) -> list[float]:
        """Where (seconds) a generation of ``samples`` samples passes from window to window.

        The middle of each overlap (:func:`~openriff.latent_diffusion.controls.plan_windows`),
        where a discontinuity would sound. ``window``: the longest pass a generation made
        (its settings' ``pass_frames``), default :attr:`window`.
        """
        windows = plan_windows(self.frames(samples), window or self.window)
        seams = [w.seam for w in windows]
        return [frame * self.hop / SAMPLE_RATE for frame in seams if frame is not None]

    def encode(self, wave: Tensor) -> Tensor:
        """``[C, S]`` 48 kHz audio -> latents ``[1, D, ceil(S / hop)]``."""
        from openriff.cae.contract import adapt_channels

        wave = adapt_channels(wave[None].float(), self.model.codec.channels)
        with precision_scope(self.device, self.precision):
            latents: Tensor = self.model.codec.encode(wave.to(self.device))
        return latents.float()

    def encode_context(self, wave: Tensor) -> Tensor:
        """``[C, S]`` context -> the denoiser's context ``[1, Dc, T]``.

        The context is first brought to the loudness the bundle's contexts were trained
        at (:attr:`levels`), so a quiet or loud recording is heard as in training. Its
        latents, then, for a bundle prepared with ``context_chroma``, its chromagram
        (:func:`openriff.pipeline.chroma.context_chroma`): ``Dc = D + 12``.
        """
        if self.levels is not None:
            wave = wave * db_to_gain(gain_to(wave.numpy(), self.levels.context_lufs))
        latents = self.encode(wave)
        if not self.context_chroma:
            return latents
        mono = wave.float().mean(0, keepdim=True).to(latents.device)  # (1, S)
        return append_context_chroma(latents, mono, self.hop)  # (1, D + 12, T)

    def context_latents(
        self,
        context: AudioInput | None,
        sample_rate: int,
        length: int | None,
        what: str = "output",
    ) -> tuple[Tensor | None, Tensor | None]:
        """Context ``[1, Dc, T]`` and its audio ``[C, S]`` (cropped to ``length`` if given).

        A context shorter than ``length`` by more than a frame is refused (it must cover
        the ``what``); a shorter one by less is padded with silence.
        """
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
        return self.encode_context(wave), wave

    def context_file(self, context: AudioInput | None) -> ContextFile | None:
        """A context file surveyed to be read as it is needed, or None where it cannot be.

        None for an array context, a codec that encodes whole recordings only, or a
        bundle whose contexts carry their chromagram (computed over the whole recording);
        :meth:`context_latents` then loads the context whole.
        """
        if not isinstance(context, (str, os.PathLike)) or self.context_chroma:
            return None
        if not isinstance(self.model.codec, ReaderEncoder):
            return None
        return ContextFile.survey(Path(context), "context")

    def encode_context_file(self, source: ContextFile) -> Tensor:
        """The context ``[1, D, T]`` of a file, read window by window as the codec needs it.

        Equal to :meth:`encode_context` of the whole recording (its level set the same
        way), without holding its audio (:mod:`openriff.pipeline.streamed`).
        """
        codec = self.model.codec
        assert isinstance(codec, ReaderEncoder)  # as context_file checked
        gain = 0.0
        if self.levels is not None:
            gain = gain_for(source.loudness, source.peak, self.levels.context_lufs)
        with precision_scope(self.device, self.precision):
            latents = codec.encode_from(source.reader(db_to_gain(gain)), source.samples)
        return latents.float()

    def style(
        self, reference: AudioInput | None, strength: float, sample_rate: int
    ) -> Tensor | None:
        """Latents ``[1, D, T]`` of a style reference (None when there is none or strength 0).

        The reference is brought to the loudness of a stem in training (:attr:`levels`).
        """
        if reference is None or strength == 0:
            return None
        wave = load_input(reference, "style reference", sample_rate)
        if self.levels is not None:
            wave = wave * db_to_gain(gain_to(wave.numpy(), self.levels.stem_lufs))
        return self.encode(wave)

    def _clap_encoder(self) -> ClapEmbedder:
        if self._clap is None:
            checkpoint = self.model.clap_checkpoint
            if checkpoint is None:
                raise ValueError(
                    "prompts and references need a CLAP checkpoint, and this bundle names "
                    "none (it was prepared CLAP-free)"
                )
            from openriff.clap_bridge.encoder import ClapEncoder

            recorded = self.model.info.get("clap", {})
            encoder: ClapEmbedder = ClapEncoder(
                checkpoint,
                amodel=recorded.get("amodel"),
                fusion=recorded.get("fusion"),
                device=self.device,
            )
            self._clap = encoder
        return self._clap

    @property
    def embedding_dim(self) -> int:
        """Width ``E`` of the CLAP embeddings the denoiser takes (0: none)."""
        return int(self.model.config.backbone_config().embedding_dim)

    def given_embedding(self, embedding: EmbeddingInput) -> Tensor:
        """A CLAP embedding given as such, unit-norm like CLAP's own, as ``[1, E]``.

        Args:
            embedding: a ``.npy`` path, or an array ``[E]`` or ``[1, E]``.
        """
        self._check_embeddings()
        if isinstance(embedding, (str, os.PathLike)):
            path = Path(embedding)
            if not path.is_file():
                raise FileNotFoundError(f"CLAP embedding {path}: no such file")
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                raise ValueError(f"CLAP embedding {path}: not a .npy array ({error})") from None
        elif isinstance(embedding, Tensor):
            array = embedding.detach().float().cpu().numpy()
        else:
            array = np.asarray(embedding)
        dim = self.embedding_dim
        if array.dtype.kind not in "fiu" or array.shape not in ((dim,), (1, dim)):
            raise ValueError(
                f"a CLAP embedding must be {dim} numbers ([{dim}] or [1, {dim}]), got "
                f"{array.dtype} {list(array.shape)}"
            )
        values = array.astype(np.float64).reshape(1, dim)
        if not np.isfinite(values).all():
            raise ValueError("the CLAP embedding contains NaN or infinite values")
        norm = float(np.linalg.norm(values))
        if norm == 0.0:
            raise ValueError("the CLAP embedding is all zeros")
        return torch.from_numpy((values / norm).astype(np.float32)).to(self.device)

    def unconditional_embedding(self, generator: torch.Generator | None = None) -> Tensor:
        """CLAP_A*: an audio embedding ``[1, E]`` the bridge prior draws without a prompt."""
        self._check_embeddings()
        if self.model.bridge is None:
            raise ValueError(
                "an unconditional CLAP embedding (CLAP_A*) is drawn by the bridge prior, and "
                "this bundle has none (`openriff train bridge --bundle` adds one)"
            )
        sample: Tensor = self.model.bridge.sample_unconditional(1, generator=generator)
        return sample.to(self.device)

    def _check_embeddings(self) -> None:
        if dict(self.model.config.overrides).get("embedding_dim", 1) == 0:
            raise ValueError("this bundle's model was trained without CLAP embeddings")

    def embed_reference(self, reference: AudioInput, sample_rate: int = SAMPLE_RATE) -> Tensor:
        """CLAP_A: the unit-norm CLAP embedding ``[1, E]`` of a recording (path or array)."""
        self._check_embeddings()
        wave = load_input(reference, "reference", sample_rate).mean(0)  # (S,) mono
        out = self._clap_encoder().embed_audio([wave.numpy()], sample_rate=SAMPLE_RATE)
        return out.to(self.device)

    def embed_prompt(
        self, prompt: str, *, use_bridge: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """CLAP_T: ``[1, E]``, through the bridge prior when the bundle has one."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"a prompt must be non-empty text, got {prompt!r}")
        self._check_embeddings()
        text = self._clap_encoder().embed_text([prompt]).to(self.device)
        if use_bridge and self.model.bridge is not None:
            sample: Tensor = self.model.bridge.sample(text, 1, generator=generator)
            return sample[:, 0].to(self.device)
        return text

    def embed(
        self,
        source: str | AudioInput,
        *,
        use_bridge: bool,
        generator: torch.Generator,
        sample_rate: int,
    ) -> Tensor:
        """A ``str`` is a prompt (CLAP_T); a path or an array a reference recording (CLAP_A)."""
        if isinstance(source, str):
            return self.embed_prompt(source, use_bridge=use_bridge, generator=generator)
        return self.embed_reference(source, sample_rate)

    def context_and_length(
        self,
        context: AudioInput | None,
        duration: float | None,
        sample_rate: int,
    ) -> tuple[Tensor | None, Tensor | None, int]:
        """The context ``[1, Dc, T]``, its audio ``[C, S]`` and the samples to generate.

        Without a context: None, None and ``duration`` seconds.
        """
        if context is not None and duration is not None:
            raise ValueError("give a context or a duration, not both (the output is as long "
                             "as the context)")  # fmt: skip
        latents, wave = self.context_latents(context, sample_rate, None)
        if wave is not None:
            return latents, wave, int(wave.shape[-1])
        if duration is None:
            raise ValueError("without a context, give a duration > 0 in seconds")
        return None, None, seconds_to_samples(duration, "duration")

    def embedding(
        self,
        call: Call,
        prompt: str | None,
        reference: AudioInput | None,
        given: EmbeddingInput | None = None,
        unconditional: bool = False,
    ) -> Tensor | None:
        """The CLAP embedding ``[1, E]``, or None.

        A ``given`` embedding, or the bridge's ``unconditional`` draw (CLAP_A*), stand
        alone; otherwise a reference's (preferred) or a prompt's.
        """
        if given is not None or unconditional:
            text_or_audio = prompt is not None or reference is not None
            if sum((given is not None, unconditional, text_or_audio)) > 1:
                raise ValueError(
                    "give one CLAP condition: a prompt or reference, an embedding, or the "
                    "unconditional draw"
                )
            if given is not None:
                return self.given_embedding(given)
            return self.unconditional_embedding(call.bridge)
        if reference is not None:
            return self.embed_reference(reference, call.sample_rate)
        if prompt is not None:
            return self.embed_prompt(
                prompt, use_bridge=call.options.use_bridge, generator=call.bridge
            )
        return None
