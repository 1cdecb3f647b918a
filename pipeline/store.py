"""The store stage: DuckDB schema, the writer's statements, and read-only access for callqa's own readers.

Every call is written in one transaction: a crash or a bad row never leaves half a call behind, a
reader in another process never sees half a call, and rows already stored are never touched by a
later failure. The batch opens the file per commit (`open_db`, pipeline/database.py), so others can
read and review while it runs.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

# The file itself (migrations, opening under contention, the batch lock) lives in pipeline/database.py;
# these names stay importable from here, where every caller has always found them.
from callqa.pipeline.database import MIGRATIONS_PACKAGE as MIGRATIONS_PACKAGE
from callqa.pipeline.database import SCHEMA_VERSION as SCHEMA_VERSION
from callqa.pipeline.database import StoreError as StoreError
from callqa.pipeline.database import StoreLocked as StoreLocked
from callqa.pipeline.database import _migrations as _migrations
from callqa.pipeline.database import batch_lock as batch_lock
from callqa.pipeline.database import connect as connect
from callqa.pipeline.database import migrate as migrate
from callqa.pipeline.database import open_db as open_db
from callqa.pipeline.database import retry_locked as retry_locked
from callqa.pipeline.types import CallFailure, CallResult, CallScore


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # A COMMIT that failed (disk full) has already ended the transaction: ROLLBACK would then raise
    # "no transaction is active" and hide the real error.
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# writer


def stored_call_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT call_id FROM calls").fetchall()}


def permanent_failure_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Calls whose bytes failed permanently before: re-running cannot fix them, so skip them."""
    rows = con.execute("SELECT DISTINCT call_id FROM failures WHERE permanent AND call_id IS NOT NULL").fetchall()
    return {r[0] for r in rows}


def start_run(
    con: duckdb.DuckDBPyConnection, flow: str, input_dir: str | None, settings: dict[str, Any], version: str
) -> str:
    run_id = uuid.uuid4().hex
    con.execute(
        "INSERT INTO runs (run_id, flow, input_dir, started_at, status, pipeline_version, settings) "
        "VALUES (?, ?, ?, ?, 'running', ?, ?)",
        [run_id, flow, input_dir, _now(), version, json.dumps(_no_secrets(settings), default=str)],
    )
    return run_id


_SECRET_KEY = re.compile(r"^(.*_)?(token|secret|password|passwd|api_?key|credentials?)$", re.IGNORECASE)


