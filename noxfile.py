"""Nox sessions of the OpenRiff monorepo.

``nox`` with no arguments runs the whole check that CI runs: lint, typecheck, the test
matrix (package x device), build, integration and a final report that fails the run when
no test ran at all. ``nox -l`` lists every session; ``nox -s demo`` runs the README's main
job. Packages are discovered from ``packages/*/pyproject.toml``; nothing here names them.

Every environment is made by uv and pinned by ``constraints.txt``. Sibling packages are
always installed from this checkout, never from an index.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nox
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # nox depends on tomli for Python 3.10
    import tomli as tomllib

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "tests", "build", "integration", "report"]

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = ROOT / "constraints.txt"
REPORTS = ROOT / ".nox" / "reports"
DIST = ROOT / "dist"
DEVICES = ("cpu", "cuda")
# Test results older than this nox invocation are ignored by the report session.
RUN_STARTED = time.time()


@dataclass(frozen=True)
class Package:
    """One distribution of the monorepo, as read from its pyproject.toml."""

    folder: str  # "latent-diffusion"
    dist: str  # "openriff-latent-diffusion"
    module: str  # "openriff.latent_diffusion"
    path: Path
    requirements: tuple[Requirement, ...]
    extras: dict[str, tuple[Requirement, ...]]

    def siblings(self, extras: frozenset[str] = frozenset()) -> dict[str, frozenset[str]]:
        """Sibling dists required by this package (with the given extras) -> their extras."""
        reqs = list(self.requirements)
        for extra in sorted(extras):
            reqs.extend(self.extras[extra])
        return {r.name: frozenset(r.extras) for r in reqs if r.name.startswith("openriff-")}

    def test_files(self) -> list[Path]:
        tests = self.path / "tests"
        return sorted([*tests.rglob("test_*.py"), *tests.rglob("*_test.py")])


def discover_packages() -> dict[str, Package]:
    packages: dict[str, Package] = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        project = data["project"]
        # The version file path names the import package: src/openriff/<module>/__about__.py
        about = Path(data["tool"]["hatch"]["version"]["path"])
        module = ".".join(about.parent.parts[1:])
        optional = project.get("optional-dependencies", {})
        package = Package(
            folder=pyproject.parent.name,
            dist=project["name"],
            module=module,
            path=pyproject.parent,
            requirements=tuple(Requirement(r) for r in project.get("dependencies", [])),
            extras={k: tuple(Requirement(r) for r in v) for k, v in optional.items()},
        )
        packages[package.dist] = package
    return packages


PACKAGES = discover_packages()
BY_FOLDER = {p.folder: p for p in PACKAGES.values()}


def closure(wanted: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Every sibling needed to install ``wanted`` (dist -> extras), with merged extras."""
    todo = dict(wanted)
    done: dict[str, frozenset[str]] = {}
    while todo:
        dist, extras = todo.popitem()
        if dist not in PACKAGES:
            raise ValueError(f"{dist} is required but is not a package of this repository")
        merged = done.get(dist, frozenset()) | extras
        if dist in done and merged == done[dist]:
            continue
        done[dist] = merged
        for sibling, sib_extras in PACKAGES[dist].siblings(merged).items():
            todo[sibling] = todo.get(sibling, frozenset()) | sib_extras
    return done


def install_local(
    session: nox.Session, wanted: dict[str, frozenset[str]], *, test_deps: bool = True
) -> None:
    """Install packages of this checkout (editable) with their siblings and test groups."""
    args: list[str] = ["-c", str(CONSTRAINTS)]
    for dist, extras in sorted(closure(wanted).items()):
        suffix = f"[{','.join(sorted(extras))}]" if extras else ""
        args += ["-e", f"{PACKAGES[dist].path}{suffix}"]
        if test_deps:
            args += ["--group", f"{PACKAGES[dist].path / 'pyproject.toml'}:test"]
    session.install(*args)


def all_extras(package: Package) -> frozenset[str]:
    return frozenset(package.extras)


def visible_gpus() -> list[str]:
    """NVIDIA GPUs that ``nvidia-smi -L`` lists (no torch needed in nox's environment)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")]


def pytest_args(report_name: str, *paths: Path | str) -> list[str]:
    REPORTS.mkdir(parents=True, exist_ok=True)
    return ["pytest", *map(str, paths), f"--junitxml={REPORTS / (report_name + '.xml')}"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Strict mypy on each package's sources, one package at a time."""
    install_local(session, {dist: frozenset() for dist in PACKAGES}, test_deps=False)
    session.install("mypy>=1.11")
    for package in PACKAGES.values():
        session.log(f"mypy {package.dist} ({package.module})")
        session.run("mypy", "-p", package.module)


