"""Score two folders of ``.npy`` embeddings with the ``openriff-metrics`` console script.

Run by ``nox -s build`` with the interpreter of a clean venv holding only the
openriff-metrics wheel (numpy and scipy, no torch): the package alone is enough to score
embedding files. Standard library and numpy only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    """Write two embedding folders, score them, check the JSON; return an exit code."""
    script = Path(sys.executable).parent / "openriff-metrics"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        for name, shift in (("reference", 0.0), ("candidates", 0.5)):
            (root / name).mkdir()
            for i in range(4):
                np.save(root / name / f"{i}.npy", rng.standard_normal((25, 8)) + shift)
        out = root / "fad.json"
        command = [str(script), "fad", str(root / "reference"), str(root / "candidates")]
        subprocess.run([*command, "--json", str(out)], check=True)
        fad = json.loads(out.read_text())["result"]["fad"]
        if not 0.5 < fad < 6.0:  # about 8 * 0.5^2 = 2 plus sampling noise
            print(f"openriff-metrics fad gave {fad}, expected about 2", file=sys.stderr)
            return 1
    print(f"openriff-metrics CLI scored two .npy folders in a torch-free venv: FAD {fad:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
