"""Check one OpenRiff wheel installed alone in a clean virtual environment.

Run by ``nox -s build`` with the clean environment's interpreter; standard library only.
Checks that the distribution imports, that its version and the module's ``__version__``
agree, that it ships ``py.typed`` and leaves the ``openriff`` namespace without an
``__init__.py``, that no optional heavy dependency is imported at import time, and that
forbidden distributions (``--forbid torch`` for openriff-metrics) are not installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import sys
import time

# Optional dependencies that must only be imported inside the functions that need them.
HEAVY_MODULES = ("laion_clap", "fadtk", "music2latent", "gradio", "transformers")


def main() -> int:
    """Run the checks; print one summary line; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", help="distribution name, e.g. openriff-metrics")
    parser.add_argument("module", help="import name, e.g. openriff.metrics")
    parser.add_argument(
        "--forbid", action="append", default=[], help="distribution that must not be installed"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    module = importlib.import_module(args.module)
    seconds = time.perf_counter() - start

    problems: list[str] = []
    version = metadata.version(args.dist)
    if getattr(module, "__version__", None) != version:
        found = getattr(module, "__version__", None)
        problems.append(f"{args.module}.__version__ is {found!r}, metadata says {version!r}")
    files = {str(f) for f in metadata.files(args.dist) or []}
    typed = args.module.replace(".", "/") + "/py.typed"
    if typed not in files:
        problems.append(f"{typed} is not in the wheel")
    if "openriff/__init__.py" in files:
        problems.append("the wheel ships openriff/__init__.py; openriff must stay a namespace")
    heavy = [m for m in HEAVY_MODULES if m in sys.modules]
    if heavy:
        problems.append(f"importing {args.module} imported {', '.join(heavy)}")
    installed = sorted({d.metadata["Name"].lower() for d in metadata.distributions()})
    for name in args.forbid:
        if name.lower() in installed:
            problems.append(f"{name} is installed, but {args.dist} alone must not pull it")
        if name in sys.modules:
            problems.append(f"importing {args.module} imported {name}")

    if problems:
        for problem in problems:
            print(f"{args.dist} {version}: FAILED: {problem}", file=sys.stderr)
        return 1
    ours = [d for d in installed if d.startswith("openriff-")]
    forbidden = f"; not installed: {', '.join(args.forbid)}" if args.forbid else ""
    print(
        f"{args.dist} {version}: installed alone in a clean venv "
        f"({len(installed)} distributions, ours: {', '.join(ours)}){forbidden}; "
        f"import {args.module} ok in {seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