@nox.session
@nox.parametrize("device", DEVICES, ids=list(DEVICES))
@nox.parametrize("package", [p.folder for p in PACKAGES.values()], ids=list(BY_FOLDER))
def tests(session: nox.Session, package: str, device: str) -> None:
    """One package's test suite on one device, in an environment of its own."""
    pkg = BY_FOLDER[package]
    if device == "cuda":
        gpus = visible_gpus()
        if not gpus:
            session.skip(
                f"cuda leg of {pkg.dist}: no NVIDIA GPU visible (nvidia-smi lists none). "
                "On a GPU machine run `nox -s 'tests(" + package + ", cuda)'`, or in an "
                "existing environment see CONTRIBUTING.md, 'Tests on a GPU'"
            )
        session.log(f"GPUs: {'; '.join(gpus)}")
    if not pkg.test_files():
        session.skip(f"{pkg.dist}: tests not written yet (no test_*.py in {pkg.path}/tests)")
    install_local(session, {pkg.dist: all_extras(pkg)})
    session.run(
        *pytest_args(f"tests-{package}-{device}", pkg.path / "tests"),
        f"--device={device}",
        *session.posargs,
    )


@nox.session
def integration(session: nox.Session) -> None:
    """All packages together, with every extra: repository-level and cross-package tests."""
    install_local(session, {dist: all_extras(p) for dist, p in PACKAGES.items()})
    session.install("-c", str(CONSTRAINTS), "--group", f"{ROOT / 'pyproject.toml'}:test")
    session.run(*pytest_args("integration", ROOT / "tests"), *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Hatch-build every package, then install each wheel alone in a clean venv and import it."""
    session.install("hatch>=1.16", "uv")
    shutil.rmtree(DIST, ignore_errors=True)
    tmp = Path(session.create_tmp())
    # nox's UV_PYTHON would make hatch install hatchling into this session's venv instead
    # of hatch's own build environment; a session-local data dir keeps hatch's build
    # environments out of the user's home and fresh for every run.
    hatch_env = {"UV_PYTHON": None, "HATCH_DATA_DIR": str(tmp / "hatch-data")}
    shutil.rmtree(tmp / "hatch-data", ignore_errors=True)
    for package in PACKAGES.values():
        session.chdir(package.path)
        session.run(
            "hatch", "build", "--target", "wheel", "--target", "sdist", str(DIST), env=hatch_env
        )
    session.chdir(ROOT)
    wheels = {}
    for dist in PACKAGES:
        wheels[dist] = _single(sorted(DIST.glob(f"{dist.replace('-', '_')}-*.whl")), dist)
    python = Path(session.bin) / "python"
    venvs = tmp / "clean"
    shutil.rmtree(venvs, ignore_errors=True)
    for dist, package in PACKAGES.items():
        venv = venvs / package.folder
        session.run("uv", "venv", "--quiet", "--python", str(python), str(venv))
        venv_python = venv / "bin" / "python"
        # The wheel and the wheels of the siblings it requires; nothing else from here.
        needed = [str(wheels[d]) for d in sorted(closure({dist: frozenset()}))]
        session.run(
            "uv", "pip", "install", "--quiet", "--python", str(venv_python),
            "-c", str(CONSTRAINTS), *needed,
        )  # fmt: skip
        forbid = ["--forbid", "torch"] if not _needs_torch(dist) else []
        session.run(
            str(venv_python), str(ROOT / "tools" / "check_wheel.py"),
            dist, package.module, *forbid,
            external=True,
        )  # fmt: skip
        if dist == "openriff-metrics":
            # Its promise: the package alone scores embedding files, without torch.
            session.run(
                str(venv_python), str(ROOT / "tools" / "smoke_metrics_cli.py"), external=True
            )


def _needs_torch(dist: str) -> bool:
    """Whether the bare install of ``dist`` (no extras) is expected to pull torch."""
    for name in closure({dist: frozenset()}):
        if any(r.name == "torch" for r in PACKAGES[name].requirements):
            return True
    return False


def _single(found: list[Path], what: str) -> Path:
    if len(found) != 1:
        raise RuntimeError(f"expected one built wheel of {what}, found {found}")
    return found[0]


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main job: the shipped default model accompanies a held-out synthetic song."""
    install_local(session, {dist: frozenset() for dist in PACKAGES}, test_deps=False)
    out = session.posargs[0] if session.posargs else str(ROOT / "demo-output")
    session.run("python", str(ROOT / "tools" / "demo.py"), "--out", out)


@nox.session
def ui(session: nox.Session) -> None:
    """The web UI with the shipped model (``nox -s ui -- --port 7860``): openriff ui."""
    pipeline = PACKAGES["openriff-pipeline"]
    install_local(session, {pipeline.dist: frozenset({"ui"})}, test_deps=False)
    session.run("openriff", "ui", *session.posargs)


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """Totals of the test results written by this nox run; fails if no test ran."""
    session.run(
        sys.executable,
        str(ROOT / "tools" / "junit_summary.py"),
        str(REPORTS),
        "--since",
        json.dumps(RUN_STARTED),
    )
