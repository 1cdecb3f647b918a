"""The dashboards' centre-KPI panels (static `callqa report` and the served /dashboard alike).

The numbers are `callqa.workspace.kpis.read_panels` (the KPI macros of migrations 0011/0013, centre-wide,
per week or month); this module only picks the range, formats and draws: per KPI the last period's value,
the previous period's, the change with an arrow coloured by whether it went the good way, the target and a
plotly trend line in which a period without data is a gap. Labels are the audit report's (`--lang zh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from markupsafe import Markup

from callqa.config.settings import KpiSettings
from callqa.pipeline.types import CallQAError
from callqa.workspace import kpis
from callqa.workspace.audit.findings import fmt_change, fmt_value
from callqa.workspace.audit.labels import LANGS, labels
from callqa.workspace.report.figures import fig_html
from callqa.workspace.report.queries import Period

TEMPLATES = Path(__file__).parent / "templates"
PANEL_PERIODS: tuple[str, ...] = ("week", "month")
# periods drawn when the range has no start: half a year of weeks, two years of months (a trend long
# enough to see a season, short enough that one panel stays readable at ~300 px wide)
DEFAULT_POINTS = {"week": 26, "month": 24}


class PanelError(CallQAError):
    stage = "report"


@dataclass(frozen=True)
class PanelRange:
    since: date
    until: date
    period: kpis.Period


def panel_range(con: duckdb.DuckDBPyConnection, period: Period, kpi_period: str) -> PanelRange:
    """The days the panels cover: the dashboard's period, else the periods up to the latest call's day.

    Without a start, the range goes back DEFAULT_POINTS periods but not before the first call; an empty
    database gives the periods ending today (every panel: no data).
    """
    if kpi_period not in PANEL_PERIODS:
        raise PanelError(None, f"the KPI period must be week or month, not {kpi_period!r}")
    first, last = con.execute(
        "SELECT min(CAST(coalesce(started_at, processed_at) AS DATE)), "
        "max(CAST(coalesce(started_at, processed_at) AS DATE)) FROM calls"
    ).fetchone() or (None, None)
    until = period.until or last or date.today()
    if period.since is not None:
        since = period.since
    else:
        n = DEFAULT_POINTS[kpi_period]
        back = until - timedelta(days=7 * (n - 1)) if kpi_period == "week" else _months_back(until, n - 1)
        since = max(back, first) if first is not None and first <= until else back
    if until < since:
        raise PanelError(None, f"the range ends ({until}) before it starts ({since})")
    return PanelRange(since, until, kpi_period)  # type: ignore[arg-type]


def _months_back(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - n, 12)
    return date(y, m + 1, 1)


def _signed(unit: str, delta: float) -> str:
    if unit == "rate":
        return f"{100 * delta:+.1f} pts"
    if unit == "seconds":
        return f"{delta:+.0f} s"
    return f"{delta:+.2f}"


# funnel stages and over-target counts are also shown as a share of the period's calls
_SHARE_OF_CALLS = ("escalation_requested", "transferred", "escalated", "tier_2_or_above", "tier_3", "high_effort_calls")


def _detail(key: str, v: Any, calls: int) -> str:
    if v is None:
        return "–"
    if key.endswith("_rate"):
        return f"{100 * v:.1f} %"
    if key.endswith("_vs_target"):
        return f"{v:.2f}×"
    if key == "dead_air_s":
        return f"{v:,.0f}"
    if key == "nps":
        return f"{v:.1f}"
    text = f"{int(v):,}"
    if calls and (key.startswith("over_") or key in _SHARE_OF_CALLS):
        text += f" ({100 * v / calls:.1f} %)"
    return text


def _trend(p: kpis.KpiPanel, lab: dict[str, str], div_id: str) -> Markup:
    unit = p.spec.unit
    scale = 100.0 if unit == "rate" else 1.0
    x = [str(pt.period_start) for pt in p.points]
    y = [None if pt.value is None else round(pt.value * scale, 4) for pt in p.points]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": x,
            "y": y,
            "customdata": [pt.calls for pt in p.points],
            "connectgaps": False,
            "line": {"color": "#2563eb", "width": 2},
            "marker": {"size": 5},
            "hovertemplate": "%{x}: %{y:.1f}"
            + (" %%" if unit == "rate" else "")
            + " · %{customdata} "
            + lab["calls_word"]
            + "<extra></extra>",
        }
    ]
    if p.target is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [x[0], x[-1]] if len(x) > 1 else x * 2,
                "y": [p.target * scale] * 2,
                "line": {"color": "#9aa5b1", "width": 1, "dash": "dash"},
                "hoverinfo": "skip",
            }
        )
    # month-day ticks, upright: full dates at 45° were cut off at the bottom of a ~300 px panel
    axis: dict[str, Any] = {
        "type": "date",
        "tickformat": "%m-%d" if p.period == "week" else "%Y-%m",
        "hoverformat": "%Y-%m-%d",
        "nticks": 5,
        "tickangle": 0,
    }
    if p.period == "month":  # one tick a month (plotly's own ticks fell mid-month: "2026-10 2026-10 2026-11")
        axis.update(dtick="M1" if len(x) <= 8 else "M3", tick0=x[0])
    if len(x) == 1:  # one point: plotly would range it over a millisecond
        d = date.fromisoformat(x[0])
        axis["range"] = [str(d - timedelta(days=4)), str(d + timedelta(days=4))]
    fig = {
        "data": data,
        "layout": {
            "showlegend": False,
            "xaxis": axis,
            "yaxis": {"rangemode": "tozero", "automargin": True, "ticksuffix": " %" if unit == "rate" else ""},
            "margin": {"l": 44, "r": 8, "t": 6, "b": 28},
            "font": {"size": 10},
        },
    }
    return fig_html(fig, div_id, 130)


def panel_view(p: kpis.KpiPanel, lab: dict[str, str]) -> dict[str, Any]:
    """One panel as strings for the template (and for a test reading what a reader sees)."""
    unit, cur, prev = p.spec.unit, p.current, p.previous
    change = p.change
    if p.delta is None:
        arrow, tone, change_text = "", "none", lab["no_data"] if cur.value is None or prev is not None else ""
    elif abs(p.delta) < 1e-12 or (change is not None and fmt_change(change, unit) == fmt_change(0.0, unit)):
        arrow, tone, change_text = "→", "flat", lab["unchanged"]
    else:
        arrow = "▲" if p.delta > 0 else "▼"
        tone = "good" if p.improved else "bad"
        change_text = fmt_change(change, unit) if change is not None else _signed(unit, p.delta)
    week = p.period == "week"
    inside, length = p.current_days
    partial = f" · {lab['partial_range'].format(n=inside)}" if inside < length else ""
    this = "this_week" if week else "this_month"
    details = [(lab[k], _detail(k, cur.details.get(k), cur.calls)) for k in p.spec.details] if cur.calls else []
    return {
        "key": p.spec.key,
        "title": lab[p.spec.key],
        "value": lab["no_data"] if cur.value is None else fmt_value(unit, cur.value),
        "has_value": cur.value is not None,
        "current_label": f"{lab[this]} ({lab['from_day']} {cur.period_start}{partial})",
        "calls_word": lab["calls_word"],
        "calls": cur.calls,
        "previous_label": lab["last_week" if week else "last_month"],
        "previous": None if prev is None else (lab["no_data"] if prev.value is None else fmt_value(unit, prev.value)),
        "arrow": arrow,
        "tone": tone,
        "change": change_text,
        "change_word": {"good": lab["better"], "bad": lab["worse"]}.get(tone, ""),
        "target": None if p.target is None else fmt_value(unit, p.target),
        "on_target": p.on_target,
        "details": details,
    }


def template_env() -> jinja2.Environment:
    """The report's Jinja2 environment (autoescaped, strict), shared by the dashboard and its KPI panels."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def kpi_panels_html(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    kpi_period: str = "week",
    settings: KpiSettings | None = None,
    lang: str = "en",
    switch: list[dict[str, Any]] | None = None,
) -> Markup:
    """The KPI panels section for a dashboard. `switch`: links to the other period/language (the served
    dashboard passes them; the static report has none)."""
    if lang not in LANGS:
        raise PanelError(None, f"the language must be en or zh, not {lang!r}")
    lab = labels(lang)
    rng = panel_range(con, period, kpi_period)
    panels = kpis.read_panels(con, rng.since, rng.until, period=rng.period, settings=settings)
    views = [{**panel_view(p, lab), "fig": _trend(p, lab, f"fig-kpi-{p.spec.key}")} for p in panels]
    return Markup(
        template_env()
        .get_template("kpi_panels.html.j2")
        .render(
            lab=lab,
            lang=lang,
            panels=views,
            satisfaction=any(p.spec.kpi == "satisfaction" for p in panels),
            range_label=f"{rng.since} – {rng.until}",
            period_label=lab["per_week" if kpi_period == "week" else "per_month"],
            switch=switch or [],
        )
    )
