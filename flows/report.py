"""`callqa report`: a static, self-contained HTML site over the QA views.

The site is plain files: index.html (dashboard), calls.html (every call with a page) and
calls/<call_id>.html, with plotly.js shipped beside them (plotly.min.js) so it opens from disk with
no network at all. Every figure is data from SQL over the views (`call_summary`, `flagged_queue`,
`agent_daily`, `criterion_pass_rates`, `hold_stats`) rendered by plotly; the database is opened
read-only, so a report can never change what it reports on.

Call pages are built for the flagged calls of the period first (the QA queue order) and then the
newest calls, up to `max_call_pages`: a dashboard over a million calls stays one page, the pages QA
will open are there.
"""

from __future__ import annotations

import json
import math
from html import escape as html_escape
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import duckdb
import jinja2
import plotly.io as pio
from markupsafe import Markup, escape

from callqa import __version__
from callqa.pipeline import store
from callqa.pipeline.types import CallQAError

TEMPLATES = Path(__file__).parent / "templates"
GRADES = ("excellent", "good", "fair", "poor", "na")
GRADE_COLOURS = {"excellent": "#15803d", "good": "#65a30d", "fair": "#d97706", "poor": "#dc2626", "na": "#9aa5b1"}
LANE_COLOURS = {"agent": "#2563eb", "customer": "#059669", "unknown": "#64748b", "hold": "#7c3aed",
                "overtalk": "#ef4444", "dead air": "#f59e0b", "events": "#0ea5e9"}
NEGATIVE_EVENTS = {"forbidden_phrase", "negative_emotion", "escalation_request", "complaint", "hold_unannounced",
                   "interruption", "dead_air", "overtalk"}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


class ReportError(CallQAError):
    stage = "report"


AudioMode = Literal["link", "copy", "none"]


@dataclass(frozen=True)
class ReportSummary:
    out_dir: Path
    index: Path
    calls_total: int
    flagged: int
    call_pages: int
    bytes_written: int
    seconds: float


# ------------------------------------------------------------------------------------------------
# formatting helpers


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "—"
    m, sec = divmod(float(s), 60)
    return f"{int(m)}:{sec:04.1f}"


def _fmt_num(v: Any, nd: int = 1, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{float(v):,.{nd}f}{suffix}"


def _fmt_pct(v: Any) -> str:
    return _fmt_num(None if v is None else 100 * float(v), 0, " %")


def _fmt_dt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


def _fig_html(fig: dict, div_id: str, height: int, click_seek: bool = False) -> Markup:
    """A plotly figure (plain dict in plotly's JSON schema) as a div, plotly.js loaded separately."""
    layout = fig.setdefault("layout", {})
    layout.setdefault("height", height)
    layout.setdefault("margin", {"l": 60, "r": 20, "t": 10, "b": 40})
    layout.setdefault("paper_bgcolor", "#fff")
    layout.setdefault("plot_bgcolor", "#fff")
    layout.setdefault("font", {"size": 12})
    post = None
    if click_seek:
        # clicking a bar or point plays the recording from there
        post = ("var gd = document.getElementById('{plot_id}'); gd.on('plotly_click', function (d) {"
                " var p = d.points[0]; var t = p.customdata; if (Array.isArray(t)) t = t[0];"
                " if (t !== undefined && t !== null) seek(t); });")
    html = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False, div_id=div_id,
                       config=_PLOT_CONFIG, post_script=post, default_height=height)
    return Markup(html)


def _empty(msg: str) -> Markup:
    return Markup(f'<div class="empty">{escape(msg)}</div>')


