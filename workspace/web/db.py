"""The database, per request: opened for one request and closed at its end, never held between requests.

The nightly batch writes the same file (it opens it per commit), so the server must not keep it open
while idle. Every open goes through `callqa.pipeline.store.open_db`, which waits out another process's
lock with bounded backoff. Inside the server one lock serialises the requests' opens: DuckDB refuses a
read-only and a read-write connection to one file in one process at the same time ("different
configuration"), and the analyst sandbox ATTACHes the file from a second in-process instance.

One open per request: the session check (auth.session_gate) opens the read-only connection to look up
the user and leaves it on the request (`hold_read`); the handler's first `read_db` uses it and closes it
at the end of its `with` block, so the lock is free again while the page renders. Opening the 1M-call
file costs 40-70 ms CPU (bench/db_views.py --only-web, load 6), and it was paid twice per page. A
handler that writes (`write_db`) or runs analyst SQL (`analyst_db`) first closes the held connection:
one process cannot hold a read-only and a read-write connection to one file. Whatever is still held
when the response is ready is closed by the app's middleware (`release_held`), so the file is never
kept open between requests.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
from starlette.requests import Request

from callqa.pipeline import store
from callqa.workspace.sandbox import connect_analyst


class Database:
    """The served database file and the lock its requests take in turn (one per app, on app.state.db)."""

    def __init__(self, path: Path | str, timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        # a plain Lock, not an RLock: a request's held connection is opened in one thread (the session
        # check runs in the threadpool) and may be closed in another (the handler's, or the middleware's)
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock, store.open_db(self.path, read_only=True, timeout_s=self.timeout_s) as con:
            yield con

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock, store.open_db(self.path, read_only=False, timeout_s=self.timeout_s) as con:
            yield con

    @contextlib.contextmanager
    def analyst(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The sandboxed read-only connection for SQL a person wrote (callqa.workspace.sandbox)."""
        with self.lock:
            con = connect_analyst(self.path)
            try:
                yield con
            finally:
                con.close()


@dataclass
class _Held:
    """The read-only connection a request opened before its handler ran, and how to close it."""

    con: duckdb.DuckDBPyConnection
    closer: contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]


def hold_read(request: Request) -> duckdb.DuckDBPyConnection:
    """The request's read-only connection, opened (taking the lock) if it holds none; `release_held` closes it.

    Call it from a worker thread, never on the event loop: it may wait for the lock, which another
    request's middleware releases on the event loop."""
    held: _Held | None = getattr(request.state, "db_held", None)
    if held is not None:
        return held.con
    db: Database = request.app.state.db
    db.lock.acquire()
    try:
        closer = store.open_db(db.path, read_only=True, timeout_s=db.timeout_s)
        con = closer.__enter__()
    except BaseException:
        db.lock.release()
        raise
    request.state.db_held = _Held(con, closer)
    return con


def release_held(request: Request) -> None:
    """Close the request's held connection, if any, and free the lock (idempotent)."""
    held: _Held | None = getattr(request.state, "db_held", None)
    if held is None:
        return
    request.state.db_held = None
    try:
        held.closer.__exit__(None, None, None)
    finally:
        request.app.state.db.lock.release()


@contextlib.contextmanager
def read_db(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with read_db(request) as con:` a read-only connection for this request (pages).

    The connection the session check left open when there is one (closed at the end of this block),
    else a fresh one."""
    if getattr(request.state, "db_held", None) is not None:
        try:
            yield hold_read(request)
        finally:
            release_held(request)
        return
    with request.app.state.db.read() as con:
        yield con


@contextlib.contextmanager
def write_db(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with write_db(request) as con:` a read-write connection for this request (form posts)."""
    release_held(request)
    with request.app.state.db.write() as con:
        yield con


@contextlib.contextmanager
def analyst_db(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with analyst_db(request) as con:` the sandboxed connection for SQL a person wrote."""
    release_held(request)
    with request.app.state.db.analyst() as con:
        yield con
