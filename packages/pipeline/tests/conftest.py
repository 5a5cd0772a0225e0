"""Test set-up of openriff-pipeline: an offline LAION-CLAP stand-in (see
openriff.clap_bridge.testing); the Hugging Face cache is pointed at a temporary folder
before anything imports huggingface_hub."""

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
def clap_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny LAION-CLAP, loadable offline."""
    from openriff.clap_bridge.testing import write_random_checkpoint, write_stub_hf_cache

    if not (_HUB / "models--roberta-base").exists():
        write_stub_hf_cache(_HUB)
    return write_random_checkpoint(tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt")
