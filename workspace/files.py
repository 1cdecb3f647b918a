"""Files callqa writes for people to open (the report site, exports): never through a link, never over
a file callqa did not write.

Every file goes to a temp file created exclusively in its destination folder (O_CREAT | O_EXCL |
O_NOFOLLOW under a random name: no link planted in advance can be at that name, and the open fails
rather than follow one) and is renamed over its destination with `os.replace`, which replaces a
directory entry and never writes through it. A
destination (or a sub-folder on the way to it) that is a symbolic link is refused, `--force` or not.

What callqa wrote is listed in a manifest in the output folder (`.callqa-manifest.json`: relative
path -> sha256, size and mtime of the file as written). An existing file that is not listed, or has
changed since, belongs to someone else: it is replaced only with `force`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from callqa.pipeline.types import CallQAError

MANIFEST_NAME = ".callqa-manifest.json"
_CHUNK = 1 << 20


class OutputError(CallQAError):
    """callqa would not write a file (a link at the destination, a file it did not write) or could not."""

    stage = "write"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", opener=_nofollow_opener) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


@dataclass
class OutputFolder:
    """A folder callqa writes into, with the manifest of what it wrote there."""

    root: Path
    force: bool = False
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, root: str | Path, force: bool = False) -> OutputFolder:
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(root, f"cannot create the output folder: {e}") from e
        return cls(root, force, _read_manifest(root / MANIFEST_NAME))

    def _key(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def folder(self, rel: str) -> Path:
        """The sub-folder `rel` of the output folder, created; refused where any part of it is a link."""
        path = self.root
        for part in Path(rel).parts:
            path = path / part
            st = _lstat(path)
            if st is None:
                try:
                    path.mkdir()
                except OSError as e:
                    raise OutputError(path, f"cannot create the folder: {e}") from e
            elif stat.S_ISLNK(st.st_mode):
                raise OutputError(path, "is a symbolic link; callqa never writes through links (remove it)")
            elif not stat.S_ISDIR(st.st_mode):
                raise OutputError(path, "is in the way: callqa needs a folder there")
        return path

    def owns(self, path: Path) -> bool:
        """Whether the file at path is as callqa last wrote it (per the manifest)."""
        entry = self.entries.get(self._key(path))
        st = _lstat(path)
        if entry is None or st is None or not stat.S_ISREG(st.st_mode) or st.st_size != entry.get("size"):
            return False
        if st.st_mtime_ns == entry.get("mtime_ns"):
            return True
        return _sha256(path) == entry.get("sha256")

    def check(self, path: Path) -> None:
        """Refuse a destination that is a link, not a file, or someone else's file (without force)."""
        st = _lstat(path)
        if st is None:
            return
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(path, "is a symbolic link; callqa never writes through links (remove it)")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(path, "exists and is not a regular file")
        if not self.force and not self.owns(path):
            raise OutputError(path, "exists and was not written by callqa (or changed since): use --force to overwrite")

    def write_bytes(self, path: Path, data: bytes) -> int:
        return self._write(path, _filler(data))

    def copy_from(self, src: Path, path: Path, **extra: Any) -> int:
        """Copy the file src to path (streamed), recording `extra` with it in the manifest."""

        def fill(f: BinaryIO) -> str:
            h = hashlib.sha256()
            with open(src, "rb") as s:
                while chunk := s.read(_CHUNK):
                    h.update(chunk)
                    f.write(chunk)
            return h.hexdigest()

        return self._write(path, fill, **extra)

    def place(self, tmp: Path, path: Path) -> int:
        """Move a file callqa's own engine statement wrote (in a private folder) to path."""
        self.check(path)
        st = _lstat(tmp)
        if st is None or not stat.S_ISREG(st.st_mode):
            raise OutputError(tmp, "the file just written is missing or not a regular file")
        digest = _sha256(tmp)
        os.replace(tmp, path)
        return self._record(path, digest)

    def _write(self, path: Path, fill: Callable[[BinaryIO], str], **extra: Any) -> int:
        self.check(path)
        digest = _replace_with(path, fill)
        return self._record(path, digest, **extra)

    def _record(self, path: Path, digest: str, **extra: Any) -> int:
        st = os.lstat(path)
        key = self._key(path)
        self.entries[key] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns, **extra}
        self.written.add(key)
        return st.st_size

    def entry(self, path: Path) -> dict[str, Any] | None:
        return self.entries.get(self._key(path))

    def save(self) -> None:
        """Write the manifest (merged with one another callqa may have saved meanwhile); stale entries go."""
        path = self.root / MANIFEST_NAME
        current = _read_manifest(path)
        merged = {k: v for k, v in current.items() if k not in self.written}
        merged.update({k: self.entries[k] for k in self.written})
        merged = {k: v for k, v in merged.items() if _lstat(self.root / k) is not None}
        data = json.dumps({"files": dict(sorted(merged.items()))}, indent=1).encode("utf-8")
        st = _lstat(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputError(path, "the manifest is a symbolic link or not a file; callqa never writes through links")
        _replace_with(path, _filler(data))
        self.entries = merged


def _exclusive_temp(dest: Path) -> tuple[int, Path]:
    """A new file beside dest, opened for writing; never an existing file, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(dest.parent, f"cannot create a file here: {e}") from e
    raise OutputError(dest.parent, "cannot create a temporary file here (100 names taken)")


def _filler(data: bytes) -> Callable[[BinaryIO], str]:
    def fill(f: BinaryIO) -> str:
        f.write(data)
        return hashlib.sha256(data).hexdigest()

    return fill


def _replace_with(dest: Path, fill: Callable[[BinaryIO], str]) -> str:
    """Write a temp file with fill (which returns the digest) and rename it over dest atomically."""
    fd, tmp = _exclusive_temp(dest)
    try:
        with os.fdopen(fd, "wb") as f:
            digest = fill(f)
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(dest, f"cannot write: {e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries; a missing, linked or unreadable manifest lists nothing (so nothing is owned)."""
    try:
        with open(path, "rb", opener=_nofollow_opener) as f:
            files = json.loads(f.read().decode("utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def inside(path: str | Path, roots: Iterable[str]) -> bool:
    """Whether path, with every link resolved, lies inside one of roots (already resolved)."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, r]) == r for r in roots)
