"""The analyst's SQL sandbox: the one connection through which SQL a person writes reaches the database.

`callqa sql`, `callqa export`, the HTML report and any SQL a later web workspace exposes open the
database with `connect_analyst`. The engine itself keeps such SQL inside the database, so no string
check has to catch every way of spelling a file access:

- its own in-memory DuckDB instance ATTACHes the file READ_ONLY: nothing can write the database, and
  the engine settings below belong to this connection alone (DuckDB settings are per instance, and
  opening the file directly would share a cached instance with any other connection to it);
- `enable_external_access = false`: no file or URL outside the database (read_csv, read_text,
  read_blob, glob, sniff_csv, COPY ... TO, ATTACH, INSTALL, LOAD all fail with a permission error);
- `autoinstall_known_extensions` / `autoload_known_extensions = false`: `read_csv('https://...')` never
  fetches or loads httpfs;
- `lock_configuration = true`, last: no SET can undo any of it.

On top of the engine, statements are checked by DuckDB's own parser: only queries (SELECT, WITH,
DESCRIBE, SHOW, SUMMARIZE, FROM, VALUES) and EXPLAIN [ANALYZE] of a query pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from callqa.pipeline.store import QueryResult, StoreError, retry_locked

# Statement types an analyst may run. Everything else (INSERT, DELETE, UPDATE, CREATE, DROP, ALTER,
# COPY, ATTACH, SET, CALL, PRAGMA, PIVOT (which creates an enum type), ...) is refused before it
# reaches DuckDB.
_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}

# Names an ATTACHed database cannot take: DuckDB's own catalogs and the in-memory instance's.
_RESERVED_CATALOGS = {"memory", "system", "temp", "main"}

# An EXPLAIN's options come before the statement it wraps: EXPLAIN [ANALYZE] [(opt, ...)] statement.
_EXPLAIN_PREFIX_TOKENS = 64


class ReadOnlyViolation(StoreError):
    """An analyst's SQL tried to write, or to reach outside the database."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_analyst(
    db_path: str | Path, *, writable_dir: Path | None = None, timeout_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """A sandboxed, read-only connection to the database at db_path (see the module docstring).

    `writable_dir` is for callqa's own fixed statements only (an export's COPY into a private folder
    callqa just created): the one folder the engine may write. SQL a person wrote never gets one.
    While a batch commits the ATTACH waits (bounded, `store.retry_locked`); the caller closes the
    connection as soon as its query is answered, since the attached file blocks the batch's writes.
    """
    db_path = Path(db_path)
    if not db_path.is_file():
        raise StoreError(db_path, "database file does not exist (run `callqa run` first)")
    catalog = db_path.stem if db_path.stem and db_path.stem.lower() not in _RESERVED_CATALOGS else "qa"
    # spills go beside the database, where a direct read-only open puts them, not into the cwd
    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "temp_directory": f"{db_path}.tmp",
    }
    con = duckdb.connect(":memory:", config=config)
    try:
        attach = f"ATTACH {_literal(str(db_path))} AS {_ident(catalog)} (READ_ONLY)"
        retry_locked(lambda: con.execute(attach), db_path, timeout_s)
        con.execute(f"USE {_ident(catalog)}")
        if writable_dir is not None:
            # allowed_directories can only be set while external access is still on
            con.execute(f"SET allowed_directories = [{_literal(str(writable_dir).rstrip(os.sep) + os.sep)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as e:
        con.close()
        raise StoreError(db_path, f"cannot open read-only: {first_line(e)}") from e
    except StoreError:  # still locked after the timeout
        con.close()
        raise
    return con


def first_line(e: Exception) -> str:
    """DuckDB's error without its context lines, for one-line refusals."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _explained_type(query: str, parser: duckdb.DuckDBPyConnection) -> str | None:
    """The type of the statement an EXPLAIN wraps, or None when it cannot be told.

    DuckDB reports only `EXPLAIN` for the whole statement. The wrapped statement is the earliest
    suffix after the EXPLAIN keyword that parses as exactly one statement: `ANALYZE ...` and
    `(FORMAT json) ...` do not parse, so the options are skipped and the statement itself is found.
    """
    tokens = [off for off, kind in duckdb.tokenize(query) if kind != duckdb.token_type.comment]
    for off in tokens[1 : 1 + _EXPLAIN_PREFIX_TOKENS]:
        try:
            inner = parser.extract_statements(query[off:])
        except duckdb.Error:
            continue
        if len(inner) == 1:
            return inner[0].type.name
    return None


def _refuse(what: str, query: str) -> ReadOnlyViolation:
    return ReadOnlyViolation(
        None,
        f"refused: `callqa sql` is read-only and this is {what} ({query.strip()[:60]!r}). "
        "Only SELECT/WITH/DESCRIBE/SHOW/SUMMARIZE/EXPLAIN of a query are allowed; "
        "human verdicts go through `callqa review`.",
    )


def check_read_only(sql: str) -> None:
    """Refuse any statement that is not a query, with a one-line message that names the statement."""
    parser = duckdb.connect()
    try:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as e:
            raise StoreError(None, f"SQL does not parse: {e}") from e
        if not statements:
            raise StoreError(None, "no SQL statement given")
        for st in statements:
            kind = st.type.name
            if kind not in _READ_ONLY_TYPES:
                raise _refuse(f"a {kind} statement", st.query)
            if kind == "EXPLAIN":
                inner = _explained_type(st.query, parser)
                if inner != "SELECT":
                    raise _refuse(f"an EXPLAIN of a {inner or 'statement it cannot identify'}", st.query)
    finally:
        parser.close()


def query_read_only(db_path: str | Path, sql: str) -> QueryResult:
    """Run an analyst's SQL in the sandbox; a reach outside the database is refused in one line."""
    check_read_only(sql)
    con = connect_analyst(db_path)
    try:
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall()
        except duckdb.PermissionException as e:
            raise ReadOnlyViolation(
                None, f"refused: `callqa sql` reads the database only, no files, URLs or extensions ({first_line(e)})"
            ) from e
        except duckdb.Error as e:
            raise StoreError(db_path, f"query failed: {e}") from e
        return QueryResult(columns, rows)
    finally:
        con.close()
