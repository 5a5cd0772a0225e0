"""Add up pytest's JUnit XML reports and print one closing line: 'N passed, N failed'.

Used by ``nox -s report`` and ``.ci/run``. Exits non-zero when a test failed or errored,
or when no test ran at all (a run that collects nothing must not pass). Standard library
only.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Counts:
    """Test outcomes of one report or of all of them."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        """Accumulate ``other`` into this one."""
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped


def read_report(path: Path) -> Counts:
    """Counts of one JUnit XML file (a ``testsuites`` or a single ``testsuite`` root)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = Counts()
    for suite in suites:
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        counts.add(Counts(passed=tests - failed - skipped, failed=failed, skipped=skipped))
    return counts


def main() -> int:
    """Print per-report lines and the closing line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path, help="folder of JUnit XML files")
    parser.add_argument(
        "--since", type=float, default=0.0, help="ignore reports older than this Unix time"
    )
    args = parser.parse_args()

    total = Counts()
    paths = sorted(args.reports.glob("*.xml")) if args.reports.is_dir() else []
    for path in paths:
        if path.stat().st_mtime < args.since:
            continue
        counts = read_report(path)
        total.add(counts)
        print(f"{path.stem}: {counts.passed} passed, {counts.failed} failed, ", end="")
        print(f"{counts.skipped} skipped")
    if total.passed + total.failed == 0:
        print(f"no test ran (no fresh JUnit reports with executed tests in {args.reports})")
    print(f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    return 0 if total.failed == 0 and total.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
