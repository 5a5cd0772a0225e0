"""The README's main job (``nox -s demo``): an accompaniment by the shipped default model.

The job renders a held-out synthetic song without its bass, generates a bass line for it
with the default model that ships with OpenRiff, and writes ``context.wav``, ``stem.wav``,
``mix.wav``, a spectrogram PNG and ``demo.json`` (``openriff demo``). Without a default
model (a broken install, or ``OPENRIFF_BUNDLE`` naming a missing folder) it says what is
missing and fails.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import sys
from pathlib import Path


def installed_packages() -> dict[str, str]:
    """OpenRiff distributions in this environment -> version."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name.startswith("openriff-"):
            found[name] = dist.version
    return dict(sorted(found.items()))


def main() -> int:
    """Run the demo; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the demo's outputs")
    args = parser.parse_args()

    packages = installed_packages()
    if not packages:
        print("no openriff-* distribution is installed in this environment", file=sys.stderr)
        return 1
    print("OpenRiff demo")
    print("What ran:")
    for dist, version in packages.items():
        module = "openriff." + dist.removeprefix("openriff-").replace("-", "_")
        imported = importlib.import_module(module)
        print(f"  installed and imported {dist} {version} ({module}, {imported.__version__})")

    from openriff.pipeline.bundle import default_bundle
    from openriff.pipeline.cli import main as openriff

    try:
        bundle = default_bundle()
    except FileNotFoundError as missing:  # a broken install or a wrong OPENRIFF_BUNDLE
        print(f"cannot run the demo: {missing}", file=sys.stderr)
        return 1
    print(f"Accompanying a held-out synthetic song with the default model ({bundle}):")
    return openriff(["demo", "--out", str(args.out), "--overwrite", "--quiet"])


if __name__ == "__main__":
    sys.exit(main())
