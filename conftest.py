"""Shared pytest configuration for every package's tests (run from the repository root).

Tests never pick a device themselves: they take the ``device`` fixture, which comes from
``--device`` (``cpu`` by default). The same suites therefore run on a GPU machine with
``pytest packages/*/tests --device cuda`` in any environment that already has torch.
Asking for CUDA where none is usable is a usage error, never a silent fall-back to CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import torch

# pytester: tests/test_device_option.py checks this file's behaviour in inner runs.
pytest_plugins = ("pytester",)

DEVICES = ("cpu", "cuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="store",
        default="cpu",
        choices=DEVICES,
        help="torch device that device-dependent tests run on (default: cpu)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"openriff test device: {config.getoption('--device')}"


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--device") != "cuda":
        return
    # Checked once at start-up so that a CUDA run without a GPU stops with one message
    # instead of failing test by test. torch is imported only when CUDA is asked for:
    # openriff-metrics runs its tests without torch installed.
    try:
        import torch
    except ImportError as error:
        raise pytest.UsageError(
            "--device cuda needs torch in this environment, but it cannot be imported"
        ) from error
    if not torch.cuda.is_available():
        raise pytest.UsageError(
            "--device cuda was given but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "run on a machine with an NVIDIA GPU, or use --device cpu"
        )


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The torch device chosen with ``--device``."""
    import torch

    return torch.device(pytestconfig.getoption("--device"))
