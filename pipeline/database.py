"""The database file: its schema migrations, and opening it while other processes use it.

DuckDB lets one process at a time open a file for writing, and a read-only open conflicts with a
writer too: the loser gets `IO Error: Could not set lock on file ... Conflicting lock is held`. So
nobody holds the file longer than one unit of work. The batch opens it per commit
(flows/nightly.py), CLI commands and web requests per command or request, and every open goes through
`open_db`/`connect`, which retry a lock conflict with bounded exponential backoff and jitter until a
timeout and then raise a StoreError naming the file. Any other error raises at once.

`batch_lock` is a separate, whole-batch lock file beside the database: with the database file
released between commits, it is what keeps a second `callqa run` out, so a run row left 'running'
still means its batch died (`store.close_stale_runs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import IO, TypeVar

import duckdb

from callqa.pipeline.types import CallQAError

MIGRATIONS_PACKAGE = "callqa.config"
DEFAULT_LOCK_TIMEOUT_S = 30.0  # config `database.lock_timeout_s`; CLI commands read the env override
LOCK_TIMEOUT_ENV = "CALLQA_LOCK_TIMEOUT_S"
_FIRST_DELAY_S = 0.005
_MAX_DELAY_S = 0.25  # short: a batch commit takes milliseconds, so waiters should notice it is gone soon

T = TypeVar("T")


class StoreError(CallQAError):
    stage = "store"


class StoreLocked(StoreError):
    """The database stayed locked by another process for the whole timeout."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _migrations() -> list[tuple[int, str, str]]:
    folder = files(MIGRATIONS_PACKAGE).joinpath("migrations")
    out = []
    for entry in folder.iterdir():
        m = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


SCHEMA_VERSION = max(v for v, _, _ in _migrations())


def _applied(con: duckdb.DuckDBPyConnection) -> set[int] | None:
    exists = con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = 'schema_migrations' AND database_name = current_database()"
        " AND schema_name = current_schema()"
    ).fetchone()
    if not exists:
        return None
    return {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema forward to SCHEMA_VERSION; each migration is applied in its own transaction.

    A current schema costs two catalog reads and writes nothing, so the batch can open per commit.
    """
    applied = _applied(con)
    todo = [m for m in _migrations() if applied is None or m[0] not in applied]
    if not todo:
        return SCHEMA_VERSION
    if applied is None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
    for version, name, sql in todo:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, _now()])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


# ---------------------------------------------------------------------------------------------
# opening under contention


def is_lock_conflict(e: BaseException) -> bool:
    """Another holder of the file: another process's lock, or (same process) a connection opened
    with the other read_only setting, or another instance's ATTACH of it (the analyst sandbox while a
    web request writes), which DuckDB refuses while they are open."""
    text = str(e)
    if isinstance(e, duckdb.IOException):
        return "Could not set lock" in text or "Conflicting lock" in text
    if isinstance(e, duckdb.ConnectionException):
        return "different configuration" in text
    return isinstance(e, duckdb.Error) and "Unique file handle conflict" in text


def lock_timeout(timeout_s: float | None) -> float:
    """The wait for a lock: the caller's, else $CALLQA_LOCK_TIMEOUT_S, else DEFAULT_LOCK_TIMEOUT_S."""
    if timeout_s is not None:
        return max(0.0, float(timeout_s))
    env = os.environ.get(LOCK_TIMEOUT_ENV)
    if env:
        try:
            return max(0.0, float(env))
        except ValueError as e:
            raise StoreError(None, f"{LOCK_TIMEOUT_ENV}={env!r} is not a number of seconds") from e
    return DEFAULT_LOCK_TIMEOUT_S


def retry_locked(fn: Callable[[], T], db_path: str | Path, timeout_s: float | None = None) -> T:
    """fn() until it stops failing with a lock conflict, sleeping with exponential backoff and full jitter
    (so waiters do not retry in step); StoreLocked naming the file after the timeout."""
    wait = lock_timeout(timeout_s)
    deadline = time.monotonic() + wait
    delay = _FIRST_DELAY_S
    rng = random.Random()
    tries = 0
    while True:
        tries += 1
        try:
            return fn()
        except duckdb.Error as e:
            if not is_lock_conflict(e):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                held = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise StoreLocked(
                    db_path,
                    f"still locked after {wait:.1f} s and {tries} tries ({held}); another process (a batch commit "
                    f"or a long command) holds it: retry, or wait longer with {LOCK_TIMEOUT_ENV} or "
                    "database.lock_timeout_s",
                ) from e
            time.sleep(min(left, rng.uniform(delay / 2, delay)))
            delay = min(_MAX_DELAY_S, delay * 2)


