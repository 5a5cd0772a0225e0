"""One validation layer per CLI: every numeric flag of the four CLIs has a range.

Walks every parser of ``openriff``, ``openriff-cae``, ``openriff-clap-bridge`` and
``openriff-metrics``: no flag may parse a bare ``int`` or ``float``, and each ranged flag
refuses values out of its range, NaN, infinities and non-integers in one line, before any
work, naming the flag and the range.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openriff.cae.cli import build_parser as cae_parser
from openriff.cae.cli import main as cae_main
from openriff.clap_bridge.cli import build_parser as bridge_parser
from openriff.clap_bridge.cli import main as bridge_main
from openriff.latent_diffusion.flags import COUNT, SHARE, Number
from openriff.metrics.cli import build_parser as metrics_parser
from openriff.metrics.cli import main as metrics_main
from openriff.pipeline.cli import build_parser, main

CLIS: dict[str, tuple[Callable[[], argparse.ArgumentParser], Callable[[list[str]], int]]] = {
    "openriff": (build_parser, main),
    "openriff-cae": (cae_parser, cae_main),
    "openriff-clap-bridge": (bridge_parser, bridge_main),
    "openriff-metrics": (metrics_parser, metrics_main),
}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command's path and parser."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def numeric_flags() -> Iterator[tuple[str, tuple[str, ...], str, Number]]:
    for cli, (parser, _) in CLIS.items():
        for path, command in commands(parser()):
            for action in command._actions:
                if isinstance(action.type, Number) and action.option_strings:
                    yield cli, path, action.option_strings[0], action.type


FLAGS = list(numeric_flags())


def bad_values(number: Number) -> list[str]:
    """Values the range refuses: past each bound, NaN and infinity, a fraction for an int."""
    values = ["nan", "inf", "-inf", "ten"]
    if number.low is not None:
        values.append(f"{number.low:g}" if number.open_low else f"{number.low - 1:g}")
    if number.high is not None:
        values.append(f"{number.high:g}" if number.open_high else f"{number.high + 1:g}")
    if number.kind is int:
        values.append("1.5")
    return values


def parses(number: Number, value: str) -> bool:
    try:
        number.kind(value)
    except ValueError:
        return False
    return True


def test_no_numeric_flag_is_parsed_without_a_range() -> None:
    bare = [
        f"{cli} {' '.join(path)} {action.option_strings or action.dest}"
        for cli, (parser, _) in CLIS.items()
        for path, command in commands(parser())
        for action in command._actions
        if action.type in (int, float)
    ]
    assert bare == []
    assert len(FLAGS) > 80  # the walk found them: every command's numbers


@pytest.mark.parametrize(
    ("cli", "path", "flag", "number"), FLAGS, ids=[f"{c} {' '.join(p)} {f}" for c, p, f, _ in FLAGS]
)
def test_a_numeric_flag_refuses_what_is_out_of_its_range(
    cli: str,
    path: tuple[str, ...],
    flag: str,
    number: Number,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for value in bad_values(number):
        capsys.readouterr()
        assert CLIS[cli][1]([*path, f"{flag}={value}"]) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        prog = " ".join((cli, *path))
        expected = f"must be {number.describe()}" if parses(number, value) else "expected a"
        assert lines[0].startswith(f"{prog}: error: argument {flag}: {expected}"), lines[0]
        assert lines[0].endswith(f"(see {prog} --help)")
    assert os.listdir(tmp_path) == []  # refused before anything was created


def test_numbers_parse_within_their_range() -> None:
    assert COUNT("3") == 3
    assert isinstance(COUNT("3"), int)
    assert SHARE("0") == 0.0
    assert SHARE("0.25") == 0.25
    assert Number(float, low=-60.0, high=0.0)("-14") == -14.0
    assert COUNT.describe() == "an integer >= 1"
    assert SHARE.describe() == "a finite number in [0, 1)"
    assert Number(float, low=0.0, open_low=True).describe() == "a finite number > 0"
    assert Number(float).describe() == "a finite number"
    for bad in ("0", "-1", "1e3x"):
        with pytest.raises(argparse.ArgumentTypeError):
            COUNT(bad)
    for bad in ("1", "nan", "-0.1"):
        with pytest.raises(argparse.ArgumentTypeError):
            SHARE(bad)
    assert not math.isnan(Number(float)("1e300"))


def test_other_usage_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in (
        (["generate"], "openriff generate: error: the following arguments are required: --out"),
        (["no-such-command"], "openriff: error: argument command: invalid choice"),
        (["generate", "--out", "x.wav", "--bits", "12"], "argument --bits: invalid choice"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        assert expected in err
