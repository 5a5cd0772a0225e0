"""An offline LAION-CLAP encoder: audio and text -> L2-normalised 512-d embeddings.

Diff-A-Riff 4.2.3 conditions on CLAP embeddings of a reference recording (CLAP_A) or of
text (CLAP_T). This wraps the ``laion-clap`` package (extra ``[clap]``, imported only when
an encoder is built) with what a reproducible, offline pipeline needs:

* the CLAP checkpoint comes from a local path and is read with
  ``torch.load(weights_only=True)``; its architecture (HTSAT-base or -tiny, fusion or not)
  is read off its weights and must match the one asked for;
* ``import laion_clap`` loads three Hugging Face tokenizers and builds the RoBERTa text
  model with ``from_pretrained``: the files they need are looked up in the local Hugging
  Face cache first, with downloads switched off, and one error lists whatever is missing;
* audio of any rate and channel count becomes 48 kHz mono, goes through the int16 round
  trip laion-clap applies to numpy input, and clips longer than 10 s are embedded as the
  normalised mean over deterministic 10 s windows (laion-clap would crop at random).
  Shorter clips are repeat-padded by laion-clap itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from openriff.clap_bridge.audio import CLAP_RATE, load_clap_audio, to_clap_rate
from openriff.clap_bridge.cache import EmbeddingCache, file_fingerprint
from openriff.latent_diffusion.files import read_torch_state

WINDOW = 10 * CLAP_RATE  # laion-clap's input length: 480000 samples
EMBEDDING_DIM = 512

# Files ``import laion_clap`` and ``CLAP_Module(tmodel="roberta")`` read from the Hugging
# Face cache; a tuple lists alternatives.
HF_FILES: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "bert-base-uncased": ("vocab.txt",),
    "roberta-base": (
        "vocab.json",
        "merges.txt",
        "config.json",
        ("model.safetensors", "pytorch_model.bin"),
    ),
    "facebook/bart-base": ("vocab.json", "merges.txt"),
}

# Architectures of the public LAION-CLAP checkpoints, by file name.
KNOWN_CHECKPOINTS: dict[str, tuple[str, bool]] = {
    "music_audioset_epoch_15_esc_90.14.pt": ("HTSAT-base", False),
    "music_speech_audioset_epoch_15_esc_89.98.pt": ("HTSAT-base", False),
    "music_speech_epoch_15_esc_89.25.pt": ("HTSAT-base", False),
    "630k-audioset-best.pt": ("HTSAT-tiny", False),
    "630k-best.pt": ("HTSAT-tiny", False),
    "630k-audioset-fusion-best.pt": ("HTSAT-tiny", True),
    "630k-fusion-best.pt": ("HTSAT-tiny", True),
}
# Width of the first HTSAT stage, which tells the audio encoders apart.
_HTSAT_WIDTH = {96: "HTSAT-tiny", 128: "HTSAT-base"}
_PATCH_KEY = "audio_branch.patch_embed.proj.weight"
_POSITION_IDS = "text_branch.embeddings.position_ids"


class ClapSetupError(RuntimeError):
    """What laion-clap needs is not on this machine; the message says how to provide it."""


def missing_hf_files() -> list[str]:
    """``repo/file`` entries of :data:`HF_FILES` absent from the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    missing = []
    for repo, files in HF_FILES.items():
        for entry in files:
            options = entry if isinstance(entry, tuple) else (entry,)
            if not any(isinstance(try_to_load_from_cache(repo, f), str) for f in options):
                missing.append(f"{repo}/{' or '.join(options)}")
    return missing


def _require_offline_hf_files() -> None:
    # Downloads off for good: every file must already be local.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants
    except ImportError as error:
        raise ClapSetupError(
            "ClapEncoder needs the [clap] extra: pip install 'openriff-clap-bridge[clap]'"
        ) from error
    missing = missing_hf_files()
    if missing:
        commands = "\n".join(
            f"  huggingface-cli download {repo} "
            + " ".join(e if isinstance(e, str) else e[0] for e in files)
            for repo, files in HF_FILES.items()
        )
        raise ClapSetupError(
            "laion-clap loads Hugging Face tokenizers and the RoBERTa text model at import, "
            "and OpenRiff never downloads them. Missing from the cache "
            f"{constants.HF_HUB_CACHE}:\n  "
            + "\n  ".join(missing)
            + "\nOn a machine with internet run\n"
            + commands
            + "\nthen copy its Hugging Face cache here (or set HF_HOME / HF_HUB_CACHE to it)."
        )


