"""The report's plotly figures: the dashboard's charts and each call's timeline and emotion curve.

Figures are plain dicts in plotly's JSON schema, built from query rows and rendered as divs; plotly.js is
shipped beside the pages and loaded once per page.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import plotly.io as pio
from markupsafe import Markup

from callqa.workspace.report.fmt import clip, esc, fmt_num, lane

GRADES = ("excellent", "good", "fair", "poor", "na")
GRADE_COLOURS = {"excellent": "#15803d", "good": "#65a30d", "fair": "#d97706", "poor": "#dc2626", "na": "#9aa5b1"}
LANE_COLOURS = {
    "agent": "#2563eb",
    "customer": "#059669",
    "unknown": "#64748b",
    "hold": "#7c3aed",
    "overtalk": "#ef4444",
    "dead air": "#f59e0b",
    "events": "#0ea5e9",
}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


def fig_html(fig: dict, div_id: str, height: int, click_seek: bool = False) -> Markup:
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
        post = (
            "var gd = document.getElementById('{plot_id}'); gd.on('plotly_click', function (d) {"
            " var p = d.points[0]; var t = p.customdata; if (Array.isArray(t)) t = t[0];"
            " if (t !== undefined && t !== null) seek(t); });"
        )
    html = pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        validate=False,
        div_id=div_id,
        config=_PLOT_CONFIG,
        post_script=post,
        default_height=height,
    )
    return Markup(html)


def empty(msg: str) -> Markup:
    return Markup(f'<div class="empty">{esc(msg)}</div>')


def _grade_of(percent: float) -> str:
    return "excellent" if percent >= 90 else "good" if percent >= 80 else "fair" if percent >= 60 else "poor"


# ------------------------------------------------------------------------------------------------
# dashboard


def score_histogram(bins: list[dict]) -> Markup:
    if not bins:
        return empty("no scored calls")
    return fig_html(
        {
            "data": [
                {
                    "type": "bar",
                    "x": [b["b"] + 2.5 for b in bins],
                    "y": [b["n"] for b in bins],
                    "width": 4.6,
                    "marker": {"color": [GRADE_COLOURS[_grade_of(b["b"] + 2.5)] for b in bins]},
                    "hovertemplate": "%{x:.0f} %% ±2.5: %{y} calls<extra></extra>",
                }
            ],
            "layout": {
                "xaxis": {"title": {"text": "score %"}, "range": [0, 100]},
                "yaxis": {"title": {"text": "calls"}},
            },
        },
        "fig-scores",
        280,
    )


def grade_bars(grades: dict[str, int]) -> Markup:
    order = [g for g in GRADES if g in grades] + sorted(g for g in grades if g not in GRADES)
    if not order:
        return empty("no calls")
    return fig_html(
        {
            "data": [
                {
                    "type": "bar",
                    "x": order,
                    "y": [grades[g] for g in order],
                    "text": [f"{grades[g]:,}" for g in order],
                    "textposition": "auto",
                    "marker": {"color": [GRADE_COLOURS.get(g, "#64748b") for g in order]},
                    "hovertemplate": "%{x}: %{y} calls<extra></extra>",
                }
            ],
            # autosize, no width: the bars take their card's width (the card clips, never scrolls)
            "layout": {
                "autosize": True,
                "xaxis": {"type": "category", "automargin": True},
                "yaxis": {"title": {"text": "calls"}, "automargin": True},
            },
        },
        "fig-grades",
        280,
    )


def reason_bars(reasons: list[dict]) -> Markup:
    if not reasons:
        return empty("nothing flagged")
    rs = list(reversed(reasons))
    return fig_html(
        {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    # long reasons clipped (automargin alone pushed them out of a half-width card), whole on hover
                    "y": [clip(r["reason"], 42) for r in rs],
                    "x": [r["n"] for r in rs],
                    "hovertext": [r["reason"] for r in rs],
                    "marker": {"color": "#dc2626"},
                    "hovertemplate": "%{hovertext}: %{x} calls<extra></extra>",
                }
            ],
            "layout": {"xaxis": {"title": {"text": "flagged calls"}}, "yaxis": {"automargin": True}},
        },
        "fig-reasons",
        max(220, 40 + 26 * len(rs)),
    )


def criteria_bars(rows: list[dict]) -> Markup:
    if not rows:
        return empty("no criterion results")
    rows = list(reversed(rows))
    rates = [None if r["pass_rate"] is None else 100 * r["pass_rate"] for r in rows]
    colours = ["#16a34a" if (v or 0) >= 80 else "#d97706" if (v or 0) >= 60 else "#dc2626" for v in rates]
    return fig_html(
        {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "y": [r["criterion_id"] + (" ⚑" if r["auto_fail"] else "") for r in rows],
                    "x": rates,
                    "text": [("n/a" if v is None else f"{v:.0f} %") for v in rates],
                    "textposition": "auto",
                    "customdata": [[r["passed"], r["failed"], r["not_applicable"]] for r in rows],
                    "marker": {"color": colours},
                    "hovertemplate": "%{y}: %{x:.1f} %% pass<br>pass %{customdata[0]} · fail %{customdata[1]}"
                    " · n/a %{customdata[2]}<extra></extra>",
                }
            ],
            "layout": {
                "xaxis": {"title": {"text": "pass rate % (applicable calls)"}, "range": [0, 100]},
                "yaxis": {"automargin": True},
            },
        },
        "fig-criteria",
        max(220, 40 + 26 * len(rows)),
    )


def hold_histogram(hist: list[dict]) -> Markup:
    if not hist:
        return empty("no holds or dead air measured in this period")
    data = []
    for kind in ("hold", "dead air"):
        pts = [h for h in hist if h["kind"] == kind]
        if pts:
            data.append(
                {
                    "type": "bar",
                    "name": kind,
                    "x": [p["b"] + 7.5 for p in pts],
                    "y": [p["n"] for p in pts],
                    "marker": {"color": LANE_COLOURS[kind]},
                    "hovertemplate": kind + " %{x:.0f} s ±7.5: %{y} calls<extra></extra>",
                }
            )
    fig = {
        "data": data,
        "layout": {
            "barmode": "group",
            "xaxis": {"title": {"text": "seconds per call (300 = 300 s or more)"}},
            "yaxis": {"title": {"text": "calls"}},
            "legend": {"orientation": "h", "y": 1.12},
        },
    }
    return fig_html(fig, "fig-holds", 260)


def score_trend(daily: list[dict], agents: list[str], agent_days: list[dict]) -> Markup:
    """The daily average over all agents, and each of `agents` (hidden until picked in the legend)."""
    if not daily:
        return empty("no calls in this period")
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "all agents",
            "x": [str(d["day"]) for d in daily],
            "y": [d["p"] for d in daily],
            "customdata": [d["n"] for d in daily],
            "line": {"width": 3, "color": "#111827"},
            "hovertemplate": "%{x}: %{y:.1f} %% over %{customdata} calls<extra>all agents</extra>",
        }
    ]
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for r in agent_days:
        by_agent[r["agent_id"]].append(r)
    for a in agents:
        pts = by_agent.get(a, [])
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": a,
                "x": [str(r["day"]) for r in pts],
                "y": [r["p"] for r in pts],
                "customdata": [r["calls"] for r in pts],
                "visible": "legendonly",
                "hovertemplate": "%{x}: %{y:.1f} %% over %{customdata} calls<extra>" + str(a) + "</extra>",
            }
        )
    fig = {
        "data": data,
        "layout": {
            "yaxis": {"title": {"text": "average score %"}},
            "xaxis": _day_axis([str(d["day"]) for d in daily]),
            "legend": {"orientation": "h", "y": -0.25},
            "margin": {"l": 60, "r": 20, "t": 10, "b": 80},
        },
    }
    return fig_html(fig, "fig-trend", 320)


def _day_axis(days: list[str]) -> dict[str, Any]:
    """A date axis labelled in days. Plotly autoranges a single point to a millisecond either side and
    labels it "23:59:59.999": with few days, one tick a day and half a day of padding either side."""
    axis: dict[str, Any] = {"type": "date", "tickformat": "%Y-%m-%d", "hoverformat": "%Y-%m-%d"}
    if days and len(days) <= 14:
        first, last = date.fromisoformat(min(days)[:10]), date.fromisoformat(max(days)[:10])
        axis["dtick"] = 86_400_000  # one day, in ms
        axis["range"] = [f"{first - timedelta(days=1)} 12:00", f"{last} 12:00"]
    return axis


# ------------------------------------------------------------------------------------------------
# call pages

_EVENT_LANES = {
    "hold": "hold",
    "hold_unannounced": "hold",
    "overtalk": "overtalk",
    "interruption": "overtalk",
    "dead_air": "dead air",
}


def timeline(d: dict, div_id: str) -> Markup:
    s = d["summary"]
    duration = float(s["duration_s"] or 0)
    lanes: dict[str, list[dict]] = defaultdict(list)
    for u in d["utterances"]:
        lanes[lane(u)].append({"start": u["start_s"], "end": u["end_s"], "text": u["text"]})
    for e in d["events"]:
        end = max(e["end_s"], e["start_s"] + 0.25)  # an instant event still shows as a sliver
        lanes[_EVENT_LANES.get(e["type"], "events")].append(
            {"start": e["start_s"], "end": end, "text": f"{e['type']}: {e['evidence']}"}
        )
    order = [n for n in ("agent", "customer") if n in lanes] + sorted(
        n for n in lanes if n not in ("agent", "customer", "hold", "overtalk", "dead air", "events")
    )
    order += [n for n in ("hold", "overtalk", "dead air", "events") if n in lanes]
    if not order:
        return empty("nothing to show on the timeline")
    data = []
    for name in order:
        items = lanes[name]
        colour = LANE_COLOURS.get(name, LANE_COLOURS["unknown"])
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": name,
                "y": [name] * len(items),
                "base": [round(i["start"], 2) for i in items],
                "x": [round(i["end"] - i["start"], 2) for i in items],
                "customdata": [round(i["start"], 2) for i in items],
                "hovertext": [clip(i["text"], 120) for i in items],
                "marker": {"color": colour, "line": {"width": 0}},
                "hovertemplate": "from %{customdata:.1f} s, %{x:.1f} s long<br>%{hovertext}<extra>" + name + "</extra>",
            }
        )
    fig = {
        "data": data,
        "layout": {
            "barmode": "overlay",
            "showlegend": False,
            "bargap": 0.35,
            "xaxis": {"title": {"text": "seconds (click a bar to play from there)"}, "range": [0, max(duration, 1.0)]},
            "yaxis": {"categoryorder": "array", "categoryarray": list(reversed(order)), "automargin": True},
            "margin": {"l": 80, "r": 20, "t": 10, "b": 40},
        },
    }
    return fig_html(fig, div_id, 90 + 36 * len(order), click_seek=True)


_NEG = {"negative", "angry", "anger", "sad", "sadness", "frustrated", "disgust", "fear", "annoyance", "disappointment"}
_POS = {"positive", "happy", "joy", "satisfied", "gratitude", "approval"}


def _emotion_value(u: dict) -> float | None:
    if u.get("sentiment") is not None:
        return float(u["sentiment"])
    emo, score = (u.get("emotion") or "").lower(), u.get("emotion_score")
    if not emo or score is None:
        return None
    return -float(score) if emo in _NEG else float(score) if emo in _POS else 0.0


def emotion_curve(d: dict, div_id: str) -> Markup:
    utts = d["utterances"]
    who = "customer"
    pts: list[Any] = [u for u in utts if u.get("role") == "customer"]
    if not pts:  # roles unknown (mono without diarization): show everyone, and say so
        who, pts = "all speakers (roles unknown)", list(utts)
    pts = [(u, _emotion_value(u)) for u in pts]
    pts = [(u, v) for u, v in pts if v is not None]
    if not pts:
        return empty("no emotion was measured for this call")
    x = [round((u["start_s"] + u["end_s"]) / 2, 2) for u, _ in pts]
    y = [round(v, 3) for _, v in pts]
    neg_events = [e for e in d["events"] if e["type"] == "negative_emotion"]
    colorscale = [[0, "#dc2626"], [0.5, "#a3a3a3"], [1, "#16a34a"]]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": who,
            "x": x,
            "y": y,
            "customdata": [round(u["start_s"], 2) for u, _ in pts],
            "hovertext": [f"{u.get('emotion') or ''} · {clip(u['text'], 90)}" for u, _ in pts],
            "line": {"shape": "linear", "color": "#059669", "width": 2},
            "marker": {"size": 8, "color": y, "colorscale": colorscale, "cmin": -1, "cmax": 1},
            "hovertemplate": "%{x:.1f} s: %{y:.2f}<br>%{hovertext}<extra></extra>",
        }
    ]
    if neg_events:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "negative_emotion event",
                "x": [e["start_s"] for e in neg_events],
                "y": [-1.05] * len(neg_events),
                "customdata": [e["start_s"] for e in neg_events],
                "marker": {"symbol": "triangle-up", "color": "#dc2626", "size": 10},
                "hovertext": [clip(e["evidence"], 90) for e in neg_events],
                "hovertemplate": "%{x:.1f} s: %{hovertext}<extra>negative emotion</extra>",
            }
        )
    m = d["metrics"]
    title = ""
    if m.get("customer_emotion_start") is not None or m.get("customer_emotion_end") is not None:
        start, end = fmt_num(m.get("customer_emotion_start"), 2), fmt_num(m.get("customer_emotion_end"), 2)
        title = f"start {start} → end {end}"
    fig = {
        "data": data,
        "layout": {
            "yaxis": {"title": {"text": "sentiment (−1 … +1)"}, "range": [-1.15, 1.1], "zeroline": True},
            "xaxis": {"title": {"text": "seconds"}, "range": [0, max(float(d["summary"]["duration_s"] or 0), 1.0)]},
            "showlegend": bool(neg_events),
            "legend": {"orientation": "h", "y": 1.15},
            "annotations": (
                [
                    {
                        "text": title,
                        "xref": "paper",
                        "yref": "paper",
                        "x": 1,
                        "y": 1.08,
                        "showarrow": False,
                        "xanchor": "right",
                        "font": {"color": "#616e7c"},
                    }
                ]
                if title
                else []
            ),
            "margin": {"l": 60, "r": 20, "t": 24, "b": 40},
        },
    }
    return fig_html(fig, div_id, 240, click_seek=True)
