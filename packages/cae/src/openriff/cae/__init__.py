"""Consistency autoencoders that compress 48 kHz audio into ~12 Hz latent sequences.

Two model families satisfy the ``LatentCodec`` contract (``encode(wave[B, C, S]) ->
latents[B, D, T]``, ``decode(latents, steps=1, generator=None) -> wave``, any length in,
same length out):

* ``conv``: the Diff-A-Riff CAE (Music2Latent architecture family), mono, 64x
  compression; presets ``diffariff`` (~58 M parameters) and ``diffariff-tiny``.
* ``transformer``: the stereo Music2Latent2-style CAE, 128x compression, block-causal
  chunked decoding; presets ``stereo`` and ``stereo-tiny``.

``Music2LatentCodec`` (``openriff.cae.music2latent``, extra ``[music2latent]``) wraps the
official Music2Latent weights in the same contract.

>>> from openriff.cae import from_preset
>>> codec = from_preset("diffariff-tiny")  # untrained; from_pretrained(dir) loads weights
"""

from openriff.cae.__about__ import __version__
from openriff.cae.checkpoint import MODELS, build, from_preset, from_pretrained, save_pretrained
from openriff.cae.codec import SpectrogramCodec
from openriff.cae.contract import LatentCodec
from openriff.cae.conv import ConvCAE, ConvCAEConfig
from openriff.cae.presets import PRESETS
from openriff.cae.spectral import SpectrogramConfig
from openriff.cae.transformer import TransformerCAE, TransformerCAEConfig

__all__ = [
    "MODELS",
    "PRESETS",
    "ConvCAE",
    "ConvCAEConfig",
    "LatentCodec",
    "SpectrogramCodec",
    "SpectrogramConfig",
    "TransformerCAE",
    "TransformerCAEConfig",
    "__version__",
    "build",
    "from_preset",
    "from_pretrained",
    "save_pretrained",
]
