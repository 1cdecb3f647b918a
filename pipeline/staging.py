"""Parquet staging for very large runs: workers write one Parquet file per call, one writer bulk-loads.

On a big cluster the single DuckDB writer would otherwise receive every call's full result over the
network and insert it row group by row group. Instead each worker stores its call as ONE Parquet
file in a shared staging folder (one row; one LIST<STRUCT> column per table, typed exactly like the
DuckDB table because the rows are built by the same `store.write_call` into an in-memory database
carrying the same migrations), and returns only a small receipt. The writer then loads hundreds of
files per transaction with `read_parquet`, which is what DuckDB is fastest at.

Crash safety: a file is written under a temporary name and renamed, so a staged file is always
complete; a load commits all of its calls or none; files are deleted only after the commit, and a
file whose call is already stored is skipped (and deleted). A run killed between staging and loading
leaves its files behind, and the next run loads them first: nothing is lost and nothing doubles.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from callqa.pipeline import store
from callqa.pipeline.types import CallQAError, CallResult

SUFFIX = ".call.parquet"
# Tables that hang off a call and are written by store.write_call; anything else (runs, failures,
# reviews) is the writer's own business.
_NOT_PER_CALL = {"runs", "failures", "reviews", "schema_migrations", "sample_calls"}
_CALL_ID = re.compile(r"^[0-9a-f]{64}$")


class StagingError(CallQAError):
    stage = "store"


@dataclass(frozen=True)
class StagedCall:
    """What a worker returns in Parquet mode instead of the whole CallResult."""

    path: str  # the recording
    call_id: str
    parquet: str  # the staged file
    duration_s: float
    flagged: bool


def _per_call_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """SELECT table_name FROM information_schema.columns
           WHERE column_name = 'call_id' AND table_schema = 'main'
             AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')
           ORDER BY table_name"""
    ).fetchall()
    return [r[0] for r in rows if r[0] not in _NOT_PER_CALL]


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def stage_call(result: CallResult, staging_dir: str | Path, run_id: str | None, pipeline_version: str) -> StagedCall:
    """Write one call's rows as `<staging_dir>/<call_id>.call.parquet` (atomically) and return a receipt."""
    staging = Path(staging_dir)
    staging.mkdir(parents=True, exist_ok=True)
    call_id = result.source.call_id
    dest = staging / f"{call_id}{SUFFIX}"
    tmp = staging / f".{call_id}.{os.getpid()}.tmp"
    mem = duckdb.connect(":memory:")
    try:
        store.migrate(mem)
        store.write_call(mem, result, run_id, pipeline_version)
        tables = _per_call_tables(mem)
        cols = ", ".join(f"(SELECT list(t) FROM {t} AS t) AS {t}" for t in tables)
        mem.execute(
            f"COPY (SELECT '{call_id}' AS call_id, {cols}) TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)"
        )
    except duckdb.Error as e:
        tmp.unlink(missing_ok=True)
        raise StagingError(result.source.path, f"cannot stage the call as Parquet in {staging}: {e}") from e
    finally:
        mem.close()
    os.replace(tmp, dest)
    return StagedCall(
        path=result.source.path,
        call_id=call_id,
        parquet=str(dest),
        duration_s=result.duration_s,
        flagged=any(s.flagged for s in result.scores),
    )


def staged_files(staging_dir: str | Path) -> list[Path]:
    """Complete staged files (temporary ones from a killed worker are ignored)."""
    d = Path(staging_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith(SUFFIX) and _CALL_ID.match(p.name[: -len(SUFFIX)]))


def bulk_load(con: duckdb.DuckDBPyConnection, files: Iterable[str | Path]) -> list[str]:
    """Load staged files into the database in one transaction; returns the call_ids newly stored.

    Calls already in `calls` are skipped, so loading the same file twice (a rerun after a kill
    between commit and cleanup) stores nothing twice. Loaded and skipped files are deleted after
    the commit.
    """
    paths = [Path(f) for f in files]
    if not paths:
        return []
    file_list = "[" + ", ".join(f"'{_sql_path(f)}'" for f in paths) + "]"
    src = f"read_parquet({file_list}, union_by_name = true)"
    con.execute("BEGIN TRANSACTION")
    try:
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        con.execute(
            f"""CREATE TEMP TABLE _callqa_stage AS
                SELECT * FROM {src} AS s
                WHERE s.call_id NOT IN (SELECT call_id FROM calls)
                QUALIFY row_number() OVER (PARTITION BY s.call_id) = 1"""
        )
        new_ids = [r[0] for r in con.execute("SELECT call_id FROM _callqa_stage ORDER BY call_id").fetchall()]
        # calls first: the other tables refer to it
        tables = sorted(_per_call_tables(con), key=lambda t: (t != "calls", t))
        for t in tables:
            if t not in have:
                continue  # staged by an older schema that did not have this table
            con.execute(
                f"""INSERT INTO {t} BY NAME
                    SELECT unnest(r) FROM (SELECT unnest({t}) AS r FROM _callqa_stage WHERE {t} IS NOT NULL)"""
            )
        con.execute("DROP TABLE _callqa_stage")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    for f in paths:
        f.unlink(missing_ok=True)
    return new_ids
