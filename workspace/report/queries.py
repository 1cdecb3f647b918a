"""The report's SQL: every number on the site is a query over the views (parameters bound, never formatted in)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from callqa.pipeline import store


@dataclass(frozen=True)
class Period:
    since: date | None = None
    until: date | None = None

    def where(self, col: str = "day") -> tuple[str, list]:
        parts, params = [], []
        if self.since:
            parts.append(f"{col} >= ?")
            params.append(self.since)
        if self.until:
            parts.append(f"{col} <= ?")
            params.append(self.until)
        return (" AND ".join(parts) or "TRUE"), params

    @property
    def label(self) -> str:
        if not self.since and not self.until:
            return "all stored calls"
        return f"{self.since or '…'} to {self.until or 'today'}"


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | None = None) -> list[dict]:
    cur = con.execute(sql, list(params or []))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def main_scorecard(con: duckdb.DuckDBPyConnection) -> tuple[str | None, int | None]:
    row = con.execute(
        """SELECT scorecard_id, max(scorecard_version) FROM current_scores
           GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"""
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def scorecard_version(con: duckdb.DuckDBPyConnection, scorecard: str) -> int | None:
    row = con.execute(
        "SELECT max(scorecard_version) FROM current_scores WHERE scorecard_id = ?", [scorecard]
    ).fetchone()
    return row[0] if row else None


def _score_filter(scorecard: str | None) -> tuple[str, list]:
    if scorecard is None:
        return "TRUE", []
    return "(scorecard_id = ? OR scorecard_id IS NULL)", [scorecard]


def _calls_filter(period: Period, scorecard: str | None) -> tuple[str, list]:
    """The period's calls scored on `scorecard` (or not scored at all), over a view with `day` and `scorecard_id`."""
    pw, pp = period.where("day")
    sw, sp = _score_filter(scorecard)
    return f"{pw} AND {sw}", pp + sp


# ------------------------------------------------------------------------------------------------
# dashboard


def totals(con, period: Period, scorecard: str | None) -> dict[str, Any]:
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        SELECT count(*) AS calls, coalesce(sum(duration_s), 0) / 3600 AS hours,
               count(*) FILTER (WHERE flagged) AS flagged,
               avg(percent) AS avg_percent, count(*) FILTER (WHERE auto_fail) AS auto_failed,
               count(DISTINCT agent_id) AS agents, count(*) FILTER (WHERE percent IS NULL) AS unscored
        FROM call_summary WHERE {where}""",
        params,
    )[0]


def _failures_filter(period: Period) -> tuple[str, list]:
    return period.where("CAST(created_at AS DATE)")


def failures_total(con, period: Period) -> int:
    fw, fp = _failures_filter(period)
    return con.execute(f"SELECT count(*) FROM failures WHERE {fw}", fp).fetchone()[0]


def failure_rows(con, period: Period) -> list[dict]:
    fw, fp = _failures_filter(period)
    return rows(
        con, f"SELECT created_at, path, stage, error FROM failures WHERE {fw} ORDER BY created_at DESC LIMIT 50", fp
    )


def recordings_total(con, period: Period) -> dict[str, int]:
    """{status: calls} of the period's recordings to check (unscorable: not graded; partial: agent side only)."""
    pw, pp = period.where("day")
    sql = f"SELECT scorable_status, count(*) AS n FROM recordings_to_check WHERE {pw} GROUP BY 1"
    return {r["scorable_status"]: r["n"] for r in rows(con, sql, pp)}


def recording_rows(con, period: Period) -> list[dict]:
    """The period's recordings to check (callqa.pipeline.scorability), not graded ones first, then newest."""
    pw, pp = period.where("day")
    return rows(
        con,
        f"""SELECT call_id, file_name, agent_id, queue, started_at, processed_at, duration_s, scorable_status,
                   scorable_reasons
            FROM recordings_to_check WHERE {pw}
            ORDER BY scorable_status = 'partial', processed_at DESC, call_id LIMIT 100""",
        pp,
    )


