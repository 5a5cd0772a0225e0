"""Repository contracts from ARCHITECTURE.md that every package's metadata must keep."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# ARCHITECTURE.md, "Packages and what depends on what": folder -> (dist, module, siblings).
ARCHITECTURE = {
    "cae": ("openriff-cae", "openriff.cae", set()),
    "latent-diffusion": ("openriff-latent-diffusion", "openriff.latent_diffusion", set()),
    "clap-bridge": (
        "openriff-clap-bridge",
        "openriff.clap_bridge",
        {"openriff-latent-diffusion"},
    ),
    "metrics": ("openriff-metrics", "openriff.metrics", set()),
    "pipeline": (
        "openriff-pipeline",
        "openriff.pipeline",
        {"openriff-cae", "openriff-latent-diffusion", "openriff-clap-bridge", "openriff-metrics"},
    ),
}
# The heavy extras the foundation issue declares.
EXTRAS = {
    "cae": {"music2latent"},
    "clap-bridge": {"clap"},
    "metrics": {"clap", "fadtk"},
    "pipeline": {"ui"},
}
FOLDERS = sorted(ARCHITECTURE)


def pyproject(folder: str) -> dict:
    return tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text())


def about_version(folder: str) -> Version:
    module = ARCHITECTURE[folder][1].split(".")[1]
    path = ROOT / "packages" / folder / "src" / "openriff" / module / "__about__.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            return Version(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no __version__ assignment")


def requirements(folder: str) -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    project = pyproject(folder)["project"]
    runtime = [Requirement(r) for r in project.get("dependencies", [])]
    extras = {
        name: [Requirement(r) for r in reqs]
        for name, reqs in project.get("optional-dependencies", {}).items()
    }
    return runtime, extras


def dist_to_folder() -> dict[str, str]:
    return {dist: folder for folder, (dist, _, _) in ARCHITECTURE.items()}


def test_package_folders_are_the_architecture_table() -> None:
    found = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
    assert found == FOLDERS


@pytest.mark.parametrize("folder", FOLDERS)
def test_layout_and_version_source(folder: str) -> None:
    dist, module, _ = ARCHITECTURE[folder]
    base = ROOT / "packages" / folder
    data = pyproject(folder)
    assert data["project"]["name"] == dist
    assert data["project"]["dynamic"] == ["version"]
    assert data["build-system"]["build-backend"] == "hatchling.build"
    module_dir = base / "src" / Path(*module.split("."))
    assert data["tool"]["hatch"]["version"]["path"] == str(
        (module_dir / "__about__.py").relative_to(base)
    )
    # PEP 420: no package owns openriff/__init__.py.
    assert not (base / "src" / "openriff" / "__init__.py").exists()
    for required in ("py.typed", "__init__.py", "__about__.py"):
        assert (module_dir / required).is_file(), required
    for required in ("README.md", "CHANGELOG.md", "LICENSE"):
        assert (base / required).is_file(), required
    assert (base / "tests").is_dir()


@pytest.mark.parametrize("folder", FOLDERS)
def test_changelog_has_the_current_version(folder: str) -> None:
    version = about_version(folder)
    changelog = (ROOT / "packages" / folder / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(str(version))}\]", changelog, re.MULTILINE), (
        f"CHANGELOG.md of {folder} has no '## [{version}]' section"
    )


@pytest.mark.parametrize("folder", FOLDERS)
def test_sibling_dependencies_follow_the_architecture(folder: str) -> None:
    runtime, _ = requirements(folder)
    siblings = {r.name for r in runtime if r.name.startswith("openriff-")}
    assert siblings == ARCHITECTURE[folder][2]


@pytest.mark.parametrize("folder", FOLDERS)
def test_sibling_ranges_are_compatible_and_admit_current_versions(folder: str) -> None:
    runtime, extras = requirements(folder)
    folders = dist_to_folder()
    for req in [*runtime, *(r for reqs in extras.values() for r in reqs)]:
        if not req.name.startswith("openriff-"):
            continue
        operators = {spec.operator for spec in req.specifier}
        assert not operators & {"==", "==="}, f"{req} is an exact pin"
        assert "<" in operators or "~=" in operators, f"{req} has no upper bound"
        current = about_version(folders[req.name])
        assert req.specifier.contains(current), f"{req} excludes {req.name} {current}"
        # A compatible range for 0.x stops at the next minor version.
        next_minor = Version(f"{current.major}.{current.minor + 1}.0")
        assert not req.specifier.contains(next_minor), f"{req} admits {next_minor}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_heavy_extras_are_declared(folder: str) -> None:
    _, extras = requirements(folder)
    assert EXTRAS.get(folder, set()) <= set(extras)


def test_metrics_core_needs_only_numpy_and_scipy() -> None:
    runtime, extras = requirements("metrics")
    assert {r.name for r in runtime} == {"numpy", "scipy"}
    assert {r.name for r in extras["clap"]} == {"openriff-clap-bridge"}


@pytest.mark.parametrize("folder", FOLDERS)
def test_metadata_keeps_wide_ranges(folder: str) -> None:
    runtime, extras = requirements(folder)
    for req in [*runtime, *(r for reqs in extras.values() for r in reqs)]:
        operators = {spec.operator for spec in req.specifier}
        assert "==" not in operators, f"{folder}: {req} pins exactly; pins go in constraints.txt"


def test_constraints_pin_the_gpu_image_torch_trio_and_numpy_1() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[req.name] = req.specifier
    assert pins["torch"] == SpecifierSet("==2.11.0")
    assert pins["torchaudio"] == SpecifierSet("==2.11.0")
    assert pins["torchvision"] == SpecifierSet("==0.26.0")
    assert not pins["numpy"].contains("2.0.0")
    assert pins["numpy"].contains("1.26.4")
    # Every package's torch range admits the pinned version.
    for folder in FOLDERS:
        runtime, _ = requirements(folder)
        for req in runtime:
            if req.name == "torch":
                assert req.specifier.contains("2.11.0"), f"{folder}: {req}"


def readme_setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line and line[0] != "#"]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_setup_commands()
    assert len(commands) == 2, commands
    demo, test = commands
    assert demo.startswith("python3 ")
    assert demo.endswith("nox -s demo")
    assert test.startswith("python3 ")
    # .ci/run runs the README's test command verbatim.
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_two_copies_of_the_safe_files_module_stay_the_same() -> None:
    """openriff-cae and openriff-latent-diffusion depend on no sibling, so each keeps a copy
    of ``files.py`` (atomic writes, umask, locks, weights-only reads); a fix to one must
    reach the other. Only the module docstring may differ."""
    src = ROOT / "packages"
    copies = [
        src / "cae" / "src" / "openriff" / "cae" / "files.py",
        src / "latent-diffusion" / "src" / "openriff" / "latent_diffusion" / "files.py",
    ]
    bodies = []
    for path in copies:
        tree = ast.parse(path.read_text())
        tree.body = tree.body[1:]  # the docstring
        bodies.append(ast.dump(tree))
    assert bodies[0] == bodies[1]


def test_the_three_copies_of_the_flags_module_are_identical() -> None:
    """Every numeric flag of the four CLIs is ranged by ``flags.Number``; openriff-cae and
    openriff-metrics depend on no sibling, so they keep copies of latent-diffusion's."""
    src = ROOT / "packages"
    copies = [
        src / "latent-diffusion" / "src" / "openriff" / "latent_diffusion" / "flags.py",
        src / "cae" / "src" / "openriff" / "cae" / "flags.py",
        src / "metrics" / "src" / "openriff" / "metrics" / "flags.py",
    ]
    texts = {path.read_text() for path in copies}
    assert len(texts) == 1


