"""The database, per request: opened for one request and closed at its end, never held between requests.

The nightly batch writes the same file (it opens it per commit), so the server must not keep it open
while idle. Every open goes through `callqa.pipeline.store.open_db`, which waits out another process's
lock with bounded backoff. Inside the server one lock serialises the requests' opens: DuckDB refuses a
read-only and a read-write connection to one file in one process at the same time ("different
configuration"), and the analyst sandbox ATTACHes the file from a second in-process instance.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
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
        self.lock = threading.RLock()

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


def read_db(request: Request) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    """`with read_db(request) as con:` a read-only connection for this request (pages)."""
    return request.app.state.db.read()


def write_db(request: Request) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
    """`with write_db(request) as con:` a read-write connection for this request (form posts)."""
    return request.app.state.db.write()
