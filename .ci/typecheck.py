"""Run mypy on the mapped `callqa.*` packages: `.venv/bin/python .ci/typecheck.py [mypy options]`.

pyproject maps top-level folders under `callqa.` (pipeline/ -> callqa.pipeline, ...). The editable install
serves that mapping through an import hook, which mypy cannot follow (it searches folders, not finders), and
the folder names alone would give mypy the wrong module names (`pipeline.store`, not `callqa.pipeline.store`).
So this builds a tree of symlinks laid out as the wheel is (build/typecheck/callqa/pipeline -> pipeline/, ...),
rebuilt on every run from [tool.setuptools.package-dir] so it follows the mapping, and points mypy's search
path at it. Folder links pick up new modules by themselves. mypy's paths are rewritten back to the real
folders in its output, so an error names pipeline/store.py, not the link.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"  # build/ is git-ignored; [tool.mypy] mypy_path names this folder


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """{'callqa': ROOT/'callqa', 'callqa.pipeline': ROOT/'pipeline', ...} from [tool.setuptools.package-dir]."""
    mapping = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


def build_tree(dirs: dict[str, Path], tree: Path) -> dict[str, str]:
    """Lay the link tree out; returns {link prefix: real prefix}, both relative to ROOT, for the output."""
    shutil.rmtree(tree, ignore_errors=True)
    rewrites: dict[str, str] = {}
    # parents first, so a nested package (callqa.pipeline.detectors) finds its parent folder already laid
    for name in sorted(dirs, key=lambda n: n.count(".")):
        target = tree.joinpath(*name.split("."))
        if target.exists():  # already reachable through the parent's folder link (pipeline/detectors)
            if target.resolve() != dirs[name].resolve():
                sys.exit(f"typecheck: {name} maps to {dirs[name]}, but its parent's folder has {target.resolve()}")
            continue
        if name.count(".") == 0:
            # the top package is a real folder of per-entry links, so mapped subpackages can sit in it
            target.mkdir(parents=True)
            for entry in dirs[name].iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            inside = target.parent.relative_to(tree)
            if any((tree / p).is_symlink() for p in (inside, *inside.parents)):
                # its parent is a folder link: a link laid here would land inside the source tree
                sys.exit(f"typecheck: {name} ({dirs[name]}) is not a subfolder of its parent package's folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(dirs[name], target_is_directory=True)
        rewrites[os.path.relpath(target, ROOT) + "/"] = os.path.relpath(dirs[name], ROOT) + "/"
    return rewrites


def rewrite(text: str, rewrites: dict[str, str]) -> str:
    # longest link first: build/typecheck/callqa/pipeline/ before build/typecheck/callqa/
    for link in sorted(rewrites, key=len, reverse=True):
        text = text.replace(link, rewrites[link])
    return text


def main(argv: list[str]) -> int:
    from mypy import api

    os.chdir(ROOT)  # mypy_path and the packages in [tool.mypy] are relative to the repository root
    rewrites = build_tree(package_dirs(ROOT / "pyproject.toml"), TREE)
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), *argv])
    sys.stdout.write(rewrite(stdout, rewrites))
    sys.stderr.write(rewrite(stderr, rewrites))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
