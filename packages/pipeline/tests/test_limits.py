"""Generation's memory limits: derived from the machine's memory, refused with numbers."""

from __future__ import annotations

import math

import pytest

from openriff.pipeline import limits


def test_limits_follow_the_machine_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "memory_bytes", lambda: 8 * 2**30)
    # 75% of 8 GiB = 6 GiB, less 1.5 GiB, at 4 MiB per second and stem.
    assert limits.max_seconds(1) == pytest.approx(4.5 * 1024 / 4)
    assert limits.max_seconds(4) == pytest.approx(4.5 * 1024 / 4 / 4)
    limits.check_request(1100 * 48_000, 1)  # 18 minutes: fits
    with pytest.raises(ValueError, match=r"4 x 300 s of audio would need about 6\.19 GiB"):
        limits.check_request(300 * 48_000, 4, "loop")
    monkeypatch.setattr(limits, "memory_bytes", lambda: 1 * 2**30)  # less than the base
    assert limits.max_seconds(1) == 0.0
    with pytest.raises(ValueError, match="allows 0 s"):
        limits.check_request(48_000, 1)


@pytest.mark.parametrize("seconds", [math.inf, math.nan, 0.0, -3.0])
def test_lengths_must_be_finite_and_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds > 0"):
        limits.seconds_to_samples(seconds, "duration")


def test_a_length_becomes_samples() -> None:
    assert limits.seconds_to_samples(1.5, "duration") == 72_000
    with pytest.raises(ValueError, match="at least one stem"):
        limits.check_request(48_000, 0)
