"""`callqa export`: any table or view of the QA database to Parquet or CSV.

DuckDB writes the file itself (COPY ... TO), from a read-only connection: an export can never
change the database, and a million-row view streams to disk without passing through Python.
Parquet keeps native types (lists stay lists, timestamps stay timestamps); CSV turns list and
struct columns into JSON text so that a spreadsheet or pandas can read them back unambiguously.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from callqa.pipeline import store
from callqa.pipeline.types import CallQAError

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


def export(
    db_path: str | Path,
    name: str,
    fmt: str,
    out: str | Path | None = None,
    *,
    since: date | None = None,
    until: date | None = None,
    limit: int | None = None,
) -> ExportResult:
    """Write table or view `name` to `out` (default: ./<name>.<fmt>).

    `since`/`until` filter on the relation's `day` column (the call's date) where it has one.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(None, f"unknown format {fmt!r}: use parquet or csv")
    path = Path(out) if out is not None else Path(f"{name}.{fmt}")
    if path.is_dir():
        path = path / f"{name}.{fmt}"
    con = store.connect(db_path, read_only=True)
    try:
        known = relations(con)
        if name not in known:
            raise ExportError(db_path, f"no table or view named {name!r}; exportable: {', '.join(sorted(known))}")
        where, params = [], []
        if since or until:
            cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_quote(name)}").fetchall()}
            if "day" not in cols:
                raise ExportError(db_path, f"{name!r} has no `day` column, so --since/--until cannot filter it")
            if since:
                where.append("day >= ?")
                params.append(since)
            if until:
                where.append("day <= ?")
                params.append(until)
        sql = f"SELECT {_select_list(con, name, fmt)} FROM {_quote(name)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(path, f"cannot create the output folder: {e}") from e
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
        tmp = path.with_name(path.name + ".part")
        try:
            # COPY cannot bind parameters inside its query: filter values are dates, rendered as literals
            literal_sql = sql
            for p in params:
                literal_sql = literal_sql.replace("?", f"DATE '{p.isoformat()}'", 1)
            res = con.execute(
                f"COPY ({literal_sql}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({options})"
            ).fetchone()
            tmp.replace(path)
        except duckdb.Error as e:
            tmp.unlink(missing_ok=True)
            raise ExportError(path, f"export of {name!r} failed: {e}") from e
        except OSError as e:
            raise ExportError(path, f"cannot write the export: {e}") from e
        # COPY answers with the number of rows it wrote
        rows = int(res[0]) if res else 0
    finally:
        con.close()
    return ExportResult(name, path, int(rows), fmt)
