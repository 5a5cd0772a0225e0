"""Evaluation metrics for accompaniment generation, usable on their own.

The core needs only numpy and scipy and works from embedding files: Frechet distance,
kernel distance (MMD^2), density and coverage, Audio Prompt Adherence and the CLAP score.
Embedders sit behind extras: ``[clap]`` (through openriff-clap-bridge) and ``[fadtk]``.
This module must never import torch at import time.
"""

from openriff.metrics.__about__ import __version__

__all__ = ["__version__"]
