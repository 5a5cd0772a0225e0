"""Progress of a generation's stages: a tqdm bar on stderr and the caller's callback."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

Report = Callable[[str, int, int], None]
"""``report(stage, done, total)``: how far a stage (``"sampling"``, ``"decoding"``) is."""


def progress_bar(total: int, unit: str = "step") -> Any:
    """A tqdm bar on stderr that disappears when done."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, leave=False)


class Progress:
    """Counts one stage's steps onto a bar (if shown, for more than one step) and a report.

    A context manager: the bar closes on leaving, also on an error.

    Args:
        stage: the stage's name for ``report``.
        unit: of the bar.
        show: show a bar.
        report: called after each step, or None.
    """

    def __init__(self, stage: str, unit: str, show: bool, report: Report | None) -> None:
        self.stage, self.unit, self.show, self.report = stage, unit, show, report
        self.bar: Any = None
        self.done = 0

    def step(self, total: int) -> None:
        """One more of ``total`` steps is done."""
        self.advance(self.done + 1, total)

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps are done (one more than before)."""
        self.done = done
        if self.bar is None and self.show and total > 1:
            self.bar = progress_bar(total, self.unit)
        if self.bar is not None:
            self.bar.update(1)
        if self.report is not None:
            self.report(self.stage, done, total)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()
