"""Offline LAION-CLAP for the tests (see :mod:`openriff.clap_bridge.testing`).

The Hugging Face cache points at a temporary folder before anything imports
huggingface_hub; fixtures fill it with stand-ins and save a random HTSAT-tiny CLAP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openriff.clap_bridge.testing import (
    offline_hf_cache,
    random_clap_checkpoint,
    write_stub_hf_cache,
)

_HUB = offline_hf_cache()


@pytest.fixture(scope="session")
def hf_cache() -> Path:
    """The temporary Hugging Face cache, filled with stand-ins."""
    if not (_HUB / "models--roberta-base").exists():
        write_stub_hf_cache(_HUB)
    return _HUB


@pytest.fixture(scope="session")
def clap_checkpoint(hf_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny, no-fusion LAION-CLAP in LAION's checkpoint format."""
    return random_clap_checkpoint(
        hf_cache, tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt"
    )