def score_bins(con, period: Period, scorecard: str | None) -> list[dict]:
    """The score distribution binned in SQL: a million calls are twenty bars, not a million points."""
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        SELECT least(floor(percent / 5) * 5, 95) AS b, count(*) AS n FROM call_summary
        WHERE {where} AND percent IS NOT NULL GROUP BY 1 ORDER BY 1""",
        params,
    )


def grade_counts(con, period: Period, scorecard: str | None) -> dict[str, int]:
    where, params = _calls_filter(period, scorecard)
    return {
        r["grade"] or "na": r["n"]
        for r in rows(con, f"SELECT grade, count(*) AS n FROM call_summary WHERE {where} GROUP BY 1", params)
    }


def flag_reasons(con, period: Period, scorecard: str | None) -> list[dict]:
    """Calls per kind of flag reason: the reason without its call's own figures and quotes ("long hold:
    hold_max_s = 125" counts as "long hold: hold_max_s"; an escalation without the customer's words), so
    the chart has one bar per rule, not one per call."""
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        SELECT regexp_replace(label, '^([^:]*:[^:]*?)(: | = ).*$', '\\1') AS reason, count(DISTINCT call_id) AS n
        FROM flagged_reasons WHERE {where}
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15""",
        params,
    )


def criterion_rates(con, period: Period, scorecard: str, version: int | None) -> list[dict]:
    if period.since is None and period.until is None:
        return rows(
            con,
            """SELECT criterion_id, n, passed, failed, not_applicable, pass_rate, auto_fail
                            FROM criterion_pass_rates WHERE scorecard_id = ? AND scorecard_version = ?
                            ORDER BY section_id, criterion_id""",
            [scorecard, version],
        )
    # the view's aggregates, restricted to the period's calls
    pw, pp = period.where("CAST(coalesce(c.started_at, c.processed_at) AS DATE)")
    return rows(
        con,
        f"""
        SELECT r.criterion_id, count(*) AS n, count(*) FILTER (WHERE r.result = 'pass') AS passed,
               count(*) FILTER (WHERE r.result = 'fail') AS failed,
               count(*) FILTER (WHERE r.result = 'na') AS not_applicable,
               count(*) FILTER (WHERE r.result = 'pass')
                 / nullif(count(*) FILTER (WHERE r.result <> 'na'), 0) AS pass_rate,
               bool_or(r.auto_fail) AS auto_fail
        FROM criterion_results r JOIN calls c USING (call_id)
        WHERE r.scorecard_id = ? AND r.scorecard_version = ? AND {pw}
        GROUP BY r.section_id, r.criterion_id ORDER BY r.section_id, r.criterion_id""",
        [scorecard, version] + pp,
    )


def hold_summary(con, period: Period) -> dict[str, Any]:
    pw, pp = period.where("day")
    return rows(
        con,
        f"""
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE hold_count > 0) AS held,
               avg(hold_total_s) FILTER (WHERE hold_count > 0) AS hold_mean,
               max(hold_max_s) AS hold_max, sum(hold_total_s) AS hold_total, sum(hold_count) AS holds,
               sum(holds_unannounced) AS unannounced, sum(holds_announced) AS announced,
               sum(holds_thanked) AS thanked,
               count(*) FILTER (WHERE dead_air_total_s > 0) AS dead,
               avg(dead_air_total_s) FILTER (WHERE dead_air_total_s > 0) AS dead_mean,
               max(dead_air_total_s) AS dead_max, sum(dead_air_total_s) AS dead_total
        FROM hold_stats WHERE {pw}""",
        pp,
    )[0]


def hold_histogram(con, period: Period) -> list[dict]:
    """Hold and dead-air seconds per call in 15 s bins, the last bin holding 300 s or more."""
    pw, pp = period.where("day")
    return rows(
        con,
        f"""
        SELECT 'hold' AS kind, least(floor(hold_total_s / 15) * 15, 300) AS b, count(*) AS n FROM hold_stats
        WHERE {pw} AND hold_total_s > 0 GROUP BY ALL
        UNION ALL
        SELECT 'dead air', least(floor(dead_air_total_s / 15) * 15, 300), count(*) FROM hold_stats
        WHERE {pw} AND dead_air_total_s > 0 GROUP BY ALL ORDER BY 1, 2""",
        pp + pp,
    )


