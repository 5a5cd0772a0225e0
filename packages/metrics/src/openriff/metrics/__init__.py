"""Evaluation metrics of OpenRiff over embeddings, usable on their own (numpy and scipy).

Fréchet distance (FAD) and FAD-infinity, kernel distance (KD, unbiased polynomial MMD^2),
precision/recall/density/coverage (Naeem et al. 2020), Audio Prompt Adherence (APA) and the
CLAP score, as in Diff-A-Riff 4.3.2 and the DiT follow-up 4.4.
"""

from openriff.metrics.__about__ import __version__
from openriff.metrics.apa import apa, audio_prompt_adherence, clap_score
from openriff.metrics.frechet import (
    fad_infinity,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
)
from openriff.metrics.kernel import kernel_distance, polynomial_mmd
from openriff.metrics.prdc import density_coverage

__all__ = [
    "__version__",
    "apa",
    "audio_prompt_adherence",
    "clap_score",
    "density_coverage",
    "fad_infinity",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gaussian_stats",
    "kernel_distance",
    "polynomial_mmd",
]