def _no_secrets(v: Any) -> Any:
    # settings leave their secrets out when serialised (config.settings); this keeps any other
    # secret-looking key out of `runs.settings`, which every analyst can read
    if isinstance(v, dict):
        return {k: ("[secret]" if _SECRET_KEY.search(str(k)) else _no_secrets(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_secrets(x) for x in v]
    return v


def record_duplicates(con: duckdb.DuckDBPyConnection, run_id: str, groups: list[dict[str, Any]]) -> None:
    """The run's byte-identical recordings: per call, the file kept and the files with the same audio."""
    con.execute("UPDATE runs SET duplicates = ? WHERE run_id = ?", [json.dumps(groups), run_id])


def close_stale_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Mark runs still 'running' as 'crashed', with the counts of what they did commit.

    The batch calls this holding `batch_lock` (one batch per database, released by the kernel when its
    process dies), so any 'running' row belongs to a batch that died (SIGKILL, power loss, OOM)
    without closing it.
    finished_at stays NULL: when it died is not known.
    """
    stale = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()]
    for run_id in stale:
        con.execute(
            """UPDATE runs SET status = 'crashed',
                   n_processed = (SELECT count(*) FROM calls WHERE run_id = $1),
                   n_failed = (SELECT count(*) FROM failures WHERE run_id = $1),
                   n_flagged = (SELECT count(DISTINCT s.call_id) FROM call_scores s JOIN calls c USING (call_id)
                                WHERE c.run_id = $1 AND s.flagged),
                   audio_s = (SELECT coalesce(sum(duration_s), 0) FROM calls WHERE run_id = $1)
               WHERE run_id = $1""",
            [run_id],
        )
    return stale


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, counts: dict[str, Any], status: str = "completed") -> None:
    con.execute(
        """UPDATE runs SET finished_at = ?, status = ?, n_discovered = ?, n_skipped = ?, n_processed = ?,
           n_failed = ?, n_flagged = ?, audio_s = ?, wall_s = ? WHERE run_id = ?""",
        [
            _now(),
            status,
            counts.get("discovered", 0),
            counts.get("skipped", 0),
            counts.get("processed", 0),
            counts.get("failed", 0),
            counts.get("flagged", 0),
            counts.get("audio_s", 0.0),
            counts.get("wall_s"),
            run_id,
        ],
    )


def _insert_df(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    df = pd.DataFrame(rows)
    # Python lists convert to DuckDB lists row by row (slow for 100k+ rows); JSON text parsed by
    # DuckDB in bulk is an order of magnitude faster.
    list_cols = [c for c in df.columns if isinstance(rows[0].get(c), (list, tuple))]
    for c in list_cols:
        df[c] = [json.dumps(list(v)) for v in df[c]]
    cols = ", ".join(df.columns)
    select = ", ".join(f"""from_json({c}, '["VARCHAR"]') AS {c}""" if c in list_cols else c for c in df.columns)
    con.register("_callqa_rows", df)
    try:
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {select} FROM _callqa_rows")
    finally:
        con.unregister("_callqa_rows")


def _score_rows(call_id: str, score: CallScore, scored_at: datetime) -> tuple[list[dict], dict]:
    crit = [
        {
            "call_id": call_id,
            "scorecard_id": score.scorecard_id,
            "scorecard_version": score.scorecard_version,
            "section_id": c.section_id,
            "criterion_id": c.criterion_id,
            "result": c.result,
            "points": c.points,
            "max_points": c.max_points,
            "auto_fail": c.auto_fail,
            "evidence_event_ids": list(c.evidence_event_ids),
            "rationale": c.rationale,
            "scored_at": scored_at,
        }
        for c in score.criteria
    ]
    total = {
        "call_id": call_id,
        "scorecard_id": score.scorecard_id,
        "scorecard_version": score.scorecard_version,
        "score": score.score,
        "max_score": score.max_score,
        "percent": score.percent,
        "grade": score.grade,
        "auto_fail": score.auto_fail,
        "flagged": score.flagged,
        "flag_reasons": list(score.flag_reasons),
        "scored_at": scored_at,
    }
    return crit, total


def _sidecar_value(meta: dict[str, Any], key: str) -> Any:
    v = meta.get(key)
    return None if v in ("", None) else str(v)


def _started_at(meta: dict[str, Any]) -> datetime | None:
    v = meta.get("started_at")
    if not v:
        return None
    try:
        dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


# call_facts (migration 0012) holds, per call, what call_summary, hold_stats and agent_daily_kpis read from the
# child tables; call_facts_computed defines its rows. A point filter on call_id reaches every child table's
# index (a few ms a call at 1 M calls).
CALL_FACTS_OF_CALL = "SELECT * FROM call_facts_computed WHERE call_id = ?"


def refresh_call_facts(con: duckdb.DuckDBPyConnection, call_ids: list[str] | None = None) -> int:
    """Recompute call_facts for these calls (None: every call without a row), returning the rows written.

    write_call keeps call_facts current; a loader or a fix that writes utterances, events or call_metrics
    itself (callqa.rowgen, bench/db_views.py, an UPDATE by hand) calls this for the calls it touched, else
    call_summary, hold_stats and agent_daily_kpis show those calls as they were."""
    if call_ids is None:
        # the missing ids first (an anti-join of two call_id columns): a few ids are then looked up through
        # the child tables' indexes, where computing the whole view would read them all (3 s CPU at 1 M calls)
        missing = [
            r[0] for r in con.execute("SELECT call_id FROM calls EXCEPT SELECT call_id FROM call_facts").fetchall()
        ]
        if not missing:
            return 0
        call_ids = missing
    ids = sorted(set(call_ids))
    con.execute("DELETE FROM call_facts WHERE call_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    row = con.execute(
        "INSERT INTO call_facts SELECT * FROM call_facts_computed WHERE call_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchone()
    return int(row[0]) if row else 0


def write_call(con: duckdb.DuckDBPyConnection, result: CallResult, run_id: str | None, pipeline_version: str) -> bool:
    """Store one call and everything derived from it in one transaction.

    Returns False (and writes nothing) when the call is already stored, so a rerun or a
    duplicate file in the same batch is harmless.
    """
    src = result.source
    now = _now()
    meta = {k: v for k, v in src.metadata.items() if not k.startswith("_")}
    con.execute("BEGIN TRANSACTION")
    try:
        if con.execute("SELECT 1 FROM calls WHERE call_id = ?", [src.call_id]).fetchone():
            con.execute("ROLLBACK")
            return False
        con.execute(
            """INSERT INTO calls (call_id, source_path, file_name, size_bytes, agent_id, queue, customer_id, direction,
                   started_at, duration_s, channels, sample_rate, codec, language, language_probability, role_method,
                   role_confidence, roles, processed_at, pipeline_version, models, timings, metadata, warnings, status,
                   run_id, scorable_status, scorable_reasons, team, tier, csat, nps)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                       ?, ?, ?, ?)""",
            [
                src.call_id,
                src.path,
                Path(src.path).name,
                src.size_bytes,
                _sidecar_value(meta, "agent_id"),
                _sidecar_value(meta, "queue"),
                _sidecar_value(meta, "customer_id"),
                _sidecar_value(meta, "direction"),
                _started_at(meta),
                result.duration_s,
                result.channels,
                result.sample_rate,
                result.codec,
                result.language,
                result.language_probability,
                result.roles.method if result.roles else None,
                result.roles.confidence if result.roles else None,
                json.dumps(result.roles.mapping) if result.roles else None,
                now,
                pipeline_version,
                json.dumps(result.models),
                json.dumps({k: round(v, 4) for k, v in result.timings.items()}),
                json.dumps(meta, default=str),
                json.dumps(result.warnings),
                "processed",
                run_id,
                result.scorability.status,
                list(result.scorability.reasons),
                _sidecar_value(meta, "team"),
                meta.get("tier"),  # validated by discover (callqa.pipeline.discover._normalise): int or absent
                meta.get("csat"),
                meta.get("nps"),
            ],
        )
        utt_rows, word_rows = [], []
        for u in result.utterances:
            utt_rows.append(
                {
                    "call_id": src.call_id,
                    "seq": u.seq,
                    "speaker": u.speaker,
                    "role": u.role,
                    "role_confidence": u.role_confidence,
                    "channel": u.channel,
                    "start_s": u.start,
                    "end_s": u.end,
                    "text": u.text,
                    "asr_confidence": u.asr_confidence,
                    "emotion": u.emotion,
                    "emotion_score": u.emotion_score,
                    "emotion_method": u.emotion_method,
                    "sentiment": u.sentiment,
                }
            )
            for i, w in enumerate(u.words):
                word_rows.append(
                    {
                        "call_id": src.call_id,
                        "utt_seq": u.seq,
                        "seq": i,
                        "start_s": w.start,
                        "end_s": w.end,
                        "word": w.text,
                        "probability": w.probability,
                        "speaker": u.speaker,
                        "channel": w.channel,
                    }
                )
        _insert_df(con, "utterances", utt_rows)
        _insert_df(con, "words", word_rows)
        _insert_df(
            con,
            "events",
            [
                {
                    "event_id": e.event_id,
                    "call_id": src.call_id,
                    "type": e.type,
                    "start_s": e.start,
                    "end_s": e.end,
                    "speaker": e.speaker,
                    "role": e.role,
                    "evidence": e.evidence,
                    "confidence": e.confidence,
                    "detector_version": e.detector_version,
                    "data": json.dumps(e.data, default=str),
                }
                for e in result.events
            ],
        )
        _insert_df(
            con,
            "call_metrics",
            [
                {"call_id": src.call_id, "name": k, "value": (None if v is None else float(v))}
                for k, v in result.metrics.items()
            ],
        )
        for score in result.scores:
            crit, total = _score_rows(src.call_id, score, now)
            _insert_df(con, "criterion_results", crit)
            _insert_df(con, "call_scores", [total])
        # the call's pre-aggregated row (migration 0012), from its own child rows through their call_id indexes
        con.execute(f"INSERT INTO call_facts {CALL_FACTS_OF_CALL}", [src.call_id])
        con.execute("COMMIT")
        return True
    except Exception:
        _rollback(con)
        raise


def register_scorecard(con: duckdb.DuckDBPyConnection, card: Any, source_path: str | None = None) -> bool:
    """Record a scorecard version; refuse a second, different rule set under the same version.

    Returns True when the version is new. Raises StoreError when (id, version) is already stored
    with other rules, because results filed under one version must mean one thing.
    """
    h = card.content_hash()
    row = con.execute(
        "SELECT content_hash FROM scorecards WHERE scorecard_id = ? AND version = ?", [card.id, card.version]
    ).fetchone()
    if row:
        if row[0] != h:
            raise StoreError(
                source_path,
                f"scorecard {card.id!r} version {card.version} is already stored with different rules; "
                "bump `version` in the YAML to keep both sets of results",
            )
        return False
    con.execute(
        "INSERT INTO scorecards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            card.id,
            card.version,
            h,
            card.name,
            list(card.language),
            json.dumps(card.model_dump(mode="json", by_alias=True)),
            source_path,
            _now(),
        ],
    )
    return True


def replace_scores(
    con: duckdb.DuckDBPyConnection,
    scorecard_id: str,
    version: int,
    scored: list[tuple[str, CallScore]],
    calls: Sequence[str] | None = None,
) -> None:
    """Store a rescoring run for one scorecard version in one transaction (all or nothing).

    `calls`: replace the version's results of these calls only (one commit of a rescore that commits
    call by chunk, flows/rescore.py); None: of every call."""
    now = _now()
    crit_rows: list[dict] = []
    totals: list[dict] = []
    for call_id, score in scored:
        crit, total = _score_rows(call_id, score, now)
        crit_rows.extend(crit)
        totals.append(total)
    only, params = "", [scorecard_id, version]
    if calls is not None:
        only, params = " AND call_id IN (SELECT unnest(?::VARCHAR[]))", [scorecard_id, version, list(calls)]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM criterion_results WHERE scorecard_id = ? AND scorecard_version = ?{only}", params)
        con.execute(f"DELETE FROM call_scores WHERE scorecard_id = ? AND scorecard_version = ?{only}", params)
        _insert_df(con, "criterion_results", crit_rows)
        _insert_df(con, "call_scores", totals)
        con.execute("COMMIT")
    except Exception:
        _rollback(con)
        raise


def write_failure(con: duckdb.DuckDBPyConnection, failure: CallFailure, run_id: str | None) -> bool:
    """Record a failed file. A permanent failure of the same bytes is recorded once, not per run."""
    if failure.permanent and failure.call_id:
        if con.execute("SELECT 1 FROM failures WHERE call_id = ? AND permanent", [failure.call_id]).fetchone():
            return False
    con.execute(
        "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            uuid.uuid4().hex,
            run_id,
            failure.path,
            failure.call_id,
            failure.stage,
            failure.error,
            failure.permanent,
            _now(),
        ],
    )
    return True


# ---------------------------------------------------------------------------------------------
# readers


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def table_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[str] = ()) -> dict[str, int]:
    names: Sequence[str] = list(tables) or [
        "calls",
        "utterances",
        "words",
        "events",
        "call_metrics",
        "criterion_results",
        "call_scores",
        "reviews",
        "runs",
        "failures",
    ]
    return {t: (con.execute(f"SELECT count(*) FROM {t}").fetchone() or (0,))[0] for t in names}