def agent_rows(con, period: Period, scorecard: str | None) -> list[dict]:
    pw, pp = period.where("day")
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        WITH a AS (
            SELECT agent_id, sum(calls) AS calls,
                   sum(avg_percent * calls) FILTER (WHERE avg_percent IS NOT NULL)
                     / nullif(sum(calls) FILTER (WHERE avg_percent IS NOT NULL), 0) AS avg_percent,
                   sum(flagged) / sum(calls) AS flagged_rate, sum(auto_failed) AS auto_failed
            FROM agent_daily WHERE {where} GROUP BY 1
        ), k AS (  -- averages over the calls that have the metric
            SELECT agent_id,
                   sum(avg_hold_s * calls)
                     / nullif(sum(calls) FILTER (WHERE avg_hold_s IS NOT NULL), 0) AS avg_hold_s,
                   sum(avg_dead_air_s * calls)
                     / nullif(sum(calls) FILTER (WHERE avg_dead_air_s IS NOT NULL), 0) AS avg_dead_air_s,
                   sum(avg_talk_ratio_agent * calls)
                     / nullif(sum(calls) FILTER (WHERE avg_talk_ratio_agent IS NOT NULL), 0) AS talk_ratio,
                   sum(avg_customer_emotion_end * calls)
                     / nullif(sum(calls) FILTER (WHERE avg_customer_emotion_end IS NOT NULL), 0) AS emotion_end
            FROM agent_daily_kpis WHERE {pw} GROUP BY 1
        )
        SELECT a.*, k.avg_hold_s, k.avg_dead_air_s, k.talk_ratio, k.emotion_end
        FROM a LEFT JOIN k USING (agent_id) ORDER BY avg_percent DESC NULLS LAST, calls DESC LIMIT 200""",
        params + pp,
    )


def daily_scores(con, period: Period, scorecard: str | None) -> list[dict]:
    """The average score over all agents per day (`p`), and the day's calls (`n`)."""
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        SELECT day, sum(avg_percent * calls) FILTER (WHERE avg_percent IS NOT NULL)
                      / nullif(sum(calls) FILTER (WHERE avg_percent IS NOT NULL), 0) AS p, sum(calls) AS n
        FROM agent_daily WHERE {where} GROUP BY 1 ORDER BY 1""",
        params,
    )


def agent_days(con, period: Period, scorecard: str | None, agents: list[str]) -> list[dict]:
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""SELECT agent_id, day, avg_percent AS p, calls FROM agent_daily
                         WHERE {where} AND agent_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY agent_id, day""",
        params + [agents],
    )


def flagged_rows(con, period: Period, scorecard: str | None) -> list[dict]:
    where, params = _calls_filter(period, scorecard)
    return rows(
        con,
        f"""
        SELECT call_id, file_name, agent_id, queue, started_at, processed_at, duration_s, percent, grade, flag_reasons
        FROM flagged_queue WHERE {where} LIMIT 200""",
        params,
    )


# ------------------------------------------------------------------------------------------------
# call pages


def select_calls(con, period: Period, scorecard: str | None, limit: int, call_ids: Sequence[str] | None) -> list[str]:
    """The calls that get a page: the period's flagged calls (queue order), then the newest, up to `limit`."""
    if call_ids is not None:
        return list(dict.fromkeys(call_ids))
    if limit <= 0:
        return []
    where, params = _calls_filter(period, scorecard)
    flagged = [
        r[0]
        for r in con.execute(f"SELECT call_id FROM flagged_queue WHERE {where} LIMIT ?", params + [limit]).fetchall()
    ]
    seen = set(flagged)
    rest = [
        r[0]
        for r in con.execute(
            f"""SELECT call_id FROM calls WHERE {period.where("CAST(coalesce(started_at, processed_at) AS DATE)")[0]}
            ORDER BY coalesce(started_at, processed_at) DESC LIMIT ?""",
            period.where()[1] + [limit + len(flagged)],
        ).fetchall()
    ]
    out = flagged + [c for c in rest if c not in seen]
    return out[:limit]


