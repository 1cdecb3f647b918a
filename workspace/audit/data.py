"""The audit's numbers: SQL over the views and the KPI macros of migration 0011, dates always bound as parameters.

Each headline KPI is one query over one span, so a test (or an analyst) recomputes any figure of the report
with the same statement. Rates are calls with X / calls; times are averages per call; the KPI macros
(`kpi_complaints`, `kpi_repeat_contacts`, ...) define what counts (see 0011_kpis.sql); the score, flag and
auto-fail figures come from `call_summary` (graded calls of the current scorecard version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb

from callqa.config.settings import KpiSettings
from callqa.workspace import kpis
from callqa.workspace.audit.periods import Span


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> Any:
    row = con.execute(sql, list(params)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class Kpi:
    """One headline KPI: its SQL over a span (params: since, until, then `extra`), unit and direction."""

    key: str
    sql: str
    unit: str  # "count" | "rate" | "points" | "seconds" | "score"
    higher_is_better: bool
    extra: tuple[str, ...] = ()  # names of KpiSettings fields appended to the parameters

    def params(self, span: Span, settings: KpiSettings) -> list[Any]:
        return [span.since, span.until, *(getattr(settings, name) for name in self.extra)]


_SUMMARY = "FROM call_summary WHERE day BETWEEN ? AND ? AND scorecard_id IS NOT NULL"

KPIS: tuple[Kpi, ...] = (
    Kpi("calls", "SELECT count(*) FROM kpi_calls(?, ?)", "count", True),
    Kpi("avg_score", f"SELECT avg(percent) {_SUMMARY}", "points", True),
    Kpi("flagged_rate", f"SELECT avg(CASE WHEN flagged THEN 1.0 ELSE 0 END) {_SUMMARY}", "rate", False),
    Kpi("auto_fail_rate", f"SELECT avg(CASE WHEN auto_fail THEN 1.0 ELSE 0 END) {_SUMMARY}", "rate", False),
    Kpi(
        "complaint_rate",
        "SELECT sum(complaint_or_escalation_calls) / nullif(sum(calls), 0)"
        " FROM kpi_complaints(?, ?, grain := 'centre', period := 'month')",
        "rate",
        False,
    ),
    Kpi(
        "repeat_rate",
        "SELECT sum(repeat_contacts) / nullif(sum(calls_with_customer), 0)"
        " FROM kpi_repeat_contacts(?, ?, grain := 'centre', period := 'month', window_days := ?)",
        "rate",
        False,
        ("repeat_window_days",),
    ),
    Kpi(
        "fcr_rate",
        "SELECT 1 - sum(repeat_contacts) / nullif(sum(calls_with_customer), 0)"
        " FROM kpi_repeat_contacts(?, ?, grain := 'centre', period := 'month', window_days := ?)",
        "rate",
        True,
        ("repeat_window_days",),
    ),
    Kpi(
        "escalation_rate",
        "SELECT sum(escalated) / nullif(sum(calls), 0)"
        " FROM kpi_escalations(?, ?, grain := 'centre', period := 'month')",
        "rate",
        False,
    ),
    Kpi(
        "avg_effort",
        "SELECT avg(effort_score) FROM kpi_call_effort(?, ?, long_hold_s := ?)",
        "score",
        False,
        ("long_hold_s",),
    ),
    Kpi("avg_handle_s", "SELECT avg(handle_s) FROM kpi_call_times(?, ?)", "seconds", False),
    Kpi("avg_hold_s", "SELECT avg(hold_s) FROM kpi_call_times(?, ?)", "seconds", False),
    Kpi("avg_dead_air_s", "SELECT avg(dead_air_s) FROM kpi_call_times(?, ?)", "seconds", False),
    Kpi("avg_csat", "SELECT avg(csat) FROM kpi_calls(?, ?)", "score", True),
    Kpi(
        "nps",
        "SELECT 100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6)) / nullif(count(nps), 0)"
        " FROM kpi_calls(?, ?)",
        "points",
        True,
    ),
)


def headline(con: duckdb.DuckDBPyConnection, span: Span, settings: KpiSettings) -> dict[str, Any]:
    """Every headline KPI over one span (None where undefined, e.g. no calls or no survey answers)."""
    return {k.key: scalar(con, k.sql, k.params(span, settings)) for k in KPIS}


def group_table(
    con: duckdb.DuckDBPyConnection, span: Span, grain: str, settings: KpiSettings, limit: int = 50
) -> list[dict[str, Any]]:
    """Per team or agent: calls, score, flagged, complaint, repeat and escalation rates, handle/hold, CSAT.

    Ordered by calls (the biggest groups first); `grain` is 'team' or 'agent' (the macros' group_key).
    """
    if grain not in ("team", "agent"):
        raise ValueError(f"grain must be team or agent, not {grain!r}")
    sql = """
    WITH k AS (SELECT * FROM kpi_calls(?, ?, grain := ?)),
    s AS (SELECT call_id, percent, flagged FROM call_summary
          WHERE day BETWEEN ? AND ? AND scorecard_id IS NOT NULL),
    cp AS (SELECT group_key, sum(complaint_or_escalation_calls) AS complaints
           FROM kpi_complaints(?, ?, grain := ?, period := 'month') GROUP BY 1),
    rp AS (SELECT group_key, sum(repeat_contacts) AS repeats, sum(calls_with_customer) AS with_customer
           FROM kpi_repeat_contacts(?, ?, grain := ?, period := 'month', window_days := ?) GROUP BY 1),
    es AS (SELECT group_key, sum(escalated) AS escalated
           FROM kpi_escalations(?, ?, grain := ?, period := 'month') GROUP BY 1),
    t AS (SELECT call_id, handle_s, hold_s FROM kpi_call_times(?, ?))
    SELECT k.group_key, count(*) AS calls, avg(s.percent) AS avg_score,
           avg(CASE WHEN s.flagged THEN 1.0 WHEN s.call_id IS NOT NULL THEN 0 END) AS flagged_rate,
           any_value(cp.complaints) / count(*) AS complaint_rate,
           any_value(rp.repeats) / nullif(any_value(rp.with_customer), 0) AS repeat_rate,
           any_value(es.escalated) / count(*) AS escalation_rate,
           avg(t.handle_s) AS avg_handle_s, avg(t.hold_s) AS avg_hold_s, avg(k.csat) AS avg_csat
    FROM k
    LEFT JOIN s ON s.call_id = k.call_id
    LEFT JOIN t ON t.call_id = k.call_id
    LEFT JOIN cp ON cp.group_key = k.group_key
    LEFT JOIN rp ON rp.group_key = k.group_key
    LEFT JOIN es ON es.group_key = k.group_key
    GROUP BY k.group_key
    ORDER BY calls DESC, k.group_key
    LIMIT ?"""
    a, b = span.since, span.until
    params = [a, b, grain, a, b, a, b, grain, a, b, grain, settings.repeat_window_days, a, b, grain, a, b, limit]
    return rows(con, sql, params)


def criteria_failed(con: duckdb.DuckDBPyConnection, span: Span, limit: int = 15) -> list[dict[str, Any]]:
    """The criteria failed most in the span (current scorecard versions), with the queue, team and agent
    where each fails most often (by count of failures)."""
    sql = """
    WITH r AS (
        SELECT r.scorecard_id, r.criterion_id, r.result, coalesce(c.queue, '(unknown)') AS queue,
               coalesce(c.team, '(unknown)') AS team, coalesce(c.agent_id, '(unknown)') AS agent_id
        FROM criterion_results r
        JOIN current_scores s USING (call_id, scorecard_id, scorecard_version)
        JOIN calls c USING (call_id)
        WHERE CAST(coalesce(c.started_at, c.processed_at) AS DATE) BETWEEN ? AND ?
    ),
    f AS (SELECT * FROM r WHERE result = 'fail'),
    top AS (
        SELECT scorecard_id, criterion_id,
               count(*) FILTER (WHERE result = 'fail') AS failed,
               count(*) FILTER (WHERE result <> 'na') AS applicable
        FROM r GROUP BY ALL HAVING count(*) FILTER (WHERE result = 'fail') > 0
    ),
    wq AS (SELECT scorecard_id, criterion_id, arg_max(queue, n) AS worst_queue, max(n) AS worst_queue_n
           FROM (SELECT scorecard_id, criterion_id, queue, count(*) AS n FROM f GROUP BY ALL) GROUP BY ALL),
    wt AS (SELECT scorecard_id, criterion_id, arg_max(team, n) AS worst_team, max(n) AS worst_team_n
           FROM (SELECT scorecard_id, criterion_id, team, count(*) AS n FROM f GROUP BY ALL) GROUP BY ALL),
    wa AS (SELECT scorecard_id, criterion_id, arg_max(agent_id, n) AS worst_agent, max(n) AS worst_agent_n
           FROM (SELECT scorecard_id, criterion_id, agent_id, count(*) AS n FROM f GROUP BY ALL) GROUP BY ALL)
    SELECT top.scorecard_id, top.criterion_id, top.failed, top.applicable,
           top.failed / nullif(top.applicable, 0) AS fail_rate,
           wq.worst_queue, wq.worst_queue_n, wt.worst_team, wt.worst_team_n, wa.worst_agent, wa.worst_agent_n
    FROM top JOIN wq USING (scorecard_id, criterion_id) JOIN wt USING (scorecard_id, criterion_id)
    JOIN wa USING (scorecard_id, criterion_id)
    ORDER BY top.failed DESC, top.scorecard_id, top.criterion_id
    LIMIT ?"""
    return rows(con, sql, [span.since, span.until, limit])


def sample_calls(con: duckdb.DuckDBPyConnection, span: Span, limit: int = 20) -> list[dict[str, Any]]:
    """The worst flagged calls of the span, in the QA queue's order (flagged_queue)."""
    sql = """SELECT call_id, file_name, agent_id, queue, started_at, percent, grade, flag_reasons
             FROM flagged_queue WHERE day BETWEEN ? AND ? LIMIT ?"""
    return rows(con, sql, [span.since, span.until, limit])


def exemplars(con: duckdb.DuckDBPyConnection, span: Span, per_criterion: int = 3) -> list[dict[str, Any]]:
    """Per criterion, the best calls of the span that passed it (exemplar_calls: rank within agent first)."""
    sql = """
    SELECT * FROM (
        SELECT criterion_id, call_id, file_name, agent_id, started_at, percent, grade, rationale,
               row_number() OVER (PARTITION BY scorecard_id, criterion_id
                                  ORDER BY percent DESC, started_at DESC, call_id) AS rank
        FROM exemplar_calls
        WHERE rank = 1 AND CAST(started_at AS DATE) BETWEEN ? AND ?
    ) WHERE rank <= ? ORDER BY criterion_id, rank"""
    return rows(con, sql, [span.since, span.until, per_criterion])


def latest_day(con: duckdb.DuckDBPyConnection) -> date | None:
    return scalar(con, "SELECT max(CAST(coalesce(started_at, processed_at) AS DATE)) FROM calls", [])


_TREND = {
    "complaints": ("complaint_rate",),
    "repeat_contacts": ("fcr_rate",),
    "times": ("avg_handle_s", "avg_hold_s"),
    "satisfaction": ("avg_csat", "nps"),
}


def _days_inside(start: date, period: kpis.Period, span: Span) -> int:
    """Days of the period starting at `start` that lie inside the span (a first or last week cut by it)."""
    end = kpis.period_starts(start, start, period)[0]
    nxt = kpis.period_starts(end, end + timedelta(days=31), period)[1] if period != "day" else end + timedelta(days=1)
    return (min(nxt - timedelta(days=1), span.until) - max(start, span.since)).days + 1


def trends(
    con: duckdb.DuckDBPyConnection, span: Span, settings: KpiSettings, period: kpis.Period = "week"
) -> list[dict[str, Any]]:
    """The centre's KPIs per week (or day/month) of the span, through `callqa.workspace.kpis.read_kpi`:
    weeks without calls are rows with 0 calls and no values, so the trend shows the gap."""
    by_start: dict[date, dict[str, Any]] = {}
    for kpi, cols in _TREND.items():
        for r in kpis.read_kpi(con, kpi, span.since, span.until, grain="centre", period=period, settings=settings):
            row = by_start.setdefault(
                r.period_start,
                {"period_start": r.period_start, "calls": r.calls, "days": _days_inside(r.period_start, period, span)},
            )
            row.update({c: r.values.get(c) for c in cols})
    return [by_start[k] for k in sorted(by_start)]
