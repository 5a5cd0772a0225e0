"""The README's main job (``nox -s demo``), on the most complete real path that exists.

The job renders a synthetic context, generates an accompaniment for it with the default
model that ships with OpenRiff, and writes ``context.wav``, ``stem.wav``, ``mix.wav`` and a
spectrogram PNG (``openriff demo``). Without a default model it renders the context and
says plainly what is missing; it never pretends.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import json
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
    except FileNotFoundError as missing:
        bundle = None
        reason = str(missing)
    if bundle is not None:
        print(f"Accompanying a held-out synthetic song with the default model ({bundle}):")
        return openriff(["demo", "--out", str(args.out), "--overwrite", "--quiet"])

    # No default model yet: render the context the finished demo accompanies, and say so.
    from openriff.pipeline.audio_io import audio_writer, write_together
    from openriff.pipeline.cli_generate import demo_context

    context, song = demo_context(1_000_000, 8)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "stage": "no default model",
        "packages": packages,
        "generated": ["context.wav"],
        "song": {"seed": song.seed, "tempo": song.tempo, "bars": song.bars, "removed": "bass"},
        "missing": [f"a trained default model bundle: {reason}"],
    }
    report = args.out / "demo.json"
    text = json.dumps(summary, indent=2) + "\n"
    write_together({
        args.out / "context.wav": audio_writer(context, 48_000, "24"),
        report: lambda tmp: Path(tmp).write_text(text),
    })  # fmt: skip
    print(f"  rendered {args.out / 'context.wav'}: synthetic song {song.seed} without its bass")
    print("What could not run yet: generating the accompaniment needs")
    for item in summary["missing"]:
        print(f"  - {item}")
    print(
        "With a bundle (`openriff demo --bundle DIR --out DIR`, or once the default model "
        "ships, this same command) it writes stem.wav, mix.wav and a spectrogram PNG to "
        f"{args.out}."
    )
    print(f"Wrote {report}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
