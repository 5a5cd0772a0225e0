"""Command-line validation: every numeric flag has a range, checked as it is parsed.

A flag declares its range with its type (``type=Number(int, low=1)``), so argparse
refuses an out-of-range, non-finite or non-numeric value before any work, naming the
flag and the range; :class:`Parser` prints that refusal as one line and exits 2 (not
argparse's usage block). The same module is kept in openriff-cae and openriff-metrics
(``openriff.cae.flags``, ``openriff.metrics.flags``), which depend on no sibling package;
a test keeps the three copies identical.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Number:
    """An argparse ``type``: a finite ``int`` or ``float`` within a range.

    Attributes:
        kind: ``int`` or ``float``.
        low: the least value allowed (None: no bound).
        high: the greatest value allowed (None: no bound).
        open_low: ``low`` itself is refused (``> low`` instead of ``>= low``).
        open_high: ``high`` itself is refused.
    """

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __call__(self, text: str) -> int | float:
        """``text`` as a number within the range; ``ArgumentTypeError`` naming the range."""
        try:
            value = self.kind(text)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or not self.allows(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value

    def allows(self, value: float) -> bool:
        """Whether ``value`` is within the range (finite or not)."""
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def describe(self) -> str:
        """The range in words: ``"an integer >= 1"``, ``"a number in [0, 1)"``, ..."""
        what = "an integer" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{what} {'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<' if self.open_high else '<='} {self.high:g}"
        return what


# The ranges most flags have.
COUNT = Number(int, low=1)  # steps, batch sizes, songs, ...: at least one
SIZE = Number(int, low=0)  # counts where 0 means "none" or "all"
SEED = Number(int, low=0, high=2**63 - 1)  # what torch.manual_seed and NumPy both take
POSITIVE = Number(float, low=0.0, open_low=True)  # seconds, learning rates, ...
NON_NEGATIVE = Number(float, low=0.0)
SHARE = Number(float, low=0.0, high=1.0, open_high=True)  # a share held out
UNIT = Number(float, low=0.0, high=1.0)  # a strength, a probability
REAL = Number(float)  # any finite number


class UsageError(ValueError):
    """A command line argparse refused: the message is the one line to print."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` (and its subcommands') that refuses in one line.

    argparse prints the usage block and exits on a bad command line; this raises
    :class:`UsageError` with ``"<prog>: error: <problem> (see <prog> --help)"``, so the
    command's ``main`` prints one line and returns 2 like any other refusal.
    """

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` instead of printing the usage and exiting."""
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")
