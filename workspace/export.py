"""`callqa export`: any table or view of the QA database to Parquet or CSV.

DuckDB writes the file itself (COPY ... TO), so a million-row view streams to disk without passing
through Python. It does so in the analyst sandbox (`callqa.workspace.sandbox.connect_analyst`): the
database is attached read-only and the engine may write one folder only, a private one callqa creates
for this export beside the destination (view definitions are SQL stored in the file, and they never
run on a connection that can reach anything else). The finished file is then moved into place without
following a link there, and an existing file callqa did not write is replaced only with `force`
(`callqa.workspace.files`). Parquet keeps native types (lists stay lists, timestamps stay
timestamps); CSV turns list and struct columns into JSON text so that a spreadsheet or pandas can read
them back unambiguously.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from callqa.pipeline.types import CallQAError
from callqa.workspace.files import OutputFolder
from callqa.workspace.sandbox import connect_analyst, first_line

Format = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")


class ExportError(CallQAError):
    stage = "export"


@dataclass(frozen=True)
class ExportResult:
    name: str
    path: Path
    rows: int
    format: str


def relations(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every exportable name in the main schema -> 'table' or 'view'."""
    rows = con.execute(
        """SELECT table_name, table_type FROM information_schema.tables
           WHERE table_schema = 'main' AND table_catalog = current_database() ORDER BY table_name"""
    ).fetchall()
    return {name: ("view" if kind == "VIEW" else "table") for name, kind in rows}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select_list(con: duckdb.DuckDBPyConnection, name: str, fmt: str) -> str:
    if fmt != "csv":
        return "*"
    cols = con.execute(f"DESCRIBE SELECT * FROM {_quote(name)}").fetchall()
    out = []
    for col, typ, *_ in cols:
        q = _quote(col)
        # lists, structs and maps have no CSV form: JSON text reads back unambiguously
        if typ.endswith("[]") or typ.startswith(("STRUCT", "MAP", "UNION")) or "[" in typ:
            out.append(f"to_json({q}) AS {q}")
        else:
            out.append(q)
    return ", ".join(out)


def _query(
    con: duckdb.DuckDBPyConnection,
    db_path: str | Path,
    name: str,
    fmt: str,
    since: date | None,
    until: date | None,
    limit: int | None,
) -> str:
    """callqa's own SELECT for the export, with the filter dates rendered as literals (COPY binds none)."""
    known = relations(con)
    if name not in known:
        raise ExportError(db_path, f"no table or view named {name!r}; exportable: {', '.join(sorted(known))}")
    where = []
    if since or until:
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_quote(name)}").fetchall()}
        if "day" not in cols:
            raise ExportError(db_path, f"{name!r} has no `day` column, so --since/--until cannot filter it")
        if since:
            where.append(f"day >= DATE '{since.isoformat()}'")
        if until:
            where.append(f"day <= DATE '{until.isoformat()}'")
    sql = f"SELECT {_select_list(con, name, fmt)} FROM {_quote(name)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql


def export(
    db_path: str | Path,
    name: str,
    fmt: str,
    out: str | Path | None = None,
    *,
    since: date | None = None,
    until: date | None = None,
    limit: int | None = None,
    force: bool = False,
) -> ExportResult:
    """Write table or view `name` to `out` (default: ./<name>.<fmt>).

    `since`/`until` filter on the relation's `day` column (the call's date) where it has one. An
    existing file at `out` is replaced only if callqa wrote it, or with `force`; a link there never.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(None, f"unknown format {fmt!r}: use parquet or csv")
    path = Path(out) if out is not None else Path(f"{name}.{fmt}")
    if path.is_dir():
        path = path / f"{name}.{fmt}"
    con = connect_analyst(db_path)
    try:
        sql = _query(con, db_path, name, fmt, since, until, limit)
    except duckdb.Error as e:  # a view that reaches outside the database fails here, in the sandbox
        raise ExportError(db_path, f"export of {name!r} failed: {first_line(e)}") from e
    finally:
        con.close()
    folder = OutputFolder.open(path.parent, force)
    folder.check(path)  # refuse before the work, not after it
    try:
        private = Path(tempfile.mkdtemp(prefix=".callqa-export.", dir=path.parent)).absolute()
    except OSError as e:
        raise ExportError(path, f"cannot write the export: {e}") from e
    try:
        tmp = private / f"{name}.{fmt}"
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
        con = connect_analyst(db_path, writable_dir=private)
        try:
            res = con.execute(f"COPY ({sql}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({options})").fetchone()
        except duckdb.Error as e:
            raise ExportError(path, f"export of {name!r} failed: {e}") from e
        finally:
            con.close()
        try:
            folder.place(tmp, path)
            folder.save()
        except OSError as e:
            raise ExportError(path, f"cannot write the export: {e}") from e
    finally:
        shutil.rmtree(private, ignore_errors=True)
    # COPY answers with the number of rows it wrote
    rows = int(res[0]) if res else 0
    return ExportResult(name, path, rows, fmt)
