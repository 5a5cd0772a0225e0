"""Installed packages import cleanly, report their version, and keep heavy imports lazy."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys

import pytest

PACKAGES = {
    "openriff-cae": "openriff.cae",
    "openriff-latent-diffusion": "openriff.latent_diffusion",
    "openriff-clap-bridge": "openriff.clap_bridge",
    "openriff-metrics": "openriff.metrics",
    "openriff-pipeline": "openriff.pipeline",
}
# Optional dependencies that must be imported only inside the functions that need them.
HEAVY = ["laion_clap", "fadtk", "music2latent", "gradio", "transformers"]

PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
heavy = json.loads(sys.argv[2])
print(json.dumps({
    "version": module.__version__,
    "loaded": [name for name in heavy + ["torch"] if name in sys.modules],
}))
"""


def probe(module: str) -> dict:
    # A fresh interpreter: this test process has imported other things already.
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(("dist", "module"), sorted(PACKAGES.items()))
def test_import_reports_installed_version_without_heavy_imports(dist: str, module: str) -> None:
    result = probe(module)
    assert result["version"] == metadata.version(dist)
    assert not set(result["loaded"]) & set(HEAVY), result["loaded"]


def test_metrics_does_not_import_torch() -> None:
    assert "torch" not in probe("openriff.metrics")["loaded"]


def test_namespace_spans_all_packages() -> None:
    import openriff

    # PEP 420 namespace: no __init__.py, one path entry per installed package source.
    assert getattr(openriff, "__file__", None) is None
    assert len(list(openriff.__path__)) >= len(PACKAGES)
