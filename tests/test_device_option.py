"""The shared ``--device`` option and ``device`` fixture of the root conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

DEVICE_TEST = """
def test_device(device):
    print("DEVICE-TYPE", device.type)
    assert device.type == EXPECTED
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    return pytester


def test_default_device_is_cpu(inner: pytest.Pytester) -> None:
    inner.makepyfile(DEVICE_TEST.replace("EXPECTED", "'cpu'"))
    result = inner.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["openriff test device: cpu", "*DEVICE-TYPE cpu*"])


def test_cuda_device(inner: pytest.Pytester) -> None:
    inner.makepyfile(DEVICE_TEST.replace("EXPECTED", "'cuda'"))
    result = inner.runpytest("--device", "cuda")
    if torch.cuda.is_available():
        result.assert_outcomes(passed=1)
    else:
        # Asked for CUDA without one: a usage error with the reason, never a CPU fall-back.
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--device cuda was given but torch.cuda.is_available()*"])


def test_unknown_device_is_rejected(inner: pytest.Pytester) -> None:
    inner.makepyfile(DEVICE_TEST.replace("EXPECTED", "'cpu'"))
    result = inner.runpytest("--device", "tpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid choice: 'tpu'*"])
