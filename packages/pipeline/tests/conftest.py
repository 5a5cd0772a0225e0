"""Test set-up of openriff-pipeline: an offline LAION-CLAP stand-in (see
openriff.clap_bridge.testing); the Hugging Face cache points at a temporary folder before
anything imports huggingface_hub."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openriff.clap_bridge.testing import offline_hf_cache, random_clap_checkpoint

_HUB = offline_hf_cache()
# pytest runs in importlib mode, which does not put test folders on sys.path: helpers.py.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def clap_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny LAION-CLAP, loadable offline."""
    return random_clap_checkpoint(_HUB, tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt")
