"""``Music2LatentCodec``: the official music2latent model behind the LatentCodec contract.

People who have the official Music2Latent weights (``music2latent.pt``) get the latent
space Diff-A-Riff was trained in. This adapter depends on the ``music2latent`` package
(extra ``[music2latent]``, licence CC BY-NC 4.0; none of its code is copied here) and:

* builds ``music2latent.models.UNet()`` itself and loads the checkpoint from a local path
  with ``torch.load(..., weights_only=True)``: the package's own ``EncoderDecoder`` always
  tries to download the weights, so it is not used;
* takes and returns 48 kHz audio, resampling to and from the model's 44.1 kHz with soxr;
* pads the audio so that music2latent's encoder, which crops to whole latent frames, keeps
  everything: ``ceil(S' / 4096)`` latents for ``S'`` samples at 44.1 kHz;
* makes decoding reproducible: music2latent draws its noise from torch's global RNG, so
  the adapter seeds a forked RNG from the caller's ``torch.Generator``.

Its ``hop_length`` is ``4096 * 48000 / 44100`` 48 kHz samples per latent (not an integer:
the model runs at 44.1 kHz).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from openriff.cae.audio import resample
from openriff.cae.contract import adapt_channels, check_wave
from openriff.cae.files import read_torch_state

NATIVE_RATE = 44_100
NATIVE_HOP = 4096  # samples per latent at 44.1 kHz: STFT hop 512 x 8 frames
STFT_HOP = 512


@contextlib.contextmanager
def _quiet_cpu_autocast() -> Iterator[None]:
    """music2latent enters CUDA fp16 autocast unconditionally; on a CPU torch warns."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="CUDA is not available", category=UserWarning)
        yield


def _import_music2latent() -> tuple[Any, Any]:
    try:
        from music2latent import inference, models
    except ImportError as error:
        raise ImportError(
            "Music2LatentCodec needs the music2latent package: "
            "pip install 'openriff-cae[music2latent]'"
        ) from error
    return inference, models


class Music2LatentCodec(nn.Module):
    """The official Music2Latent autoencoder as a 48 kHz mono LatentCodec.

    Args:
        checkpoint: path of ``music2latent.pt`` (a dict with ``gen_state_dict``).
        device: where the model runs.
        max_chunk_seconds: longest stretch music2latent processes at once (its own
            chunking; bounds memory).

    Raises:
        FileNotFoundError: the checkpoint is missing, with how to get it.
        ValueError: the file is not a music2latent checkpoint.
    """

    sample_rate = 48_000
    channels = 1
    latent_dim = 64
    hop_length: float = NATIVE_HOP * 48_000 / NATIVE_RATE
    latent_bound: float | None = None  # not documented by music2latent: nothing is clipped

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        max_chunk_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"music2latent checkpoint not found at {path}. Download music2latent.pt from "
                "the official music2latent release once, keep it locally and pass its path "
                "(OpenRiff never downloads weights)."
            )
        inference, models = _import_music2latent()
        self._inference = inference
        state = read_torch_state(path, what="music2latent checkpoint")  # weights only
        if not isinstance(state, dict) or "gen_state_dict" not in state:
            raise ValueError(f"{path}: not a music2latent checkpoint (no 'gen_state_dict')")
        self.gen = models.UNet()
        # Extra keys are tolerated as music2latent's own loader does (strict=False).
        missing, _ = self.gen.load_state_dict(state["gen_state_dict"], strict=False)
        if missing:
            raise ValueError(
                f"{path}: weights do not fit music2latent's UNet; missing {sorted(missing)[:5]}"
            )
        self.device = torch.device(device)
        self.gen.to(self.device).eval()
        self.max_chunk = int(max_chunk_seconds * NATIVE_RATE)

    def _to_native(self, wave: Tensor) -> tuple[Tensor, int]:
        """``[B, S]`` at 48 kHz -> ``[B, L]`` at 44.1 kHz padded for whole latents, latents."""
        data = resample(wave.T.numpy().astype(np.float32), self.sample_rate, NATIVE_RATE)
        native = torch.from_numpy(np.ascontiguousarray(data.T))
        frames = max(1, math.ceil(native.shape[-1] / NATIVE_HOP))
        # music2latent crops to ((S - 3 hop) // hop // 8) * hop * 8 + 3 hop samples.
        target = frames * NATIVE_HOP + 3 * STFT_HOP
        return nn.functional.pad(native, (0, target - native.shape[-1])), frames

    @torch.no_grad()
    def encode(self, wave: Tensor) -> Tensor:
        """48 kHz audio ``[B, C, S]`` -> latents ``[B, 64, ceil(S * 44100 / 48000 / 4096)]``."""
        check_wave(wave)
        mono = adapt_channels(wave.float().cpu(), 1)[:, 0]  # (B, S)
        native, frames = self._to_native(mono)
        trainer = SimpleNamespace(gen=self.gen)
        with _quiet_cpu_autocast():
            latents = self._inference.encode_audio_inference(
                native.to(self.device), trainer, self.max_chunk, native.shape[0], device=self.device
            )  # (B, 64, T)
        return latents[..., :frames].float()

    @torch.no_grad()
    def decode(
        self,
        latents: Tensor,
        *,
        steps: int = 1,
        generator: torch.Generator | None = None,
        length: int | None = None,
    ) -> Tensor:
        """Latents ``[B, 64, T]`` -> 48 kHz audio ``[B, 1, length]``.

        Args:
            latents: music2latent latents.
            steps: consistency decoding steps.
            generator: seeds the decoding noise; the same seed gives the same audio.
            length: output samples (default ``round(T * hop_length)``).
        """
        if latents.ndim != 3 or latents.shape[1] != self.latent_dim or latents.shape[2] == 0:
            raise ValueError(f"expected latents shaped [B, 64, T>0], got {list(latents.shape)}")
        if not torch.isfinite(latents).all():
            raise ValueError("latents contain NaN or infinite values")
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        trainer = SimpleNamespace(gen=self.gen)
        with torch.random.fork_rng(devices=devices), _quiet_cpu_autocast():
            torch.manual_seed(seed)
            native = self._inference.decode_latent_inference(
                latents.to(self.device),
                trainer,
                self.max_chunk,
                latents.shape[0],
                diffusion_steps=steps,
                device=self.device,
            )  # (B, S_native)
        native = torch.as_tensor(native).float().cpu()
        data = resample(native.T.numpy(), NATIVE_RATE, self.sample_rate)
        out = torch.from_numpy(np.ascontiguousarray(data.T))[:, None]  # (B, 1, S)
        if length is None:
            length = round(latents.shape[-1] * self.hop_length)
        out = nn.functional.pad(out, (0, max(0, length - out.shape[-1])))
        return out[..., :length]
