"""The wheel carries every mapped subpackage, module and data file, and nothing outside `callqa/`.

pyproject maps top-level folders under `callqa.` (pipeline/ -> callqa.pipeline, ...), so a subpackage
or data file is shipped only if [tool.setuptools] lists it; the editable install used in development
finds files the wheel would leave out. The expected contents are derived by walking the mapped source
folders, so a new subpackage or data file that pyproject does not name fails here.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]
# never shipped: caches and editor/OS litter that a working tree may hold
SKIP_NAMES = {"__pycache__", ".DS_Store"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".swp", ".orig", ".rej"}


def _source_files() -> list[Path]:
    """The files to build from: git's view when this is a work tree (no untracked-but-ignored output),
    else everything outside the usual build, cache and environment folders."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        files = [ROOT / f for f in out.decode().split("\0") if f]
        return [f for f in files if f.is_file()]  # --cached still lists files deleted from the tree
    except (OSError, subprocess.CalledProcessError):
        # an old *.egg-info/SOURCES.txt would ship data files that pyproject no longer names
        ignore = {".git", ".venv", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
        return [
            f
            for f in ROOT.rglob("*")
            if f.is_file()
            and not ignore & set(parts := f.relative_to(ROOT).parts)
            and not any(p.endswith(".egg-info") for p in parts)
        ]


def _shipped(path: Path) -> bool:
    return not SKIP_NAMES & set(path.parts) and path.suffix not in SKIP_SUFFIXES and not path.name.startswith(".")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    version = importlib.metadata.version("setuptools")
    if int(version.split(".")[0]) < 69:
        pytest.fail(f"setuptools {version} is older than [build-system] asks; run pip install -e '.[test]'")
    # A copy, so a stale build/lib in the work tree cannot leak into the wheel and the build writes
    # nothing into the tree that others are editing; the venv's setuptools builds it, offline.
    src = tmp_path_factory.mktemp("src")
    for f in _source_files():
        dest = src / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        timeout=300,
    )
    (whl,) = out.glob("callqa-*.whl")
    with zipfile.ZipFile(whl) as z:
        yield z


def _module_path(package: str) -> str:
    return package.replace(".", "/")


def _expected() -> tuple[set[str], set[str]]:
    """({package names}, {wheel paths of the modules and data files}) from the mapped source folders."""
    packages: set[str] = set()
    files: set[str] = set()
    sources = _source_files()
    for name, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for f in sources:
            if not f.is_relative_to(base) or not _shipped(rel := f.relative_to(base)):
                continue
            files.add(f"{_module_path(name)}/{rel.as_posix()}")
            if f.name == "__init__.py":
                packages.add(".".join([name, *rel.parent.parts]))
    return packages, files


def test_every_top_level_package_folder_is_mapped():
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    mapped = {Path(folder).parts[0] for folder in PACKAGE_DIRS.values()}
    assert folders - mapped == set(), "folders with an __init__.py that pyproject maps under no callqa.* name"


def test_wheel_has_every_subpackage_module_and_data_file(wheel):
    names = set(wheel.namelist())
    packages, files = _expected()
    shipped_packages = {n.removesuffix("/__init__.py").replace("/", ".") for n in names if n.endswith("/__init__.py")}
    dist_info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    problems = {
        "subpackages missing ([tool.setuptools] packages)": sorted(packages - shipped_packages),
        "files missing ([tool.setuptools] packages / package-data)": sorted(files - names),
        # nothing may land in site-packages under a generic top-level name such as `models`
        "outside callqa/": sorted(n for n in names - dist_info if not n.startswith("callqa/")),
    }
    assert {k: v for k, v in problems.items() if v} == {}


def test_console_script_target_is_in_the_wheel(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    scripts = [line for line in wheel.read(entry_points).decode().splitlines() if line.startswith("callqa")]
    assert scripts, "no `callqa` console script"
    module = scripts[0].split("=", 1)[1].strip().split(":")[0]
    names = set(wheel.namelist())
    assert {f"{_module_path(module)}.py", f"{_module_path(module)}/__init__.py"} & names, scripts[0]
