"""Offline LAION-CLAP for the tests (see :mod:`openriff.clap_bridge.testing`).

The Hugging Face cache points at a temporary folder before anything imports
huggingface_hub; fixtures fill it with stand-ins and save a random HTSAT-tiny CLAP.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HUB = Path(tempfile.mkdtemp(prefix="openriff-hf-")) / "hub"
os.environ["HF_HOME"] = str(_HUB.parent)
os.environ["HF_HUB_CACHE"] = str(_HUB)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def hf_cache() -> Path:
    """The temporary Hugging Face cache, filled with stand-ins."""
    from openriff.clap_bridge.testing import write_stub_hf_cache

    if not (_HUB / "models--roberta-base").exists():
        write_stub_hf_cache(_HUB)
    return _HUB


@pytest.fixture(scope="session")
def clap_checkpoint(hf_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny, no-fusion LAION-CLAP in LAION's checkpoint format."""
    from openriff.clap_bridge.testing import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt")
