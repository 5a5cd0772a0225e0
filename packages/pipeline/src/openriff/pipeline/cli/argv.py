"""The command a sidecar records: path arguments made absolute, so it runs from anywhere.

A sidecar's ``command`` is re-run by ``openriff rerun`` from whatever folder the user is
in; a relative ``--context song.wav`` would then name another file, or none. The option
values that are paths (an action whose ``type`` is in :data:`PATH_TYPES`) are recorded
absolute; everything else is kept as typed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path


def reference_part(text: str) -> tuple[str, Path]:
    """``openriff song --reference FILE``: a part given by a recording."""
    return ("reference", Path(text))


PATH_TYPES: tuple[Callable[[str], object], ...] = (Path, reference_part)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its actions private; stable since 3.2
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def absolute_paths(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every path option absolute (``--opt=value`` too).

    Args:
        parser: the parser ``argv`` was parsed with (subcommands are followed).
        argv: the arguments, without the program name.
    """
    out: list[str] = []
    current, i = parser, 0
    while i < len(argv):
        token = argv[i]
        i += 1
        commands = _subcommands(current)
        if token in commands:
            out.append(token)
            current = commands[token]
            continue
        flag, equals, value = token.partition("=")
        action = current._option_string_actions.get(flag) if flag.startswith("-") else None
        is_path = action is not None and action.nargs != 0 and action.type in PATH_TYPES
        if is_path and equals:
            out.append(f"{flag}={Path(value).absolute()}")
        elif is_path and i < len(argv):
            out += [token, str(Path(argv[i]).absolute())]
            i += 1
        else:
            out.append(token)
    return out
