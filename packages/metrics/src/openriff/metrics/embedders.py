"""Audio embedders for the metrics (the Embedder contract of ARCHITECTURE.md).

An Embedder has ``sample_rate``, ``dim``, a ``name`` that identifies the model and its
weights, and ``embed(waves) -> [N, dim]`` float64 for mono float32 waves at its rate.

* :class:`ClapEmbedder` (extra ``[clap]``): LAION-CLAP through openriff-clap-bridge, from
  a local checkpoint, offline.
* :class:`FadtkEmbedder` (extra ``[fadtk]``): any ``fadtk`` ModelLoader (its model zoo by
  name, or one of your own), mean-pooled over its frames.
* :func:`embed_files` reads, resamples and embeds audio files through an
  :class:`~openriff.metrics.cache.EmbeddingCache` keyed by file content and model.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from openriff.metrics.audio import load_mono
from openriff.metrics.cache import EmbeddingCache, file_fingerprint
from openriff.metrics.errors import EmbedderUnavailable


@runtime_checkable
class Embedder(Protocol):
    """What the metrics need from an audio embedding model."""

    sample_rate: int
    dim: int
    name: str

    def embed(self, waves: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Mono waves ``[S_i]`` at ``sample_rate`` -> embeddings ``[N, dim]``."""
        ...


def check_device(name: str) -> None:
    """Refuse a device name torch does not know, or CUDA where torch sees no GPU."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not (
        torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    ):
        raise ValueError(f"device {name!r}: torch sees no such CUDA GPU on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported: use cpu or cuda")


class ClapEmbedder:
    """LAION-CLAP audio embeddings (512-d, unit norm) via openriff-clap-bridge.

    Args:
        checkpoint: local LAION-CLAP ``.pt`` file.
        amodel: ``"HTSAT-base"``/``"HTSAT-tiny"`` (None: from the file name).
        fusion: fusion model (None: from the file name).
        device: torch device.
        batch_size: 10 s windows per forward pass.
    """

    sample_rate = 48_000
    dim = 512

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        *,
        amodel: str | None = None,
        fusion: bool | None = None,
        device: str = "cpu",
        batch_size: int = 8,
    ) -> None:
        try:
            from openriff.clap_bridge.encoder import ClapEncoder
        except ImportError as error:
            raise ImportError(
                "ClapEmbedder needs the [clap] extra: pip install 'openriff-metrics[clap]'"
            ) from error
        from openriff.clap_bridge.encoder import ClapSetupError

        try:
            self.encoder = ClapEncoder(
                checkpoint, amodel=amodel, fusion=fusion, device=device, batch_size=batch_size
            )
        except ClapSetupError as error:
            raise EmbedderUnavailable(str(error)) from error
        self.name = f"clap:{self.encoder.architecture}:{file_fingerprint(checkpoint)}"

    def embed(self, waves: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Mono 48 kHz waves -> ``[N, 512]``."""
        out = self.encoder.embed_audio(list(waves), sample_rate=self.sample_rate)
        return np.asarray(out.numpy(), dtype=np.float64)


