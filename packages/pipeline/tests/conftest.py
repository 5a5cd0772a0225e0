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


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, clap_checkpoint: Path) -> Path:
    """A tiny bundle: random codec, random denoiser, bridge prior, random CLAP."""
    from helpers import prepare_args, random_codec, randomize_zero_weights, synth_songs

    from openriff.pipeline.cli import main

    root = tmp_path_factory.mktemp("bundle")
    songs, prepared = synth_songs(root / "songs", 2), root / "prepared"
    clap = ["--clap", str(clap_checkpoint), "--amodel", "HTSAT-tiny"]
    codec = random_codec(root / "codec")
    assert main(prepare_args(songs, prepared, *clap, codec=codec)) == 0
    ldm = ["train", "ldm", "--data", str(prepared), "--out", str(root / "ldm"), "--steps", "2"]
    assert main([*ldm, "--batch-size", "2", "--quiet"]) == 0
    bridge = ["train", "bridge", "--data", str(prepared), "--out", str(root / "bridge"), *clap]
    more = ["--preset", "tiny", "--steps", "2", "--batch-size", "4", "--quiet"]
    assert main([*bridge, *more, "--bundle", str(root / "ldm" / "bundle")]) == 0
    randomize_zero_weights(root / "ldm" / "bundle" / "denoiser")
    return root / "ldm" / "bundle"