def _import_graph() -> dict[str, set[str]]:
    """Module -> the openriff modules it imports (at module level or inside functions)."""
    files = {}
    for path in ROOT.glob("packages/*/src/openriff/**/*.py"):
        parts = path.relative_to(path.parents[len(path.parts) - path.parts.index("src") - 2])
        name = ".".join(parts.with_suffix("").parts).removesuffix(".__init__")
        files[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in files else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_no_module_imports_its_caller() -> None:
    """No import cycle between the modules of any package, lazy imports included."""
    graph = _import_graph()
    assert "openriff.pipeline.cli" in graph
    assert "openriff.latent_diffusion.files" in graph["openriff.latent_diffusion.train"]
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_two_copies_of_the_training_runs_module_stay_the_same() -> None:
    """The trainers of openriff-cae and openriff-latent-diffusion share ``runs.py`` (DDP,
    EMA, checkpoint folders, run settings, the log) as two copies, for the same reason as
    ``files.py``; only the package each copy imports ``files`` from may differ."""
    src = ROOT / "packages"
    texts = [
        (src / "cae" / "src" / "openriff" / "cae" / "runs.py").read_text(),
        (src / "latent-diffusion" / "src" / "openriff" / "latent_diffusion" / "runs.py")
        .read_text()
        .replace("openriff.latent_diffusion.files", "openriff.cae.files"),
    ]
    assert texts[0] == texts[1]
    for package in ("cae", "latent_diffusion"):
        trainer = src / package.replace("_", "-") / "src" / "openriff" / package / "train.py"
        assert f"from openriff.{package}.runs import" in trainer.read_text()
        assert "def _update_ema" not in trainer.read_text()
