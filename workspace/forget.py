"""Erasure and retention: forget calls everywhere callqa keeps them, and leave a tombstone in the review chain.

`erase_calls` removes a call's rows from every table that has a `call_id` column (found in the schema, so
a table added later is not forgotten), its failures, its redacted audio copy, its report page and audio,
and a staged Parquet file, in one transaction, and appends an 'erasure' entry to the keyed chain: who (the
OS user), when, why and which call ids, never content, plus the seq and MAC of each review removed, so
`callqa audit` verifies across the gap. The nightly flow skips recordings whose call id was forgotten, so
a recording still in the input folder is not stored again. Retention (`retention.days`) is the same
erasure for calls older than N days, run at the start of each nightly run.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from callqa.pipeline.pii import RedactionOptions, redact_text
from callqa.pipeline.store import StoreError
from callqa.pipeline.types import CallQAError
from callqa.workspace import chain
from callqa.workspace.ledger import AuditError, AuditKey, database_path, head_path, now, os_user


@dataclass(frozen=True)
class Erasure:
    call_ids: list[str]
    rows: dict[str, int]  # rows removed per table
    reviews: list[int]  # chain positions of the reviews removed
    files: list[str]  # files removed (or, for a dry run, to remove)
    kept: list[str] = field(default_factory=list)  # named by a call but not removed, with why
    seq: int | None = None  # the tombstone's chain position (None: dry run)


def call_id_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every base table with a call_id column."""
    rows = con.execute(
        """SELECT DISTINCT c.table_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
           WHERE t.table_type = 'BASE TABLE' AND t.table_schema = 'main' AND c.column_name = 'call_id'
           ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]


def customer_calls(con: duckdb.DuckDBPyConnection, customer_id: str, redaction: Any = None) -> list[str]:
    """The customer's stored calls: under the id as given (redaction.customer_id = keep, or calls stored
    before pseudonyms) and under its pseudonym, when the pseudonym key exists (it is never created here)."""
    from callqa.pipeline.redact import PSEUDONYM_KEY_ENV, default_key_file, load_pseudonym_key, pseudonymise

    forms = [customer_id]
    key_file = getattr(redaction, "pseudonym_key_file", None)
    if os.environ.get(PSEUDONYM_KEY_ENV) or Path(key_file or default_key_file()).expanduser().exists():
        forms.append(pseudonymise(customer_id, load_pseudonym_key(key_file)))
    rows = con.execute(
        "SELECT call_id FROM calls WHERE customer_id IN (SELECT unnest(?)) ORDER BY call_id", [forms]
    ).fetchall()
    return [r[0] for r in rows]


def expired_calls(con: duckdb.DuckDBPyConnection, days: int, as_of: datetime | None = None) -> list[str]:
    """Calls older than `days` (by started_at, else processed_at) at `as_of` (UTC, default now)."""
    cutoff = (as_of or now()) - timedelta(days=days)
    rows = con.execute(
        "SELECT call_id FROM calls WHERE coalesce(started_at, processed_at) < ? ORDER BY call_id", [cutoff]
    ).fetchall()
    return [r[0] for r in rows]


def forgotten_call_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Call ids with a tombstone: never stored again, even when their recording is still in the input folder."""
    rows = con.execute("SELECT DISTINCT unnest(call_ids) FROM audit_log WHERE kind = 'erasure'").fetchall()
    return {r[0] for r in rows}


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.parent.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _files(
    con: duckdb.DuckDBPyConnection,
    ids: Sequence[str],
    audio_dir: Path | None,
    report_dir: Path | None,
    staging_dir: Path | None,
) -> tuple[list[Path], list[str]]:
    """(files to remove, files named by a call's metadata that are not callqa's to remove).

    Only files in the configured folders are removed: a path in stored metadata could have come from a
    sidecar, and erasure must never become a way to delete arbitrary files."""
    remove: list[Path] = []
    kept: list[str] = []
    meta = dict(
        con.execute("SELECT call_id, metadata FROM calls WHERE call_id IN (SELECT unnest(?))", [list(ids)]).fetchall()
    )
    for cid in ids:
        found: list[Path] = []
        if audio_dir is not None and audio_dir.is_dir():
            found += audio_dir.glob(f"*.{cid[:12]}.redacted.wav")
        if report_dir is not None:
            found += [report_dir / "calls" / f"{cid}.html", *(report_dir / "audio").glob(f"{cid}.*")]
        if staging_dir is not None:
            found.append(staging_dir / f"{cid}.call.parquet")
        try:
            named = json.loads(meta.get(cid) or "{}").get("redacted_audio")
        except (ValueError, AttributeError):
            named = None
        if named:
            p = Path(named)
            if audio_dir is not None and _inside(p, audio_dir):
                found.append(p)
            elif os.path.lexists(p) and p not in found:
                kept.append(f"{p} (outside redaction.audio_dir: not removed)")
        remove += [p for p in dict.fromkeys(found) if os.path.lexists(p)]
    return remove, kept