def _group(rs: Iterable[dict], key: str = "call_id") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rs:
        out[r[key]].append(r)
    return out


def call_data(con, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Everything the pages need for these calls, in one query per table (not one per call)."""
    p = [ids]
    # the ids as constants: call_summary's joins then look each call up through the call_id indexes (migration
    # 0012), where a join against unnest(?) scans call_scores and call_facts (650 ms CPU at 1 M calls, 8 ms)
    summary = {
        r["call_id"]: r
        for r in rows(
            con,
            f"""
        SELECT cs.*, c.metadata, c.roles, c.role_confidence, c.language_probability
        FROM call_summary cs JOIN calls c USING (call_id)
        WHERE cs.call_id IN ({", ".join("?" * len(ids)) or "NULL"})""",
            list(ids),
        )
    }
    utts = _group(
        rows(
            con,
            """
        SELECT call_id, seq, speaker, role, channel, start_s, end_s, text, emotion, emotion_score, emotion_method,
               sentiment
        FROM utterances WHERE call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY call_id, start_s, seq""",
            p,
        )
    )
    events = _group(
        rows(
            con,
            """
        SELECT call_id, event_id, type, start_s, end_s, speaker, role, evidence, confidence, data
        FROM events WHERE call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY call_id, start_s""",
            p,
        )
    )
    crit = _group(
        rows(
            con,
            """
        SELECT r.call_id, r.section_id, r.criterion_id, r.result, r.points, r.max_points, r.auto_fail,
               r.evidence_event_ids, r.rationale
        FROM criterion_results r
        WHERE r.call_id IN (SELECT unnest(?::VARCHAR[]))
          -- the current versions as a list, not a join, whose dynamic filter would scan call_scores (0012)
          AND list_contains((SELECT list(struct_pack(c := call_id, i := scorecard_id, v := scorecard_version))
                             FROM current_scores WHERE call_id IN (SELECT unnest(?::VARCHAR[]))),
                            struct_pack(c := r.call_id, i := r.scorecard_id, v := r.scorecard_version))
        ORDER BY r.call_id, r.scorecard_id, r.section_id, r.criterion_id""",
            p + p,
        )
    )
    metrics = _group(
        rows(
            con,
            """SELECT call_id, name, value FROM call_metrics
                                  WHERE call_id IN (SELECT unnest(?::VARCHAR[]))""",
            p,
        )
    )
    out = {}
    for cid in ids:
        if cid in summary:
            out[cid] = {
                "summary": summary[cid],
                "utterances": utts.get(cid, []),
                "events": events.get(cid, []),
                "criteria": crit.get(cid, []),
                "metrics": {m["name"]: m["value"] for m in metrics.get(cid, [])},
            }
    return out


# ------------------------------------------------------------------------------------------------
# the nightly run's flagged calls (for its Prefect artifact)


def run_flagged(db_path: str | Path, run_id: str, limit: int = 50) -> tuple[int, list[dict]]:
    """The calls this run stored that are in the flagged queue (worst first), and how many there are."""
    con = store.connect(db_path, read_only=True)
    try:
        total = con.execute(
            """SELECT count(*) FROM flagged_queue q JOIN calls c USING (call_id) WHERE c.run_id = ?""", [run_id]
        ).fetchone()[0]
        flagged = rows(
            con,
            """
            SELECT q.file_name, q.agent_id, q.queue, round(q.percent, 1) AS percent, q.grade, q.flag_reasons, q.call_id
            FROM flagged_queue q JOIN calls c USING (call_id) WHERE c.run_id = ?
            ORDER BY q.auto_fail DESC, q.percent ASC NULLS FIRST, q.call_id LIMIT ?""",
            [run_id, limit],
        )
    finally:
        con.close()
    return int(total), flagged
