"""Progress of a stage: the caller's report after every step, a bar that always closes."""

import pytest

from openriff.pipeline.generation import progress
from openriff.pipeline.generation.progress import Progress


class Bar:
    """A stand-in for tqdm that remembers its updates and whether it was closed."""

    def __init__(self, total: int, unit: str) -> None:
        self.total, self.unit, self.updates, self.closed = total, unit, 0, False

    def update(self, n: int) -> None:
        self.updates += n

    def close(self) -> None:
        self.closed = True


def fake_bars(monkeypatch: pytest.MonkeyPatch) -> list[Bar]:
    bars: list[Bar] = []

    def make(total: int, unit: str) -> Bar:
        bars.append(Bar(total, unit))
        return bars[-1]

    monkeypatch.setattr(progress, "progress_bar", make)
    return bars


def test_steps_reach_the_report_and_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    bars = fake_bars(monkeypatch)
    seen: list[tuple[str, int, int]] = []
    with Progress("sampling", "step", True, lambda *a: seen.append(a)) as steps:
        for _ in range(3):
            steps.step(3)
    assert seen == [("sampling", 1, 3), ("sampling", 2, 3), ("sampling", 3, 3)]
    assert [(b.total, b.unit, b.updates, b.closed) for b in bars] == [(3, "step", 3, True)]
    # One step shows no bar; none is shown unless asked; the report alone still runs.
    with Progress("decoding", "block", True, None) as blocks:
        blocks.advance(1, 1)
    with Progress("decoding", "block", False, lambda *a: seen.append(a)) as blocks:
        blocks.advance(1, 2)
    assert len(bars) == 1
    assert seen[-1] == ("decoding", 1, 2)


def test_an_error_in_a_step_closes_the_bar_and_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    bars = fake_bars(monkeypatch)

    def cancel(stage: str, done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt("cancelled")

    steps = Progress("sampling", "step", True, cancel)

    def run() -> None:
        with steps:
            for _ in range(5):
                steps.step(5)

    with pytest.raises(KeyboardInterrupt, match="cancelled"):
        run()
    assert steps.done == 2
    assert bars[0].closed
    assert bars[0].updates == 2