@dataclass(frozen=True)
class ClapArchitecture:
    """What a LAION-CLAP checkpoint is: audio encoder and whether it uses feature fusion."""

    amodel: str
    fusion: bool

    def __str__(self) -> str:
        return f"{self.amodel}, {'fusion' if self.fusion else 'no fusion'}"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The model weights of a LAION-CLAP ``.pt`` file (``weights_only=True``, no prefix)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CLAP checkpoint {path} does not exist: pass the path of a LAION-CLAP .pt file "
            "(for example music_audioset_epoch_15_esc_90.14.pt from huggingface.co/lukewys/"
            "laion_clap, downloaded beforehand)"
        )
    raw = read_torch_state(path, what="LAION-CLAP checkpoint")  # weights only: no code runs
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} holds no CLAP state dict")
    return {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in state.items()
        if isinstance(v, Tensor)
    }


def architecture_of(state: dict[str, Tensor], where: str) -> ClapArchitecture:
    """Read the audio encoder and fusion flag off a CLAP state dict."""
    if _PATCH_KEY not in state:
        raise ValueError(f"{where} is not a LAION-CLAP HTSAT checkpoint (no {_PATCH_KEY})")
    width = int(state[_PATCH_KEY].shape[0])
    if width not in _HTSAT_WIDTH:
        raise ValueError(f"{where}: unknown HTSAT width {width} (known: {sorted(_HTSAT_WIDTH)})")
    fusion = any("fusion_model" in k or "mel_conv2d" in k for k in state)
    return ClapArchitecture(_HTSAT_WIDTH[width], fusion)