class _WriterGate:
    """Threads of one process share DuckDB's cached instance, so the file lock never makes them wait for
    each other; writers in one process take this per-file lock instead (two web requests appending
    reviews must serialise on the tail check + insert exactly as two processes do)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    def lock(self, path: Path) -> threading.RLock:
        key = str(path.resolve())
        with self._guard:
            return self._locks.setdefault(key, threading.RLock())


_WRITERS = _WriterGate()  # process-wide by nature, like the OS file lock it stands in for


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as e:
        if is_lock_conflict(e):
            raise
        mode = "read-only" if read_only else "for writing"
        raise StoreError(path, f"cannot open {mode}: {e}") from e


def connect(
    db_path: str | Path, read_only: bool = False, *, timeout_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the database (waiting out other processes' locks); the writer creates and migrates it.

    The caller closes the connection; prefer `open_db`, which does. read_only=True is for callqa's own
    fixed SQL; SQL a person wrote goes through `callqa.workspace.sandbox.connect_analyst`.
    """
    path = Path(db_path)
    if read_only and not path.exists():
        raise StoreError(path, "database file does not exist (run `callqa run` first)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = retry_locked(lambda: _open(path, read_only), path, timeout_s)
    if not read_only:
        try:
            migrate(con)
        except Exception:
            con.close()
            raise
    return con


def _close(con: duckdb.DuckDBPyConnection, path: Path, checkpoint_wal_bytes: int | None) -> None:
    """Close; a writer that commits often skips DuckDB's checkpoint-on-close until the WAL is big.

    Measured (bench/concurrent_batch.py --open-cost): a checkpoint costs ~20 ms per close and, because
    it writes every changed table's blocks anew before freeing the old ones, needs ~4 MB of free disk
    even for a small database; a WAL kept instead is replayed by every later open (~30 ms per MB), so
    it is bounded by checkpointing once it passes `checkpoint_wal_bytes`."""
    if checkpoint_wal_bytes is not None:
        wal = Path(f"{path}.wal")
        if (wal.stat().st_size if wal.exists() else 0) < checkpoint_wal_bytes:
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.close()


@contextlib.contextmanager
def open_db(
    db_path: str | Path,
    *,
    read_only: bool = False,
    timeout_s: float | None = None,
    checkpoint_wal_bytes: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database for one unit of work: opened (waiting, bounded, for other processes), migrated when
    opened for writing, and closed on exit so the lock is free between uses.

    Writers in this process also wait for each other (see _WriterGate), within the same timeout.
    `checkpoint_wal_bytes` (the batch's per-call commits): checkpoint on close only once the WAL has
    grown past this many bytes (None: on every close, DuckDB's default).
    """
    path = Path(db_path)
    gate = None if read_only else _WRITERS.lock(path)
    if gate is not None:
        started = time.monotonic()
        wait = lock_timeout(timeout_s)
        if not gate.acquire(timeout=wait):
            raise StoreLocked(path, f"still locked after {wait:.1f} s by another writer in this process")
        timeout_s = max(0.0, wait - (time.monotonic() - started))
    try:
        con = connect(path, read_only, timeout_s=timeout_s)
        try:
            yield con
        finally:
            _close(con, path, None if read_only else checkpoint_wal_bytes)
    finally:
        if gate is not None:
            gate.release()


# ---------------------------------------------------------------------------------------------
# one batch at a time


def batch_lock_path(db_path: str | Path) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".batch.lock")


@contextlib.contextmanager
def batch_lock(db_path: str | Path) -> Iterator[None]:
    """Held for a whole batch: a second batch on the same database is refused at once.

    An OS lock (flock) on `<db>.batch.lock`: the kernel drops it when the process dies, even by SIGKILL,
    so a killed batch never leaves a lock behind that blocks the next run.
    """
    lock_file = batch_lock_path(db_path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh: IO[str] = open(lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held until the batch ends
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            fh.seek(0)
            holder = fh.read().strip() or "unknown pid"
            raise StoreError(db_path, f"another batch is running on this database ({holder}); wait for it") from e
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the flock
