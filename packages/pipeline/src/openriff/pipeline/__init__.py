"""The accompaniment system: data, preprocessing, training and generation.

The package will connect openriff-cae, openriff-latent-diffusion, openriff-clap-bridge
and openriff-metrics into Diff-A-Riff: multitrack readers and the synthetic multitrack
generator, latent/CLAP preprocessing, ``openriff train``, ``AccompanimentPipeline`` and
the ``openriff`` CLI, and a UI (extra ``[ui]``).
"""

from openriff.pipeline.__about__ import __version__

__all__ = ["__version__"]