def _scrub_run_duplicates(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> int:
    """Drop the forgotten calls' groups from runs.duplicates ([{"call_id", "kept", "same_audio"}]): file names."""
    if not con.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'runs' AND column_name = 'duplicates'"
    ).fetchone():
        return 0
    gone, n = set(ids), 0
    rows = con.execute(
        "SELECT run_id, CAST(duplicates AS VARCHAR) FROM runs WHERE regexp_matches(CAST(duplicates AS VARCHAR), ?)",
        ["|".join(ids)],
    ).fetchall()
    for run_id, text in rows:
        groups = json.loads(text)
        if not isinstance(groups, list):
            continue  # an unknown shape: left for the residue check to refuse
        kept = [g for g in groups if not (isinstance(g, dict) and g.get("call_id") in gone)]
        n += len(groups) - len(kept)
        con.execute("UPDATE runs SET duplicates = ? WHERE run_id = ?", [json.dumps(kept) if kept else None, run_id])
    return n


def _residue(con: duckdb.DuckDBPyConnection, ids: Sequence[str], skip: set[str]) -> list[str]:
    """Text columns of tables without call_id that still mention a call id (a table erasure does not know)."""
    cols = con.execute(
        """SELECT c.table_name, c.column_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
           WHERE t.table_type = 'BASE TABLE' AND t.table_schema = 'main'
             AND (c.data_type LIKE 'VARCHAR%' OR c.data_type LIKE 'JSON%' OR c.data_type LIKE '%[]')"""
    ).fetchall()
    pattern = "|".join(ids)  # call ids are hex digests: no regex metacharacters
    out = []
    for table, col in cols:
        if table in skip:
            continue
        n = con.execute(
            f'SELECT count(*) FROM "{table}" WHERE regexp_matches(CAST("{col}" AS VARCHAR), ?)', [pattern]
        ).fetchone()
        if n and n[0]:
            out.append(f"{table}.{col} ({n[0]} rows)")
    return out


def erase_calls(
    con: duckdb.DuckDBPyConnection,
    call_ids: Sequence[str],
    reason: str,
    key: AuditKey | None,
    *,
    actor: str | None = None,
    selector: str = "call_id",
    audio_dir: Path | None = None,
    report_dir: Path | None = None,
    staging_dir: Path | None = None,
    redaction: RedactionOptions | None = RedactionOptions(),
    dry_run: bool = False,
) -> Erasure:
    """Forget these calls (see the module docstring); `key` may be None only for a dry run."""
    ids = sorted(set(call_ids))
    if not ids:
        raise StoreError(None, "no call to forget")
    if not reason.strip():
        raise StoreError(None, "an erasure needs a reason (--reason), recorded in the tombstone")
    reason = redact_text(reason, redaction)[0] if redaction is not None else reason
    head_file = head_path(database_path(con))
    tables = call_id_tables(con)
    paths = [
        r[0] for r in con.execute("SELECT source_path FROM calls WHERE call_id IN (SELECT unnest(?))", [ids]).fetchall()
    ]
    remove, kept = _files(con, ids, audio_dir, report_dir, staging_dir)
    if dry_run or key is None:
        if not dry_run:
            raise AuditError(None, "an erasure needs the audit key")
        rows = {
            t: int(con.execute(f'SELECT count(*) FROM "{t}" WHERE call_id IN (SELECT unnest(?))', [ids]).fetchone()[0])
            for t in tables
        }
        seqs = con.execute(
            "SELECT seq FROM reviews WHERE call_id IN (SELECT unnest(?)) AND seq IS NOT NULL ORDER BY seq", [ids]
        ).fetchall()
        return Erasure(ids, {t: n for t, n in rows.items() if n}, [s[0] for s in seqs], [str(p) for p in remove], kept)
    chain.seal_legacy(con, key, head_file, actor or os_user())  # erased reviews need their MACs recorded
    con.execute("BEGIN TRANSACTION")
    try:
        after = chain.check_tail(con, key, head_file)
        erased = con.execute(
            "SELECT seq, mac FROM reviews WHERE call_id IN (SELECT unnest(?)) AND seq IS NOT NULL ORDER BY seq",
            [ids],
        ).fetchall()
        rows: dict[str, int] = {}
        for t in tables:
            n = con.execute(f'DELETE FROM "{t}" WHERE call_id IN (SELECT unnest(?))', [ids]).fetchone()
            if n and n[0]:
                rows[t] = int(n[0])
        # a failure recorded before the bytes were hashed has no call_id, only the path
        n = con.execute("DELETE FROM failures WHERE path IN (SELECT unnest(?))", [paths]).fetchone()
        if n and n[0]:
            rows["failures"] = rows.get("failures", 0) + int(n[0])
        scrubbed = _scrub_run_duplicates(con, ids)
        if scrubbed:
            rows["runs.duplicates"] = scrubbed
        residue = _residue(con, ids, set(tables) | {"audit_log"})
        if residue:
            raise AuditError(
                None,
                f"the call ids are still in {', '.join(residue)}, which erasure does not know how to clear; "
                "nothing was removed",
            )
        detail: dict[str, Any] = {
            "selector": selector,
            "rows": rows,
            "reviews": [[int(s), m] for s, m in erased],
            "files": len(remove),
        }
        seq, mac = chain.append_entry(con, key, after, "erasure", actor or os_user(), reason, ids, detail)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    removed = []
    for p in remove:
        try:
            p.unlink()  # a link is removed, never its target
            removed.append(str(p))
        except OSError as e:
            kept.append(f"{p} (could not be removed: {e})")
    chain.anchor(con, key, head_file, (seq, mac))
    con.execute("CHECKPOINT")  # fold the deletion into the database file now, not at some later write
    return Erasure(ids, rows, [int(s) for s, _ in erased], removed, kept, seq)


