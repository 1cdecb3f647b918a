"""The review chain's parts that live outside the database: the key, the canonical payloads, the head file.

The key (CALLQA_AUDIT_KEY, else a 0600 key file created on first use; see AuditSettings) never enters the
database; the head file `<db>.audit-head` anchors the newest chain entry (seq, mac, review count), carries
the key's id (so a wrong key is told as such) and its own MAC, and is replaced atomically on every append.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from callqa.pipeline.store import StoreError

GENESIS = "0" * 64
KEY_ENV = "CALLQA_AUDIT_KEY"
# The canonical review payload, unchanged since the unkeyed chain of schema v5.
REVIEW_FIELDS = (
    "review_id",
    "seq",
    "call_id",
    "scorecard_id",
    "scorecard_version",
    "criterion_id",
    "reviewer",
    "verdict",
    "comment",
    "auto_result",
    "created_at",
)
ENTRY_FIELDS = ("seq", "kind", "created_at", "actor", "reason", "call_ids", "detail")


class AuditError(StoreError):
    stage = "audit"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


# ---------------------------------------------------------------------------------------------
# the key


@dataclass(frozen=True)
class AuditKey:
    secret: bytes
    source: str  # "$CALLQA_AUDIT_KEY" or the key file's path

    @property
    def key_id(self) -> str:
        """Names the key without revealing it: the head file records it, so a wrong key is told as such."""
        return hmac.new(self.secret, b"callqa audit key id", hashlib.sha256).hexdigest()[:16]

    def mac(self, prev: str, payload: str) -> str:
        return hmac.new(self.secret, (prev + payload).encode(), hashlib.sha256).hexdigest()


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "callqa" / "audit.key"


def key_location(key_file: Path | str | None = None) -> str:
    if os.environ.get(KEY_ENV):
        return f"${KEY_ENV}"
    return str(Path(key_file).expanduser() if key_file else default_key_file())


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_key(key_file: Path | str | None = None, create: bool = False) -> AuditKey | None:
    """The audit key: $CALLQA_AUDIT_KEY, else the key file (created 0600 when `create`); None when absent."""
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < 16:
            raise AuditError(None, f"{KEY_ENV} is too short for a key: give at least 16 characters (32 random bytes)")
        return AuditKey(env.encode(), f"${KEY_ENV}")
    path = Path(key_file).expanduser() if key_file else default_key_file()
    if not path.exists():
        if not create:
            return None
        _create_key_file(path)
    if path.is_symlink() or not path.is_file():
        raise AuditError(path, "the audit key must be a regular file, not a link or a folder")
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise AuditError(path, "the audit key file is readable or writable by others: chmod 600 it")
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 16:
        raise AuditError(path, "the audit key file is empty or truncated: restore it from its backup")
    return AuditKey(secret.encode(), str(path))


# ---------------------------------------------------------------------------------------------
# canonical payloads


def review_payload(row: dict[str, Any]) -> str:
    return json.dumps({k: (str(v) if v is not None else None) for k, v in sorted(row.items())}, sort_keys=True)


def legacy_hash(prev: str, row: dict[str, Any]) -> str:
    """The unkeyed SHA-256 link of schema v5, to check history written before the key."""
    return hashlib.sha256((prev + review_payload(row)).encode()).hexdigest()


def canonical_json(v: Any) -> str | None:
    if v is None:
        return None
    return json.dumps(json.loads(v) if isinstance(v, str) else v, sort_keys=True, separators=(",", ":"))


def entry_payload(entry: dict[str, Any]) -> str:
    out: dict[str, Any] = {}
    for k in ENTRY_FIELDS:
        v = entry.get(k)
        if k == "detail":
            out[k] = canonical_json(v)
        elif isinstance(v, (list, tuple)):
            out[k] = [str(x) for x in v]
        else:
            out[k] = None if v is None else str(v)
    return json.dumps(out, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# the head file


def database_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return Path(row[0]) if row and row[0] and row[0] != ":memory:" else None


def head_path(db_path: Path | str | None) -> Path | None:
    return None if db_path is None else Path(f"{db_path}.audit-head")


@dataclass(frozen=True)
class Head:
    seq: int
    mac: str
    reviews: int
    key_id: str
    updated_at: str

    def payload(self) -> str:
        return json.dumps(
            {"seq": self.seq, "mac": self.mac, "reviews": self.reviews, "key_id": self.key_id}, sort_keys=True
        )


def write_head(path: Path, seq: int, mac: str, reviews: int, key: AuditKey) -> Head:
    """Replace the head file atomically (a temp file beside it, then rename: a link there is replaced, not followed)."""
    head = Head(seq, mac, reviews, key.key_id, now().isoformat(timespec="seconds") + "Z")
    doc = {**json.loads(head.payload()), "updated_at": head.updated_at, "head_mac": key.mac("head", head.payload())}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return head


def read_head(path: Path, key: AuditKey | None) -> tuple[Head | None, str | None]:
    """(head, problem): None, None when there is no head file."""
    if not path.exists():
        return None, None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        head = Head(int(doc["seq"]), str(doc["mac"]), int(doc["reviews"]), str(doc["key_id"]), str(doc["updated_at"]))
        head_mac = str(doc["head_mac"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"the head file {path} is unreadable ({type(e).__name__}: {e})"
    if key is None:
        return head, None  # reported by the caller: nothing can be verified without the key
    if head.key_id != key.key_id:
        return head, (
            f"the audit key ({key.source}, id {key.key_id}) is not the key this history was written with "
            f"(id {head.key_id}): restore that key from its backup"
        )
    if not hmac.compare_digest(head_mac, key.mac("head", head.payload())):
        return head, f"the head file {path} was not written by callqa with this key (its MAC does not verify)"
    return head, None
