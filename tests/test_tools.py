"""The repository's own tooling: the noxfile's package logic and the JUnit gate of CI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(path: Path) -> ModuleType:
    name = f"openriff_repo_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def noxfile() -> ModuleType:
    return load(ROOT / "noxfile.py")


def test_noxfile_discovers_every_package(noxfile: ModuleType) -> None:
    found = {dist: (p.folder, p.module) for dist, p in noxfile.PACKAGES.items()}
    assert found == {
        "openriff-cae": ("cae", "openriff.cae"),
        "openriff-clap-bridge": ("clap-bridge", "openriff.clap_bridge"),
        "openriff-latent-diffusion": ("latent-diffusion", "openriff.latent_diffusion"),
        "openriff-metrics": ("metrics", "openriff.metrics"),
        "openriff-pipeline": ("pipeline", "openriff.pipeline"),
    }


def test_closure_follows_extras_to_siblings(noxfile: ModuleType) -> None:
    empty = frozenset()
    assert noxfile.closure({"openriff-metrics": empty}) == {"openriff-metrics": empty}
    assert noxfile.closure({"openriff-metrics": frozenset({"clap"})}) == {
        "openriff-metrics": frozenset({"clap"}),
        "openriff-clap-bridge": frozenset({"clap"}),
        "openriff-latent-diffusion": empty,
    }
    assert set(noxfile.closure({"openriff-pipeline": empty})) == set(noxfile.PACKAGES)


def test_only_metrics_installs_without_torch(noxfile: ModuleType) -> None:
    needs = {dist: noxfile._needs_torch(dist) for dist in noxfile.PACKAGES}
    assert needs == {dist: dist != "openriff-metrics" for dist in noxfile.PACKAGES}


def test_test_matrix_is_package_by_device(noxfile: ModuleType) -> None:
    assert noxfile.DEVICES == ("cpu", "cuda")
    assert sorted(noxfile.BY_FOLDER) == sorted(p.folder for p in noxfile.PACKAGES.values())


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="{errors}" failures="{failures}"
 skipped="{skipped}" tests="{tests}" time="0.1"></testsuite></testsuites>
"""


def run_summary(reports: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "junit_summary.py"), str(reports)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_junit_summary_adds_up_reports(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(JUNIT.format(tests=5, failures=0, errors=0, skipped=1))
    (tmp_path / "b.xml").write_text(JUNIT.format(tests=3, failures=0, errors=0, skipped=0))
    result = run_summary(tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "7 passed, 0 failed, 1 skipped"


def test_junit_summary_fails_on_failures_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(JUNIT.format(tests=4, failures=1, errors=1, skipped=0))
    result = run_summary(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "2 passed, 2 failed, 0 skipped"


@pytest.mark.parametrize("content", [None, JUNIT.format(tests=2, failures=0, errors=0, skipped=2)])
def test_junit_summary_fails_when_no_test_ran(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "a.xml").write_text(content)
    result = run_summary(tmp_path)
    assert result.returncode == 1
    assert "no test ran" in result.stdout