def purge_expired(
    con: duckdb.DuckDBPyConnection, settings: Any, staging_dir: Path | None = None, as_of: datetime | None = None
) -> Erasure | None:
    """Retention: forget calls older than `settings.retention.days` (None when it is off or nothing is due)."""
    days = settings.retention.days
    if days is None:
        return None
    ids = expired_calls(con, days, as_of)
    if not ids:
        return None
    key = chain.writer_key(con, settings.audit.key_file, head_path(database_path(con)))
    red = settings.redaction
    return erase_calls(
        con,
        ids,
        f"retention: older than {days} days",
        key,
        actor=f"retention ({os_user()})",
        selector="retention",
        audio_dir=red.audio_dir,
        report_dir=settings.report.out_dir,
        staging_dir=staging_dir,
        redaction=None,
    )


def retention_step(con: duckdb.DuckDBPyConnection, settings: Any, staging: str | None, logger: Any) -> int:
    """The nightly flow's retention purge: calls forgotten (0 when off); a problem skips it, never the run."""
    try:
        erased = purge_expired(con, settings, Path(staging) if staging else None)
    except CallQAError as e:
        logger.warning("retention purge skipped (the calls are kept): %s", e)
        return 0
    if erased is None:
        return 0
    logger.info(
        "retention: forgot %d call(s) older than %d days (tombstone #%s)",
        len(erased.call_ids),
        settings.retention.days,
        erased.seq,
    )
    return len(erased.call_ids)


def compact_database(db_path: Path | str) -> tuple[int, int]:
    """Rewrite the database into a fresh file and swap it in; (bytes before, after). No connection may be open.

    DuckDB keeps deleted rows' bytes in free blocks until new data reuses them (measured: a forgotten call's
    words were still readable in the file after DELETE and CHECKPOINT), so an erasure request ends with a copy
    that never held them (COPY FROM DATABASE keeps every table, constraint, view and macro)."""
    db_path = Path(db_path)
    tmp = db_path.with_name(f".{db_path.name}.compact.tmp")
    for p in (tmp, Path(f"{tmp}.wal")):
        if os.path.lexists(p):
            p.unlink()  # left by an interrupted compaction (a link is removed, never followed)
    before = db_path.stat().st_size
    con = duckdb.connect(str(db_path))
    try:
        name = str(con.execute("SELECT current_database()").fetchone()[0]).replace('"', '""')
        con.execute(f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS callqa_compact")
        con.execute(f'COPY FROM DATABASE "{name}" TO callqa_compact')
        con.execute("DETACH callqa_compact")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.chmod(tmp, stat.S_IMODE(db_path.stat().st_mode))
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, db_path)
    dir_fd = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return before, db_path.stat().st_size
