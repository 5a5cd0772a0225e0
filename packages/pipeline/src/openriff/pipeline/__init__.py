"""The accompaniment system: data, preprocessing, training and generation.

openriff-pipeline connects openriff-cae, openriff-latent-diffusion, openriff-clap-bridge
and openriff-metrics into Diff-A-Riff. Its subpackages follow the life of a model:
:mod:`.data` (multitrack layouts, the synthetic generator, pairs, preparation, shards),
:mod:`.train` (the denoiser, the bridge, recipes), :mod:`.generation` (the
:class:`AccompanimentPipeline` and its modes), :mod:`.evaluation` and :mod:`.cli` (the
``openriff`` command); :mod:`.bundle`, :mod:`.codecs`, :mod:`.audio_io`, :mod:`.chroma`
and :mod:`.limits` are shared by them.

The public API is importable from here; the heavy modules load on first use, so
``import openriff.pipeline`` (and ``openriff --help``) stays fast::

    from openriff.pipeline import AccompanimentPipeline

    pipeline = AccompanimentPipeline.from_pretrained()  # the default model
    out = pipeline.generate("song.wav", seed=0)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from openriff.pipeline.__about__ import __version__

if TYPE_CHECKING:
    from openriff.pipeline.bundle import AccompanimentModel, default_bundle
    from openriff.pipeline.data.prepare import PrepareConfig, prepare
    from openriff.pipeline.data.synth import synth_dataset, synth_song
    from openriff.pipeline.generation.options import Generation, Sampling
    from openriff.pipeline.generation.pipeline import AccompanimentPipeline
    from openriff.pipeline.train.models import train_bridge, train_ldm
    from openriff.pipeline.train.recipe import load_recipe, run_recipe

# public name -> the module that defines it
_EXPORTS = {
    "AccompanimentModel": "openriff.pipeline.bundle",
    "AccompanimentPipeline": "openriff.pipeline.generation.pipeline",
    "Generation": "openriff.pipeline.generation.options",
    "PrepareConfig": "openriff.pipeline.data.prepare",
    "Sampling": "openriff.pipeline.generation.options",
    "default_bundle": "openriff.pipeline.bundle",
    "load_recipe": "openriff.pipeline.train.recipe",
    "prepare": "openriff.pipeline.data.prepare",
    "run_recipe": "openriff.pipeline.train.recipe",
    "synth_dataset": "openriff.pipeline.data.synth",
    "synth_song": "openriff.pipeline.data.synth",
    "train_bridge": "openriff.pipeline.train.models",
    "train_ldm": "openriff.pipeline.train.models",
}

__all__ = [
    "AccompanimentModel",
    "AccompanimentPipeline",
    "Generation",
    "PrepareConfig",
    "Sampling",
    "__version__",
    "default_bundle",
    "load_recipe",
    "prepare",
    "run_recipe",
    "synth_dataset",
    "synth_song",
    "train_bridge",
    "train_ldm",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