class FadtkEmbedder:
    """A ``fadtk`` model, mean-pooled over its frames.

    ``model`` is a name from fadtk's zoo (``"vggish"``, ``"encodec-emb"``,
    ``"MERT-v1-95M-12"``, ...) or a ``fadtk.model_loader.ModelLoader`` instance.

    fadtk's loaders fetch weights themselves (Hugging Face, torch.hub or a URL). OpenRiff
    loads with the Hugging Face hub offline, so the weights must already be in the cache
    that loader uses; a failure names the model and that requirement.
    """

    def __init__(self, model: str | Any) -> None:
        try:
            from fadtk.model_loader import ModelLoader
        except ImportError as error:
            raise ImportError(
                "FadtkEmbedder needs the [fadtk] extra: pip install 'openriff-metrics[fadtk]'"
            ) from error
        if isinstance(model, str):
            model = fadtk_model(model)
        if not isinstance(model, ModelLoader):
            raise TypeError(f"expected a fadtk ModelLoader or its name, got {type(model).__name__}")
        os.environ["HF_HUB_OFFLINE"] = "1"  # OpenRiff downloads nothing
        try:
            with weights_only_loads():
                model.load_model()
        except EmbedderUnavailable:
            raise
        except Exception as error:
            raise EmbedderUnavailable(
                f"fadtk model {model.name!r} could not load its weights from local files "
                f"(OpenRiff downloads nothing; place them where fadtk's loader looks first): "
                f"{_first_line(error)}"
            ) from None
        self.model = model
        self.sample_rate = int(model.sr)
        self.dim = int(model.num_features)
        self.name = f"fadtk:{model.name}"

    def embed(self, waves: Sequence[NDArray[np.float32]]) -> NDArray[np.float64]:
        """Mono waves at ``sample_rate`` -> ``[N, dim]`` (mean over the model's frames)."""
        rows = []
        for wave in waves:
            frames = np.asarray(
                self.model.get_embedding(self.model.enforce_min_len(wave)), dtype=np.float64
            )
            rows.append(frames.reshape(-1, self.dim).mean(axis=0))
        return np.stack(rows)


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Every ``torch.load`` inside the block reads with ``weights_only=True``.

    Third-party loaders (fadtk's zoo, msclap, laion-clap, torch.hub state dicts) call
    ``torch.load`` themselves, some with ``weights_only=False``; a crafted checkpoint
    would run code there. Inside this block such a file is refused instead.
    """
    import torch

    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def _first_line(error: BaseException) -> str:
    import pickle

    if isinstance(error, pickle.UnpicklingError):
        if "Unsupported global" in str(error):
            return "the checkpoint holds Python objects, not plain tensors: refused to load it"
        return "the checkpoint is not a readable torch file"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# fadtk's own checkpoint files (its CLAP loaders download them in __init__ when missing).
_FADTK_FILES = {
    "clap-laion-audio": "630k-audioset-best.pt",
    "clap-laion-music": "music_audioset_epoch_15_esc_90.14.pt",
    "clap-2023": "CLAP_weights_2023.pth",
}
_FADTK_PATTERN = re.compile(
    r"(?P<family>w2v2|hubert|wavlm)-(?P<size>base-plus|base|large)(?:-(?P<layer>\d+))?"
)


def fadtk_model(name: str) -> Any:
    """The ``fadtk`` ModelLoader of zoo name ``name``, built without downloading anything.

    fadtk's ``get_all_models()`` would build every model, and its CLAP loaders download
    their checkpoints on construction; here only the named one is built, and a CLAP
    loader only when its file is already in fadtk's checkpoint folder.
    """
    import fadtk.model_loader as zoo

    if name in _FADTK_FILES:
        path = fadtk_checkpoints() / _FADTK_FILES[name]
        if not path.is_file():
            raise EmbedderUnavailable(
                f"fadtk model {name!r} needs {path} (OpenRiff downloads nothing): copy the "
                f"file there, or use ClapEmbedder with your own LAION-CLAP checkpoint"
            )
        if name == "clap-2023":
            return _msclap_loader(path)
        return _laion_loader(name.removeprefix("clap-laion-"), path)
    if name == "vggish":
        return zoo.VGGishModel()
    if name in ("encodec-emb", "encodec-emb-48k"):
        return zoo.EncodecEmbModel("48k" if name.endswith("48k") else "24k")
    if name.startswith("MERT-v1-95M"):
        suffix = name.removeprefix("MERT-v1-95M").lstrip("-")
        return zoo.MERTModel(layer=int(suffix) if suffix else 12)
    if name.startswith("whisper-"):
        return zoo.WhisperModel(name.removeprefix("whisper-"))
    match = _FADTK_PATTERN.fullmatch(name)
    if match:
        size = match["size"]
        depth = int(match["layer"]) if match["layer"] else (24 if size == "large" else 12)
        family = {"w2v2": zoo.W2V2Model, "hubert": zoo.HuBERTModel, "wavlm": zoo.WavLMModel}
        return family[match["family"]](size, depth)
    raise ValueError(
        f"unknown fadtk model {name!r}; known: vggish, encodec-emb(-48k), MERT-v1-95M(-L), "
        "w2v2/hubert-base|large(-L), wavlm-base|base-plus|large(-L), whisper-SIZE, "
        + ", ".join(_FADTK_FILES)
    )


def embed_files(
    embedder: Embedder,
    files: Sequence[str | os.PathLike[str]],
    cache: EmbeddingCache | None = None,
    *,
    batch_size: int = 16,
) -> NDArray[np.float64]:
    """Embeddings ``[N, dim]`` of audio files, read from / stored in ``cache``."""
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("no audio files to embed")
    out: list[NDArray[np.float64] | None] = [None] * len(paths)
    keys = [None if cache is None else cache.key(embedder.name, p.read_bytes()) for p in paths]
    if cache is not None:
        for i, key in enumerate(keys):
            if key is not None:
                out[i] = cache.get(key)
    todo = [i for i, row in enumerate(out) if row is None]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        waves = [load_mono(paths[i], embedder.sample_rate) for i in chunk]
        rows = np.asarray(embedder.embed(waves), dtype=np.float64)
        for i, row in zip(chunk, rows, strict=True):
            out[i] = row
            key = keys[i]
            if cache is not None and key is not None:
                cache.put(key, row)
    return np.stack([row for row in out if row is not None])


def fadtk_checkpoints() -> Path:
    """The folder where fadtk keeps (and its CLAP loaders look for) checkpoint files."""
    import fadtk.model_loader as zoo

    return Path(zoo.__file__).parent / ".model-checkpoints"


def _laion_loader(kind: str, path: Path) -> Any:
    """Fadtk's LAION-CLAP loader, its weights read by openriff-clap-bridge (weights only).

    fadtk's own constructor downloads a missing file and may rewrite the checkpoint, and
    laion-clap reads it with ``weights_only=False``; this loader does neither: it builds
    the same model through :class:`openriff.clap_bridge.encoder.ClapEncoder`.
    """
    from fadtk.model_loader import CLAPLaionModel, ModelLoader

    class SafeLaionClap(CLAPLaionModel):  # type: ignore[misc]
        def __init__(self) -> None:
            ModelLoader.__init__(self, f"clap-laion-{kind}", 512, 48_000)
            self.type = kind
            self.model_file = path

        def load_model(self) -> None:
            try:
                from openriff.clap_bridge.encoder import ClapEncoder, ClapSetupError
            except ImportError as error:
                raise EmbedderUnavailable(
                    f"fadtk model 'clap-laion-{kind}' is loaded through openriff-clap-bridge: "
                    "pip install 'openriff-metrics[clap]'"
                ) from error
            amodel = "HTSAT-tiny" if kind == "audio" else "HTSAT-base"
            try:
                encoder = ClapEncoder(path, amodel=amodel, fusion=False, device=self.device)
            except (ClapSetupError, ValueError, FileNotFoundError) as error:
                raise EmbedderUnavailable(f"fadtk model 'clap-laion-{kind}': {error}") from None
            self.model = encoder.module

    return SafeLaionClap()


def _msclap_loader(path: Path) -> Any:
    """Fadtk's Microsoft CLAP 2023 loader without its download step (weights only)."""
    from fadtk.model_loader import CLAPModel, ModelLoader

    class SafeMsClap(CLAPModel):  # type: ignore[misc]
        def __init__(self) -> None:
            ModelLoader.__init__(self, "clap-2023", 1024, 44_100)
            self.type = "2023"
            self.model_file = path

    return SafeMsClap()
