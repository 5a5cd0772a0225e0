"""Test set-up of openriff-metrics: an offline LAION-CLAP stand-in (see
openriff.clap_bridge.testing); the Hugging Face cache points at a temporary folder before
anything imports huggingface_hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from openriff.clap_bridge.testing import offline_hf_cache, random_clap_checkpoint

_HUB = offline_hf_cache()


@pytest.fixture(scope="session")
def clap_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random HTSAT-tiny LAION-CLAP, loadable offline."""
    return random_clap_checkpoint(_HUB, tmp_path_factory.mktemp("clap") / "random-htsat-tiny.pt")
