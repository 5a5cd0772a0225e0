"""Every command and flag of the four command-line tools says what it does."""

import argparse
import importlib

import pytest


def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    """``command flag`` for each action (and subcommand) without help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{path} {name}")
                missing += undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


TOOLS = [f"openriff.{name}.cli" for name in ("pipeline", "cae", "clap_bridge", "metrics")]


@pytest.mark.parametrize("module", TOOLS)
def test_every_flag_has_help(module: str) -> None:
    parser = importlib.import_module(module).build_parser()
    assert undocumented(parser, module) == []
    # The walk finds what it should: a flag without help is reported.
    parser.add_argument("--undocumented-probe")
    assert undocumented(parser, module) == [f"{module} --undocumented-probe"]