# ------------------------------------------------------------------------------------------------
# queries (all over the views; parameters bound, never formatted in)


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


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | None = None) -> list[dict]:
    cur = con.execute(sql, list(params or []))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _main_scorecard(con: duckdb.DuckDBPyConnection) -> tuple[str | None, int | None]:
    row = con.execute(
        """SELECT scorecard_id, max(scorecard_version) FROM current_scores GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"""
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _score_filter(scorecard: str | None) -> tuple[str, list]:
    if scorecard is None:
        return "TRUE", []
    return "(scorecard_id = ? OR scorecard_id IS NULL)", [scorecard]


# ------------------------------------------------------------------------------------------------
# dashboard


def _dashboard(con: duckdb.DuckDBPyConnection, period: Period, scorecard: str | None, version: int | None,
               pages: dict[str, str]) -> dict[str, Any]:
    pw, pp = period.where("day")
    sw, sp = _score_filter(scorecard)
    where, params = f"{pw} AND {sw}", pp + sp

    k = _rows(con, f"""
        SELECT count(*) AS calls, coalesce(sum(duration_s), 0) / 3600 AS hours, count(*) FILTER (WHERE flagged) AS flagged,
               avg(percent) AS avg_percent, count(*) FILTER (WHERE auto_fail) AS auto_failed,
               count(DISTINCT agent_id) AS agents, count(*) FILTER (WHERE percent IS NULL) AS unscored
        FROM call_summary WHERE {where}""", params)[0]
    fw, fp = period.where("CAST(created_at AS DATE)")
    failures_total = con.execute(f"SELECT count(*) FROM failures WHERE {fw}", fp).fetchone()[0]
    calls = k["calls"] or 0
    kpis = [
        {"label": "calls processed", "value": f"{calls:,}"},
        {"label": "audio hours", "value": _fmt_num(k["hours"], 1)},
        {"label": "average score", "value": _fmt_num(k["avg_percent"], 1, " %")},
        {"label": "flagged", "value": f"{k['flagged']:,}" + (f" ({100 * k['flagged'] / calls:.0f} %)" if calls else "")},
        {"label": "auto-fail", "value": f"{k['auto_failed']:,}"},
        {"label": "agents", "value": f"{k['agents']:,}"},
        {"label": "failed recordings", "value": f"{failures_total:,}"},
    ]

    figs: dict[str, Markup] = {}
    # score distribution, binned in SQL (a million calls are twenty bars, not a million points)
    bins = _rows(con, f"""
        SELECT least(floor(percent / 5) * 5, 95) AS b, count(*) AS n FROM call_summary
        WHERE {where} AND percent IS NOT NULL GROUP BY 1 ORDER BY 1""", params)
    if bins:
        figs["scores"] = _fig_html({
            "data": [{"type": "bar", "x": [b["b"] + 2.5 for b in bins], "y": [b["n"] for b in bins], "width": 4.6,
                      "marker": {"color": [GRADE_COLOURS[_grade_of(b["b"] + 2.5)] for b in bins]},
                      "hovertemplate": "%{x:.0f} %% ±2.5: %{y} calls<extra></extra>"}],
            "layout": {"xaxis": {"title": {"text": "score %"}, "range": [0, 100]}, "yaxis": {"title": {"text": "calls"}}},
        }, "fig-scores", 280)
    else:
        figs["scores"] = _empty("no scored calls")

    grades = {r["grade"] or "na": r["n"] for r in _rows(con, f"SELECT grade, count(*) AS n FROM call_summary WHERE {where} GROUP BY 1", params)}
    order = [g for g in GRADES if g in grades] + sorted(g for g in grades if g not in GRADES)
    if order:
        figs["grades"] = _fig_html({
            "data": [{"type": "bar", "x": order, "y": [grades[g] for g in order], "text": [f"{grades[g]:,}" for g in order],
                      "textposition": "auto", "marker": {"color": [GRADE_COLOURS.get(g, "#64748b") for g in order]},
                      "hovertemplate": "%{x}: %{y} calls<extra></extra>"}],
            "layout": {"yaxis": {"title": {"text": "calls"}}},
        }, "fig-grades", 280)
    else:
        figs["grades"] = _empty("no calls")

    reasons = _rows(con, f"""
        SELECT label AS reason, count(DISTINCT call_id) AS n FROM flagged_reasons WHERE {where}
        GROUP BY 1 ORDER BY 2 DESC LIMIT 15""", params)
    if reasons:
        rs = list(reversed(reasons))
        figs["reasons"] = _fig_html({
            "data": [{"type": "bar", "orientation": "h", "y": [r["reason"] for r in rs], "x": [r["n"] for r in rs],
                      "marker": {"color": "#dc2626"}, "hovertemplate": "%{y}: %{x} calls<extra></extra>"}],
            "layout": {"xaxis": {"title": {"text": "flagged calls"}}, "yaxis": {"automargin": True}},
        }, "fig-reasons", max(220, 40 + 26 * len(rs)))
    else:
        figs["reasons"] = _empty("nothing flagged")

    figs["criteria"] = _criteria_fig(con, period, scorecard, version)
    figs["holds"], hold_table, hold_notes = _holds(con, period)
    figs["trend"], agents = _agents(con, period, scorecard)

    queue = []
    for q in _rows(con, f"""
            SELECT call_id, file_name, agent_id, queue, started_at, processed_at, duration_s, percent, grade, flag_reasons
            FROM flagged_queue WHERE {where} LIMIT 200""", params):
        queue.append({
            "file_name": q["file_name"], "agent_id": q["agent_id"], "queue": q["queue"],
            "started": _fmt_dt(q["started_at"] or q["processed_at"]), "duration": _fmt_s(q["duration_s"]),
            "percent": _fmt_num(q["percent"], 0), "grade": q["grade"] or "na", "reasons": q["flag_reasons"] or [],
            "href": pages.get(q["call_id"]),
        })
    failures = [
        {"created_at": _fmt_dt(f["created_at"]), "path": f["path"], "stage": f["stage"], "error": f["error"]}
        for f in _rows(con, f"SELECT created_at, path, stage, error FROM failures WHERE {fw} ORDER BY created_at DESC LIMIT 50", fp)
    ]
    return {
        "kpis": kpis, "figs": figs, "hold_table": hold_table, "hold_notes": hold_notes, "agents": agents,
        "queue": queue, "flagged_total": f"{k['flagged']:,}", "failures": failures, "failures_total": failures_total,
        "calls_total": calls, "flagged": k["flagged"],
    }


def _grade_of(percent: float) -> str:
    return "excellent" if percent >= 90 else "good" if percent >= 80 else "fair" if percent >= 60 else "poor"


def _criteria_fig(con, period: Period, scorecard: str | None, version: int | None) -> Markup:
    if scorecard is None:
        return _empty("no scored calls")
    if period.since is None and period.until is None:
        rows = _rows(con, """SELECT criterion_id, n, passed, failed, not_applicable, pass_rate, auto_fail
                             FROM criterion_pass_rates WHERE scorecard_id = ? AND scorecard_version = ?
                             ORDER BY section_id, criterion_id""", [scorecard, version])
    else:  # the view's aggregates, restricted to the period's calls
        pw, pp = period.where("CAST(coalesce(c.started_at, c.processed_at) AS DATE)")
        rows = _rows(con, f"""
            SELECT r.criterion_id, count(*) AS n, count(*) FILTER (WHERE r.result = 'pass') AS passed,
                   count(*) FILTER (WHERE r.result = 'fail') AS failed, count(*) FILTER (WHERE r.result = 'na') AS not_applicable,
                   count(*) FILTER (WHERE r.result = 'pass') / nullif(count(*) FILTER (WHERE r.result <> 'na'), 0) AS pass_rate,
                   bool_or(r.auto_fail) AS auto_fail
            FROM criterion_results r JOIN calls c USING (call_id)
            WHERE r.scorecard_id = ? AND r.scorecard_version = ? AND {pw}
            GROUP BY r.section_id, r.criterion_id ORDER BY r.section_id, r.criterion_id""", [scorecard, version] + pp)
    if not rows:
        return _empty("no criterion results")
    rows = list(reversed(rows))
    rates = [None if r["pass_rate"] is None else 100 * r["pass_rate"] for r in rows]
    return _fig_html({
        "data": [{"type": "bar", "orientation": "h", "y": [r["criterion_id"] + (" ⚑" if r["auto_fail"] else "") for r in rows],
                  "x": rates, "text": [("n/a" if v is None else f"{v:.0f} %") for v in rates], "textposition": "auto",
                  "customdata": [[r["passed"], r["failed"], r["not_applicable"]] for r in rows],
                  "marker": {"color": ["#16a34a" if (v or 0) >= 80 else "#d97706" if (v or 0) >= 60 else "#dc2626" for v in rates]},
                  "hovertemplate": "%{y}: %{x:.1f} %% pass<br>pass %{customdata[0]} · fail %{customdata[1]} · n/a %{customdata[2]}<extra></extra>"}],
        "layout": {"xaxis": {"title": {"text": "pass rate % (applicable calls)"}, "range": [0, 100]}, "yaxis": {"automargin": True}},
    }, "fig-criteria", max(220, 40 + 26 * len(rows)))


def _holds(con, period: Period) -> tuple[Markup, list[dict], str]:
    pw, pp = period.where("day")
    s = _rows(con, f"""
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE hold_count > 0) AS held, avg(hold_total_s) FILTER (WHERE hold_count > 0) AS hold_mean,
               max(hold_max_s) AS hold_max, sum(hold_total_s) AS hold_total, sum(hold_count) AS holds,
               sum(holds_unannounced) AS unannounced, sum(holds_announced) AS announced, sum(holds_thanked) AS thanked,
               count(*) FILTER (WHERE dead_air_total_s > 0) AS dead, avg(dead_air_total_s) FILTER (WHERE dead_air_total_s > 0) AS dead_mean,
               max(dead_air_total_s) AS dead_max, sum(dead_air_total_s) AS dead_total
        FROM hold_stats WHERE {pw}""", pp)[0]
    n = s["calls"] or 0
    table = [
        {"label": "hold", "calls": f"{s['held'] or 0:,}", "share": _fmt_pct((s["held"] or 0) / n if n else None),
         "mean": _fmt_num(s["hold_mean"], 1, " s"), "max": _fmt_num(s["hold_max"], 1, " s"),
         "total": _fmt_num((s["hold_total"] or 0) / 3600, 1, " h")},
        {"label": "dead air", "calls": f"{s['dead'] or 0:,}", "share": _fmt_pct((s["dead"] or 0) / n if n else None),
         "mean": _fmt_num(s["dead_mean"], 1, " s"), "max": _fmt_num(s["dead_max"], 1, " s"),
         "total": _fmt_num((s["dead_total"] or 0) / 3600, 1, " h")},
    ]
    notes = ""
    if s["holds"]:
        notes = (f"{int(s['holds']):,} holds: {int(s['announced'] or 0):,} announced, {int(s['thanked'] or 0):,} thanked on "
                 f"return, {int(s['unannounced'] or 0):,} unannounced.")
    hist = _rows(con, f"""
        SELECT 'hold' AS kind, least(floor(hold_total_s / 15) * 15, 300) AS b, count(*) AS n FROM hold_stats
        WHERE {pw} AND hold_total_s > 0 GROUP BY ALL
        UNION ALL
        SELECT 'dead air', least(floor(dead_air_total_s / 15) * 15, 300), count(*) FROM hold_stats
        WHERE {pw} AND dead_air_total_s > 0 GROUP BY ALL ORDER BY 1, 2""", pp + pp)
    if not hist:
        return _empty("no holds or dead air measured in this period"), table, notes
    data = []
    for kind in ("hold", "dead air"):
        pts = [h for h in hist if h["kind"] == kind]
        if pts:
            data.append({"type": "bar", "name": kind, "x": [p["b"] + 7.5 for p in pts], "y": [p["n"] for p in pts],
                         "marker": {"color": LANE_COLOURS[kind]},
                         "hovertemplate": kind + " %{x:.0f} s ±7.5: %{y} calls<extra></extra>"})
    fig = {"data": data, "layout": {"barmode": "group", "xaxis": {"title": {"text": "seconds per call (300 = 300 s or more)"}},
                                    "yaxis": {"title": {"text": "calls"}}, "legend": {"orientation": "h", "y": 1.12}}}
    return _fig_html(fig, "fig-holds", 260), table, notes


def _agents(con, period: Period, scorecard: str | None) -> tuple[Markup, list[dict]]:
    pw, pp = period.where("day")
    sw, sp = _score_filter(scorecard)
    where, params = f"{pw} AND {sw}", pp + sp
    agents = _rows(con, f"""
        WITH a AS (
            SELECT agent_id, sum(calls) AS calls,
                   sum(avg_percent * calls) FILTER (WHERE avg_percent IS NOT NULL)
                     / nullif(sum(calls) FILTER (WHERE avg_percent IS NOT NULL), 0) AS avg_percent,
                   sum(flagged) / sum(calls) AS flagged_rate, sum(auto_failed) AS auto_failed
            FROM agent_daily WHERE {where} GROUP BY 1
        ), k AS (  -- averages over the calls that have the metric
            SELECT agent_id, sum(avg_hold_s * calls) / nullif(sum(calls) FILTER (WHERE avg_hold_s IS NOT NULL), 0) AS avg_hold_s,
                   sum(avg_dead_air_s * calls) / nullif(sum(calls) FILTER (WHERE avg_dead_air_s IS NOT NULL), 0) AS avg_dead_air_s,
                   sum(avg_talk_ratio_agent * calls) / nullif(sum(calls) FILTER (WHERE avg_talk_ratio_agent IS NOT NULL), 0) AS talk_ratio,
                   sum(avg_customer_emotion_end * calls)
                     / nullif(sum(calls) FILTER (WHERE avg_customer_emotion_end IS NOT NULL), 0) AS emotion_end
            FROM agent_daily_kpis WHERE {pw} GROUP BY 1
        )
        SELECT a.*, k.avg_hold_s, k.avg_dead_air_s, k.talk_ratio, k.emotion_end
        FROM a LEFT JOIN k USING (agent_id) ORDER BY avg_percent DESC NULLS LAST, calls DESC LIMIT 200""", params + pp)
    table = [{
        "agent_id": a["agent_id"], "calls": f"{int(a['calls']):,}", "avg_percent": _fmt_num(a["avg_percent"], 1),
        "flagged_rate": _fmt_pct(a["flagged_rate"]), "auto_failed": int(a["auto_failed"] or 0),
        "avg_hold_s": _fmt_num(a["avg_hold_s"], 1), "avg_dead_air_s": _fmt_num(a["avg_dead_air_s"], 1),
        "talk_ratio": _fmt_pct(a["talk_ratio"]), "emotion_end": _fmt_num(a["emotion_end"], 2),
    } for a in agents]
    daily = _rows(con, f"""
        SELECT day, sum(avg_percent * calls) FILTER (WHERE avg_percent IS NOT NULL)
                      / nullif(sum(calls) FILTER (WHERE avg_percent IS NOT NULL), 0) AS p, sum(calls) AS n
        FROM agent_daily WHERE {where} GROUP BY 1 ORDER BY 1""", params)
    if not daily:
        return _empty("no calls in this period"), table
    data = [{"type": "scatter", "mode": "lines+markers", "name": "all agents", "x": [str(d["day"]) for d in daily],
             "y": [d["p"] for d in daily], "customdata": [d["n"] for d in daily], "line": {"width": 3, "color": "#111827"},
             "hovertemplate": "%{x}: %{y:.1f} %% over %{customdata} calls<extra>all agents</extra>"}]
    busiest = [a["agent_id"] for a in sorted(agents, key=lambda a: -a["calls"])[:8]]
    if busiest:
        per = _rows(con, f"""SELECT agent_id, day, avg_percent AS p, calls FROM agent_daily
                             WHERE {where} AND agent_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY agent_id, day""",
                    params + [busiest])
        by_agent: dict[str, list[dict]] = defaultdict(list)
        for r in per:
            by_agent[r["agent_id"]].append(r)
        for a in busiest:
            pts = by_agent.get(a, [])
            data.append({"type": "scatter", "mode": "lines", "name": a, "x": [str(r["day"]) for r in pts],
                         "y": [r["p"] for r in pts], "customdata": [r["calls"] for r in pts], "visible": "legendonly",
                         "hovertemplate": "%{x}: %{y:.1f} %% over %{customdata} calls<extra>" + str(a) + "</extra>"})
    fig = {"data": data, "layout": {"yaxis": {"title": {"text": "average score %"}}, "xaxis": {"type": "date"},
                                    "legend": {"orientation": "h", "y": -0.25}, "margin": {"l": 60, "r": 20, "t": 10, "b": 80}}}
    return _fig_html(fig, "fig-trend", 320), table


# ------------------------------------------------------------------------------------------------
# call pages


def _select_calls(con, period: Period, scorecard: str | None, limit: int, call_ids: Sequence[str] | None) -> list[str]:
    if call_ids is not None:
        return list(dict.fromkeys(call_ids))
    if limit <= 0:
        return []
    pw, pp = period.where("day")
    sw, sp = _score_filter(scorecard)
    flagged = [r[0] for r in con.execute(f"SELECT call_id FROM flagged_queue WHERE {pw} AND {sw} LIMIT ?", pp + sp + [limit]).fetchall()]
    seen = set(flagged)
    rest = [r[0] for r in con.execute(
        f"""SELECT call_id FROM calls WHERE {period.where('CAST(coalesce(started_at, processed_at) AS DATE)')[0]}
            ORDER BY coalesce(started_at, processed_at) DESC LIMIT ?""",
        period.where()[1] + [limit + len(flagged)]).fetchall()]
    out = flagged + [c for c in rest if c not in seen]
    return out[:limit]


def _group(rows: Iterable[dict], key: str = "call_id") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def _call_data(con, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Everything the pages need for these calls, in one query per table (not one per call)."""
    p = [ids]
    summary = {r["call_id"]: r for r in _rows(con, """
        SELECT cs.*, c.metadata, c.roles, c.role_confidence, c.language_probability
        FROM call_summary cs JOIN calls c USING (call_id) WHERE cs.call_id IN (SELECT unnest(?::VARCHAR[]))""", p)}
    utts = _group(_rows(con, """
        SELECT call_id, seq, speaker, role, channel, start_s, end_s, text, emotion, emotion_score, emotion_method, sentiment
        FROM utterances WHERE call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY call_id, start_s, seq""", p))
    events = _group(_rows(con, """
        SELECT call_id, event_id, type, start_s, end_s, speaker, role, evidence, confidence, data
        FROM events WHERE call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY call_id, start_s""", p))
    crit = _group(_rows(con, """
        SELECT r.call_id, r.section_id, r.criterion_id, r.result, r.points, r.max_points, r.auto_fail, r.evidence_event_ids, r.rationale
        FROM criterion_results r JOIN current_scores s USING (call_id, scorecard_id, scorecard_version)
        WHERE r.call_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY r.call_id, r.scorecard_id, r.section_id, r.criterion_id""", p))
    metrics = _group(_rows(con, "SELECT call_id, name, value FROM call_metrics WHERE call_id IN (SELECT unnest(?::VARCHAR[]))", p))
    out = {}
    for cid in ids:
        if cid in summary:
            out[cid] = {"summary": summary[cid], "utterances": utts.get(cid, []), "events": events.get(cid, []),
                        "criteria": crit.get(cid, []), "metrics": {m["name"]: m["value"] for m in metrics.get(cid, [])}}
    return out


def _lane(u: dict) -> str:
    role = u.get("role") or "unknown"
    return role if role in ("agent", "customer") else f"{u['speaker']}"


def _timeline_fig(d: dict, div_id: str) -> Markup:
    s = d["summary"]
    duration = float(s["duration_s"] or 0)
    lanes: dict[str, list[dict]] = defaultdict(list)
    for u in d["utterances"]:
        lanes[_lane(u)].append({"start": u["start_s"], "end": u["end_s"], "text": u["text"]})
    for e in d["events"]:
        lane = {"hold": "hold", "hold_unannounced": "hold", "overtalk": "overtalk", "interruption": "overtalk",
                "dead_air": "dead air"}.get(e["type"], "events")
        lanes[lane].append({"start": e["start_s"], "end": max(e["end_s"], e["start_s"] + 0.25), "text": f"{e['type']}: {e['evidence']}"})
    order = [l for l in ("agent", "customer") if l in lanes] + sorted(
        l for l in lanes if l not in ("agent", "customer", "hold", "overtalk", "dead air", "events"))
    order += [l for l in ("hold", "overtalk", "dead air", "events") if l in lanes]
    if not order:
        return _empty("nothing to show on the timeline")
    data = []
    for lane in order:
        items = lanes[lane]
        colour = LANE_COLOURS.get(lane, LANE_COLOURS["unknown"])
        data.append({
            "type": "bar", "orientation": "h", "name": lane, "y": [lane] * len(items),
            "base": [round(i["start"], 2) for i in items], "x": [round(i["end"] - i["start"], 2) for i in items],
            "customdata": [round(i["start"], 2) for i in items],
            "hovertext": [_clip(i["text"], 120) for i in items], "marker": {"color": colour, "line": {"width": 0}},
            "hovertemplate": "from %{customdata:.1f} s, %{x:.1f} s long<br>%{hovertext}<extra>" + lane + "</extra>",
        })
    fig = {"data": data, "layout": {
        "barmode": "overlay", "showlegend": False, "bargap": 0.35,
        "xaxis": {"title": {"text": "seconds (click a bar to play from there)"}, "range": [0, max(duration, 1.0)]},
        "yaxis": {"categoryorder": "array", "categoryarray": list(reversed(order)), "automargin": True},
        "margin": {"l": 80, "r": 20, "t": 10, "b": 40}}}
    return _fig_html(fig, div_id, 90 + 36 * len(order), click_seek=True)


_NEG = {"negative", "angry", "anger", "sad", "sadness", "frustrated", "disgust", "fear", "annoyance", "disappointment"}
_POS = {"positive", "happy", "joy", "satisfied", "gratitude", "approval"}


def _emotion_value(u: dict) -> float | None:
    if u.get("sentiment") is not None:
        return float(u["sentiment"])
    emo, score = (u.get("emotion") or "").lower(), u.get("emotion_score")
    if not emo or score is None:
        return None
    return -float(score) if emo in _NEG else float(score) if emo in _POS else 0.0


def _emotion_fig(d: dict, div_id: str) -> Markup:
    utts = d["utterances"]
    who = "customer"
    pts = [u for u in utts if u.get("role") == "customer"]
    if not pts:  # roles unknown (mono without diarization): show everyone, and say so
        who, pts = "all speakers (roles unknown)", list(utts)
    pts = [(u, _emotion_value(u)) for u in pts]
    pts = [(u, v) for u, v in pts if v is not None]
    if not pts:
        return _empty("no emotion was measured for this call")
    x = [round((u["start_s"] + u["end_s"]) / 2, 2) for u, _ in pts]
    y = [round(v, 3) for _, v in pts]
    neg_events = [e for e in d["events"] if e["type"] == "negative_emotion"]
    data = [{"type": "scatter", "mode": "lines+markers", "name": who, "x": x, "y": y,
             "customdata": [round(u["start_s"], 2) for u, _ in pts],
             "hovertext": [f"{u.get('emotion') or ''} · {_clip(u['text'], 90)}" for u, _ in pts],
             "line": {"shape": "linear", "color": "#059669", "width": 2},
             "marker": {"size": 8, "color": y, "colorscale": [[0, "#dc2626"], [0.5, "#a3a3a3"], [1, "#16a34a"]], "cmin": -1, "cmax": 1},
             "hovertemplate": "%{x:.1f} s: %{y:.2f}<br>%{hovertext}<extra></extra>"}]
    if neg_events:
        data.append({"type": "scatter", "mode": "markers", "name": "negative_emotion event",
                     "x": [e["start_s"] for e in neg_events], "y": [-1.05] * len(neg_events),
                     "customdata": [e["start_s"] for e in neg_events], "marker": {"symbol": "triangle-up", "color": "#dc2626", "size": 10},
                     "hovertext": [_clip(e["evidence"], 90) for e in neg_events],
                     "hovertemplate": "%{x:.1f} s: %{hovertext}<extra>negative emotion</extra>"})
    m = d["metrics"]
    title = ""
    if m.get("customer_emotion_start") is not None or m.get("customer_emotion_end") is not None:
        title = f"start {_fmt_num(m.get('customer_emotion_start'), 2)} → end {_fmt_num(m.get('customer_emotion_end'), 2)}"
    fig = {"data": data, "layout": {
        "yaxis": {"title": {"text": "sentiment (−1 … +1)"}, "range": [-1.15, 1.1], "zeroline": True},
        "xaxis": {"title": {"text": "seconds"}, "range": [0, max(float(d["summary"]["duration_s"] or 0), 1.0)]},
        "showlegend": bool(neg_events), "legend": {"orientation": "h", "y": 1.15},
        "annotations": ([{"text": title, "xref": "paper", "yref": "paper", "x": 1, "y": 1.08, "showarrow": False,
                          "xanchor": "right", "font": {"color": "#616e7c"}}] if title else []),
        "margin": {"l": 60, "r": 20, "t": 24, "b": 40}}}
    return _fig_html(fig, div_id, 240, click_seek=True)


def _clip(s: str | None, n: int) -> str:
    s = (s or "").replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _highlight(text: str, quotes: Sequence[tuple[str, bool]]) -> tuple[str, list[bool]]:
    """HTML of `text` with each quoted evidence found in it wrapped in <mark>; says which quotes were found."""
    low = text.lower()
    spans: list[tuple[int, int, bool]] = []
    found = []
    for q, neg in quotes:
        q = (q or "").strip().strip('"“”「」')
        i = low.find(q.lower()) if len(q) >= 2 else -1
        found.append(i >= 0)
        if i >= 0:
            spans.append((i, i + len(q), neg))
    if not spans:
        return _esc(text), found
    spans.sort()
    merged: list[list] = []
    for a, b, neg in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = merged[-1][2] or neg
        else:
            merged.append([a, b, neg])
    out, pos = [], 0
    for a, b, neg in merged:
        out += [_esc(text[pos:a]), '<mark class="neg">' if neg else "<mark>", _esc(text[a:b]), "</mark>"]
        pos = b
    out.append(_esc(text[pos:]))
    return "".join(out), found


def _esc(s: Any) -> str:
    # the transcript is the bulk of a call page: plain html.escape here, not per-item template lookups
    return html_escape("" if s is None else str(s), quote=True)


def _transcript_html(d: dict) -> tuple[Markup, int]:
    """The transcript table rows: turns with evidence highlighted, and the spans with no words in them."""
    utts, events = d["utterances"], d["events"]
    rows: list[tuple[float, int, str]] = []
    placed: set[str] = set()
    for u in utts:
        u_start, u_end, spk = u["start_s"], u["end_s"], u["speaker"]
        overlapping = [
            e for e in events
            if e["start_s"] < u_end + 0.05 and u_start - 0.05 < e["end_s"]
            and (e["speaker"] is None or e["speaker"] == spk) and e["type"] not in ("hold", "dead_air")
            and (e["speaker"] is not None or e["role"] is not None)
        ] if events else []
        text_html, _ = _highlight(u["text"], [(e["evidence"], e["type"] in NEGATIVE_EVENTS) for e in overlapping])
        badges = []
        for e in overlapping:
            placed.add(e["event_id"])
            badges.append(f'<span class="ev{" neg" if e["type"] in NEGATIVE_EVENTS else ""}" onclick="seek({e["start_s"]:.2f})" '
                          f'title="{_esc(e["evidence"])}">{_esc(e["type"])}</span>')
        emo = u.get("emotion") or ""
        if emo and u.get("emotion_score") is not None:
            emo = f"{emo} {u['emotion_score']:.2f}"
        role = u.get("role") or "unknown"
        rows.append((u_start, 1,
                     f'<tr class="utt role-{_esc(role)}" data-start="{u_start:.2f}" data-end="{u_end:.2f}">'
                     f'<td><button class="t" onclick="seek({u_start:.2f})">{_fmt_s(u_start)}</button></td>'
                     f'<td class="who">{_esc(_lane(u))}</td><td>{text_html}{"".join(badges)}</td>'
                     f'<td class="muted">{_esc(emo)}</td></tr>'))
    for e in events:  # spans with no words in them: holds, dead air, events that overlapped no turn
        if e["event_id"] in placed:
            continue
        rows.append((e["start_s"], 0,
                     f'<tr class="span-row" data-start="{e["start_s"]:.2f}" data-end="{e["end_s"]:.2f}">'
                     f'<td><button class="t" onclick="seek({e["start_s"]:.2f})">{_fmt_s(e["start_s"])}</button></td>'
                     f'<td>{_esc(e["type"].replace("_", " "))}</td>'
                     f'<td colspan="2">{_esc(e["evidence"])} ({max(0.0, e["end_s"] - e["start_s"]):.1f} s)</td></tr>'))
    rows.sort(key=lambda r: (r[0], r[1]))
    return Markup("\n".join(r[2] for r in rows)), len(rows)


def _audio_src(d: dict, page_dir: Path, out_dir: Path, mode: AudioMode) -> tuple[str | None, str]:
    s = d["summary"]
    if mode == "none":
        return None, "audio not included in this report (--audio none)"
    meta = {}
    try:
        meta = json.loads(s["metadata"]) if s.get("metadata") else {}
    except (TypeError, ValueError):
        meta = {}
    redacted = meta.get("redacted_audio") if isinstance(meta, dict) else None
    src = Path(redacted) if redacted and Path(redacted).is_file() else Path(s["source_path"])
    label = "redacted copy" if redacted and src == Path(redacted) else "original recording"
    if not src.is_file():
        return None, f"recording not found at {src} (moved or deleted since it was processed)"
    if mode == "copy":
        dest = out_dir / "audio" / f"{s['call_id']}{src.suffix.lower()}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or dest.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dest)
        src = dest
        label += ", copied into the report"
    try:
        rel = os.path.relpath(src.resolve(), page_dir.resolve())
        href = Path(rel).as_posix()
    except ValueError:  # another drive (Windows): absolute file URI
        href = src.resolve().as_uri()
    return href, f"{label}: {src.name} — click any time, bar or evidence to play from there"


def _call_page(d: dict, out_dir: Path, audio: AudioMode) -> dict[str, Any]:
    s = d["summary"]
    cid = s["call_id"]
    page_dir = out_dir / "calls"
    audio_src, audio_note = _audio_src(d, page_dir, out_dir, audio)
    ev_by_id = {e["event_id"]: e for e in d["events"]}
    criteria = []
    for c in d["criteria"]:
        evs = [ev_by_id[i] for i in (c["evidence_event_ids"] or []) if i in ev_by_id]
        criteria.append({
            "criterion_id": c["criterion_id"], "result": c["result"], "auto_fail": c["auto_fail"],
            "points": f"{c['points']:g}/{c['max_points']:g}", "rationale": c["rationale"],
            "evidence": [{"type": e["type"], "start": round(e["start_s"], 2), "at": _fmt_s(e["start_s"]), "evidence": e["evidence"]} for e in evs],
        })
    m = d["metrics"]
    roles = s.get("roles")
    meta = [
        ("agent", s["agent_id"] or "—"), ("queue", s["queue"] or "—"), ("customer", s["customer_id"] or "—"),
        ("started", _fmt_dt(s["started_at"]) or "—"), ("processed", _fmt_dt(s["processed_at"])),
        ("duration", _fmt_s(s["duration_s"])),
        ("audio", f"{'stereo' if (s['channels'] or 1) > 1 else 'mono'}, {s['sample_rate']} Hz, {s['codec'] or ''}"),
        ("language", f"{s['language'] or '—'}"), ("roles", f"{s['role_method'] or '—'} {roles or ''}"),
        ("talk", f"agent {_fmt_pct(m.get('talk_ratio_agent'))} of talk time" if m.get("talk_ratio_agent") is not None else "—"),
        ("hold", f"{int(m.get('hold_count') or 0)} holds, {_fmt_num(m.get('hold_total_s'), 1, ' s')}" if m.get("hold_count") is not None else "—"),
        ("dead air", _fmt_num(m.get("dead_air_total_s"), 1, " s")),
        ("overtalk", _fmt_num(m.get("overtalk_total_s"), 1, " s")),
        ("source", s["source_path"]),
    ]
    return {
        "call": {"call_id": cid, "file_name": s["file_name"], "grade": s["grade"] or ("na" if s["scorecard_id"] else None),
                 "percent": _fmt_num(s["percent"], 1), "reasons": s["flag_reasons"] or [],
                 "scorecard": f"{s['scorecard_id']} v{s['scorecard_version']}" if s["scorecard_id"] else None},
        "audio_src": audio_src, "audio_note": audio_note, "meta": meta, "criteria": criteria,
        "figs": {"timeline": _timeline_fig(d, "fig-timeline"), "emotion": _emotion_fig(d, "fig-emotion")},
        "transcript": _transcript_html(d)[0], "n_utterances": len(d["utterances"]), "n_events": len(d["events"]),
    }


# ------------------------------------------------------------------------------------------------
# entry point


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _write(path: Path, text: str) -> int:
    data = text.encode("utf-8")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def build_report(db_path: str | Path, out_dir: str | Path, *, since: date | None = None, until: date | None = None,
                 audio: AudioMode = "link", max_call_pages: int = 5000, call_ids: Sequence[str] | None = None,
                 scorecard: str | None = None) -> ReportSummary:
    """Write the report site for the calls of [since, until] into out_dir; the database is opened read-only."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if audio not in ("link", "copy", "none"):
        raise ReportError(None, f"--audio must be link, copy or none, not {audio!r}")
    try:
        (out_dir / "calls").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(out_dir, f"cannot create the report folder: {e}") from e
    con = store.connect(db_path, read_only=True)
    try:
        try:
            con.execute("SELECT 1 FROM flagged_queue LIMIT 0")
        except duckdb.Error as e:
            raise ReportError(db_path, f"not a callqa database at the current schema (open it once with `callqa run`): {e}") from e
        period = Period(since, until)
        if scorecard is None:
            scorecard, version = _main_scorecard(con)
        else:
            row = con.execute("SELECT max(scorecard_version) FROM current_scores WHERE scorecard_id = ?", [scorecard]).fetchone()
            version = row[0] if row else None
        env = _env()
        common = {"version": __version__, "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "db_name": Path(db_path).name, "period_label": period.label}
        written = 0
        import plotly.offline

        written += _write(out_dir / "plotly.min.js", plotly.offline.get_plotlyjs())

        ids = _select_calls(con, period, scorecard, max_call_pages, call_ids)
        pages = {cid: f"calls/{cid}.html" for cid in ids}
        call_tpl = env.get_template("call.html.j2")
        listing = []
        for start in range(0, len(ids), 500):  # bounded memory on big reports
            chunk = ids[start:start + 500]
            data = _call_data(con, chunk)
            for cid in chunk:
                d = data.get(cid)
                if d is None:
                    pages.pop(cid, None)
                    continue
                ctx = _call_page(d, out_dir, audio)
                written += _write(out_dir / pages[cid], call_tpl.render(root="../", **common, **ctx))
                s = d["summary"]
                listing.append({"href": pages[cid], "file_name": s["file_name"], "agent_id": s["agent_id"], "queue": s["queue"],
                                "started": _fmt_dt(s["started_at"] or s["processed_at"]), "duration": _fmt_s(s["duration_s"]),
                                "channels": s["channels"], "language": s["language"], "percent": _fmt_num(s["percent"], 1),
                                "grade": s["grade"] or "na", "flagged": s["flagged"]})
        dash = _dashboard(con, period, scorecard, version, pages)
        written += _write(out_dir / "index.html", env.get_template("dashboard.html.j2").render(
            root="", scorecard=scorecard, scorecard_version=version, **common, **dash))
        written += _write(out_dir / "calls.html", env.get_template("calls.html.j2").render(
            root="", calls=listing, omitted=max(0, dash["calls_total"] - len(listing)) if call_ids is None else 0, **common))
    finally:
        con.close()
    return ReportSummary(out_dir=out_dir, index=out_dir / "index.html", calls_total=dash["calls_total"],
                         flagged=int(dash["flagged"] or 0), call_pages=len(listing), bytes_written=written,
                         seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------
# the nightly run's summary (published as a Prefect markdown artifact by flows/nightly.py)


def _md_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        v = "; ".join(str(x) for x in v)
    elif isinstance(v, float):
        v = f"{v:.1f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def run_flagged(db_path: str | Path, run_id: str, limit: int = 50) -> tuple[int, list[dict]]:
    """The calls this run stored that are in the flagged queue (worst first), and how many there are."""
    con = store.connect(db_path, read_only=True)
    try:
        total = con.execute("""SELECT count(*) FROM flagged_queue q JOIN calls c USING (call_id) WHERE c.run_id = ?""",
                            [run_id]).fetchone()[0]
        rows = _rows(con, """SELECT q.file_name, q.agent_id, q.queue, round(q.percent, 1) AS percent, q.grade, q.flag_reasons, q.call_id
                             FROM flagged_queue q JOIN calls c USING (call_id) WHERE c.run_id = ?
                             ORDER BY q.auto_fail DESC, q.percent ASC NULLS FIRST, q.call_id LIMIT ?""", [run_id, limit])
    finally:
        con.close()
    return int(total), rows


def run_markdown(summary: dict[str, Any], flagged_total: int, flagged: Sequence[dict], report: str | None,
                 report_note: str | None = None) -> str:
    """Markdown for one nightly run: its counts, the calls it flagged, and where the report is."""
    wall, audio = summary.get("wall_s") or 0, summary.get("audio_s") or 0
    lines = [
        f"# callqa nightly run `{summary.get('run_id', '')}`",
        "",
        f"Database: `{summary.get('db_path', '')}`",
        "",
        "| discovered | skipped | processed | failed | flagged | audio | wall | speed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| {d} | {s} | {p} | {f} | {fl} | {a:.1f} min | {w:.1f} s | {x} |".format(
            d=summary.get("discovered", 0), s=summary.get("skipped", 0), p=summary.get("processed", 0),
            f=summary.get("failed", 0), fl=summary.get("flagged", 0), a=audio / 60, w=wall,
            x=f"{audio / wall:.1f}× real time" if wall and audio else "—"),
        "",
        f"## Flagged calls ({flagged_total})",
        "",
    ]
    if flagged:
        lines += ["| call | agent | queue | score | grade | reasons | call_id |", "|---|---|---|---:|---|---|---|"]
        lines += [f"| {_md_cell(r['file_name'])} | {_md_cell(r['agent_id'])} | {_md_cell(r['queue'])} | {_md_cell(r['percent'])} "
                  f"| {_md_cell(r['grade'])} | {_md_cell(r['flag_reasons'])} | `{str(r['call_id'])[:12]}` |" for r in flagged]
        if flagged_total > len(flagged):
            lines.append(f"\n… and {flagged_total - len(flagged)} more: `callqa flagged --db {summary.get('db_path', '')}`")
    else:
        lines.append("No call in this run was flagged.")
    lines += ["", "## Report", ""]
    if report:
        lines.append(f"[{report}]({Path(report).resolve().as_uri()})")
    if report_note:
        lines.append(report_note)
    return "\n".join(lines) + "\n"


def publish_run(summary: dict[str, Any], settings: Any, logger: Any) -> str | None:
    """Build the HTML report when configured, and publish the run as a Prefect markdown artifact.

    Neither may fail a batch whose calls are already stored: problems are logged and named in the artifact.
    """
    from prefect.artifacts import create_markdown_artifact

    report, note = None, None
    if settings.report.out_dir is not None:
        try:
            built = build_report(summary["db_path"], settings.report.out_dir, audio=settings.report.audio,
                                 max_call_pages=settings.report.max_call_pages)
            report = str(built.index)
        except Exception as e:  # noqa: BLE001 - the calls are stored; a report problem must not fail the run
            note = f"the report could not be built: {e}"
            logger.warning(note)
    else:
        note = f"build it with `callqa report --db {summary['db_path']} --out DIR` (or set report.out_dir)"
    try:
        total, flagged = run_flagged(summary["db_path"], summary["run_id"])
        create_markdown_artifact(key="callqa-nightly-run", markdown=run_markdown(summary, total, flagged, report, note),
                                 description=f"callqa nightly run {summary['run_id']}")
    except Exception as e:  # noqa: BLE001
        logger.warning("could not publish the run artifact: %s", e)
    return report