class ClapEncoder:
    """LAION-CLAP audio and text embeddings, offline and deterministic.

    Args:
        checkpoint: local LAION-CLAP ``.pt`` file.
        amodel: ``"HTSAT-base"`` or ``"HTSAT-tiny"``; None takes it from the known file
            names (:data:`KNOWN_CHECKPOINTS`), else ``"HTSAT-base"``.
        fusion: whether the checkpoint uses feature fusion; None as for ``amodel`` (else
            False).
        device: where the model runs.
        batch_size: clips (10 s windows) or prompts per forward pass.
        cache_dir: folder of an on-disk embedding cache keyed by content hash and
            checkpoint (None: no cache).
    """

    sample_rate = CLAP_RATE
    dim = EMBEDDING_DIM

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        *,
        amodel: str | None = None,
        fusion: bool | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 8,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = Path(checkpoint)
        known = KNOWN_CHECKPOINTS.get(path.name, ("HTSAT-base", False))
        expected = ClapArchitecture(
            amodel if amodel is not None else known[0], fusion if fusion is not None else known[1]
        )
        if expected.amodel not in _HTSAT_WIDTH.values():
            raise ValueError(f"amodel must be HTSAT-base or HTSAT-tiny, got {expected.amodel!r}")
        state = read_checkpoint(path)
        found = architecture_of(state, str(path))
        if found != expected:
            raise ValueError(
                f"{path} is a {found} checkpoint, but a {expected} model was asked for "
                f"(pass amodel={found.amodel!r}, fusion={found.fusion})"
            )
        _require_offline_hf_files()
        import laion_clap

        self.checkpoint = path
        self.architecture = found
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.module: Any = laion_clap.CLAP_Module(
            enable_fusion=found.fusion, device=str(self.device), amodel=found.amodel
        )
        model = self.module.model
        if _POSITION_IDS not in model.state_dict():
            state.pop(_POSITION_IDS, None)  # a buffer recent transformers no longer saves
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit laion-clap's {found} model: missing "
                f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            )
        model.to(self.device).eval()
        self.cache = None
        if cache_dir is not None:
            self.cache = EmbeddingCache(cache_dir, f"{file_fingerprint(path)}:{found}")

    def _cached(self, keys: list[str] | None, compute: Any, count: int) -> Tensor:
        """Embeddings of ``count`` items: cached ones read, the rest ``compute(indices)``."""
        out: list[Tensor | None] = [None] * count
        if self.cache is not None and keys is not None:
            for i, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    out[i] = torch.from_numpy(hit)
        todo = [i for i in range(count) if out[i] is None]
        if todo:
            fresh = compute(todo)
            for i, value in zip(todo, fresh, strict=True):
                out[i] = value
                if self.cache is not None and keys is not None:
                    self.cache.put(keys[i], value.numpy())
        return _normalise(torch.stack([t for t in out if t is not None]))

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> Tensor:
        """``[N, 512]`` unit-norm float32 embeddings of ``N`` prompts."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("no prompts given (empty list)")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"prompt {i} is a {type(text).__name__}, not a str")

        def compute(indices: list[int]) -> list[Tensor]:
            parts = []
            for start in range(0, len(indices), self.batch_size):
                batch = [texts[i] for i in indices[start : start + self.batch_size]]
                parts.append(self.module.get_text_embedding(batch, use_tensor=True).float().cpu())
            return list(_normalise(torch.cat(parts)))

        keys = None
        if self.cache is not None:
            keys = [self.cache.key("text", t.encode()) for t in texts]
        return self._cached(keys, compute, len(texts))

    @torch.no_grad()
    def embed_audio(
        self,
        audio: Sequence[str | os.PathLike[str] | NDArray[Any] | Tensor],
        sample_rate: int | None = None,
    ) -> Tensor:
        """``[N, 512]`` unit-norm float32 embeddings of ``N`` clips.

        Args:
            audio: file paths, or arrays ``[S]``/``[S, C]`` (or tensors ``[S]``/``[C, S]``)
                at ``sample_rate``.
            sample_rate: rate of array inputs (required with arrays).
        """
        if isinstance(audio, (str, os.PathLike, np.ndarray, Tensor)):
            audio = [audio]
        if len(audio) == 0:
            raise ValueError("no audio given (empty list)")
        items = list(audio)

        def compute(indices: list[int]) -> list[Tensor]:
            pieces = [clap_windows(self._wave(items[i], sample_rate, i)) for i in indices]
            flat = [piece for clip in pieces for piece in clip]
            embedded = []
            for start in range(0, len(flat), self.batch_size):
                batch = [
                    torch.from_numpy(quantise(p)).to(self.device)
                    for p in flat[start : start + self.batch_size]
                ]
                out = self.module.get_audio_embedding_from_data(batch, use_tensor=True)
                embedded.append(out.float().cpu())
            windows = torch.cat(embedded)
            means, at = [], 0
            for clip in pieces:
                means.append(windows[at : at + len(clip)].mean(dim=0))
                at += len(clip)
            return list(_normalise(torch.stack(means)))

        keys = None
        if self.cache is not None:
            cache = self.cache
            keys = [cache.key(*_audio_content(item, sample_rate)) for item in items]
        return self._cached(keys, compute, len(items))

    @staticmethod
    def _wave(item: Any, sample_rate: int | None, index: int) -> NDArray[np.float32]:
        if isinstance(item, (str, os.PathLike)):
            return load_clap_audio(item)
        if sample_rate is None:
            raise ValueError(f"audio {index} is an array: pass its sample_rate")
        if isinstance(item, Tensor):
            item = item.detach().float().cpu().numpy()
            if item.ndim == 2:
                item = item.T  # (C, S) -> (S, C)
        return to_clap_rate(np.asarray(item), sample_rate, f"audio {index}")


def _audio_content(item: Any, sample_rate: int | None) -> tuple[str, bytes]:
    """What identifies an input for the cache: a file's bytes, or an array and its rate."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        return "audio-file", path.read_bytes()
    if isinstance(item, Tensor):
        item = item.detach().float().cpu().numpy()
    array = np.ascontiguousarray(np.asarray(item, dtype=np.float32))
    header = f"{sample_rate}:{array.shape}".encode()
    return "audio-array", header + array.tobytes()


def clap_windows(wave: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    """Split ``[S]`` into deterministic 10 s windows.

    Windows lie back to back from the start and the last one ends at the end of the clip
    (overlapping its neighbour), so every window is a full 10 s. Shorter clips stay whole.
    """
    if wave.shape[0] <= WINDOW:
        return [wave]
    starts = list(range(0, wave.shape[0] - WINDOW + 1, WINDOW))
    if starts[-1] + WINDOW < wave.shape[0]:
        starts.append(wave.shape[0] - WINDOW)
    return [wave[s : s + WINDOW] for s in starts]


def quantise(wave: NDArray[np.float32]) -> NDArray[np.float32]:
    """laion-clap's int16 round trip, which it applies to numpy input (not to tensors)."""
    from laion_clap.training.data import float32_to_int16, int16_to_float32

    return np.asarray(int16_to_float32(float32_to_int16(wave)), dtype=np.float32)


def _normalise(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
