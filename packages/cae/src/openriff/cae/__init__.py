"""Consistency autoencoders that compress 48 kHz audio into ~12 Hz latent sequences.

The package will hold the Diff-A-Riff CAE (``conv``) and the stereo Music2Latent2-style
model (``transformer``), both satisfying the ``LatentCodec`` contract
(``encode(wave[B, C, S]) -> latents[B, D, T]``, ``decode(latents) -> wave``), their
trainer and CLI, and an adapter for the official ``music2latent`` weights
(extra ``[music2latent]``).
"""

from openriff.cae.__about__ import __version__

__all__ = ["__version__"]
