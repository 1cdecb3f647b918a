"""Centre KPIs from Python: the table macros of migration 0011 as typed records.

Each KPI (`KPIS`) is one macro `kpi_<name>(since, until, grain := ..., period := ...)`; `read_kpi` runs
it with parameters (never string-built SQL), returns one `KpiRow` per period and group, and fills the
periods of the range without calls with zero-call rows, so a trend chart shows the gap. The settings
(`kpi.repeat_window_days`, `kpi.long_hold_s`) are passed as the macros' parameters; the per-queue targets
are a table the macros join, written by `sync_targets` from `kpi.targets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import duckdb

from callqa.config.settings import KpiSettings

Grain = Literal["agent", "team", "queue", "centre"]
Period = Literal["day", "week", "month"]
GRAINS: tuple[str, ...] = ("agent", "team", "queue", "centre")
PERIODS: tuple[str, ...] = ("day", "week", "month")
KPIS: tuple[str, ...] = ("repeat_contacts", "complaints", "escalations", "effort", "times", "satisfaction")


@dataclass(frozen=True)
class KpiRow:
    """One period x group of one KPI: `calls` and the KPI's own columns in `values` (None: undefined)."""

    kpi: str
    period_start: date
    group_key: str
    calls: int
    values: dict[str, Any] = field(default_factory=dict)


def sync_targets(con: duckdb.DuckDBPyConnection, settings: KpiSettings) -> None:
    """Replace the kpi_targets table with `kpi.targets` (one transaction)."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM kpi_targets")
        con.executemany(
            "INSERT INTO kpi_targets (queue, handle_s, talk_s, hold_s, dead_air_s) VALUES (?, ?, ?, ?, ?)",
            [[q, t.handle_s, t.talk_s, t.hold_s, t.dead_air_s] for q, t in settings.targets.items()],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def read_kpi(
    con: duckdb.DuckDBPyConnection,
    kpi: str,
    since: date,
    until: date,
    *,
    grain: Grain = "agent",
    period: Period = "day",
    settings: KpiSettings | None = None,
    fill_empty: bool = True,
) -> list[KpiRow]:
    """One KPI over [since, until] per period and group, ordered by period then group."""
    if kpi not in KPIS:
        raise ValueError(f"unknown KPI {kpi!r} (known: {', '.join(KPIS)})")
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    if until < since:
        raise ValueError(f"the range ends ({until}) before it starts ({since})")
    s = settings or KpiSettings()
    extra, params = "", [since, until, grain, period]
    if kpi == "repeat_contacts":
        extra, params = ", window_days := ?", [*params, s.repeat_window_days]
    elif kpi == "effort":
        extra, params = ", long_hold_s := ?", [*params, s.long_hold_s]
    # the macro name comes from KPIS (checked above), every value is a parameter
    cur = con.execute(
        f"SELECT * FROM kpi_{kpi}(?, ?, grain := ?, period := ?{extra}) ORDER BY period_start, group_key", params
    )
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    out = [
        KpiRow(
            kpi,
            r.pop("period_start"),
            r.pop("group_key"),
            int(r.pop("calls")),
            {k: v for k, v in r.items()},
        )
        for r in rows
    ]
    if fill_empty:
        out = _fill(out, kpi, period_starts(since, until, period))
    return out


def _fill(rows: list[KpiRow], kpi: str, starts: list[date]) -> list[KpiRow]:
    """Zero-call rows for the periods in which no group had a call (one per group seen in the range)."""
    groups = sorted({r.group_key for r in rows})
    seen = {r.period_start for r in rows}
    filled = list(rows)
    for p in starts:
        if p not in seen:
            filled += [KpiRow(kpi, p, g, 0, {}) for g in groups]
    return sorted(filled, key=lambda r: (r.period_start, r.group_key))


def period_end(start: date, period: Period) -> date:
    """The last day of the period that starts on `start`."""
    if period == "day":
        return start
    if period == "week":
        return start + timedelta(days=6)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def period_starts(since: date, until: date, period: Period) -> list[date]:
    """The first day of every period that overlaps [since, until] (weeks start on Monday)."""
    if period == "day":
        first = since
    elif period == "week":
        first = since - timedelta(days=since.weekday())
    else:
        first = since.replace(day=1)
    out, d = [], first
    while d <= until:
        out.append(d)
        if period == "day":
            d += timedelta(days=1)
        elif period == "week":
            d += timedelta(days=7)
        else:
            d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


# --------------------------------------------------------------------------- dashboard panels


@dataclass(frozen=True)
class PanelSpec:
    """One dashboard KPI panel: the centre-wide value `column` of macro `kpi` per period.

    `key` names the KPI as the audit report does (its labels and targets: callqa.workspace.audit);
    `details` are further columns of the same macro shown under the value (funnel stages, components).
    """

    key: str
    kpi: str
    column: str
    unit: str  # "rate" | "seconds" | "score"
    higher_is_better: bool
    details: tuple[str, ...] = ()


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec(
        "complaint_rate",
        "complaints",
        "complaint_rate",
        "rate",
        False,
        ("complaint_calls", "escalation_request_calls"),
    ),
    PanelSpec(
        "fcr_rate",
        "repeat_contacts",
        "fcr_rate",
        "rate",
        True,
        ("repeat_rate", "repeat_contacts", "calls_with_customer", "calls_without_customer"),
    ),
    PanelSpec(
        "escalation_rate",
        "escalations",
        "escalation_rate",
        "rate",
        False,
        ("escalation_requested", "transferred", "escalated", "calls_with_tier", "tier_2_or_above", "tier_3"),
    ),
    PanelSpec(
        "avg_effort",
        "effort",
        "avg_effort_score",
        "score",
        False,
        ("high_effort_calls", "repeat_mentions", "customer_repeats", "transfers", "long_holds", "dead_air_s"),
    ),
    PanelSpec("avg_handle_s", "times", "avg_handle_s", "seconds", False, ("over_handle_target", "handle_vs_target")),
    PanelSpec("avg_hold_s", "times", "avg_hold_s", "seconds", False, ("over_hold_target", "hold_vs_target")),
    PanelSpec("avg_dead_air_s", "times", "avg_dead_air_s", "seconds", False, ("over_dead_air_target",)),
    PanelSpec("avg_csat", "satisfaction", "avg_csat", "score", True, ("csat_responses", "nps", "nps_responses")),
)


@dataclass(frozen=True)
class PanelPoint:
    """One period of a panel: its calls, the KPI's value (None: no data) and the detail columns."""

    period_start: date
    calls: int
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KpiPanel:
    """A KPI over the periods of a range, and the last period against the one before it.

    `current` is the period holding the range's last day, `previous` the one before (None when the range
    has one period); a value of None is "no data" (no calls, or none that can be judged: no customer ids,
    no survey answers). `change` is relative ((current - previous) / |previous|; None when either is
    missing or previous is 0), `delta` the plain difference; `improved` says whether the change went the
    good way (None: no change or nothing to compare). `target` is the centre-wide target
    (`kpi.rate_targets`, `kpi.targets.default` for times), `on_target` the current value against it.
    """

    spec: PanelSpec
    period: Period
    points: list[PanelPoint]
    target: float | None
    since: date
    until: date

    @property
    def current_days(self) -> tuple[int, int]:
        """(days of the current period inside the range, days of the period): a month in progress is partial."""
        start = self.current.period_start
        end = period_end(start, self.period)
        inside = (min(end, self.until) - max(start, self.since)).days + 1
        return inside, (end - start).days + 1

    @property
    def current(self) -> PanelPoint:
        return self.points[-1]

    @property
    def previous(self) -> PanelPoint | None:
        return self.points[-2] if len(self.points) > 1 else None

    @property
    def delta(self) -> float | None:
        p = self.previous
        if p is None or p.value is None or self.current.value is None:
            return None
        return float(self.current.value) - float(p.value)

    @property
    def change(self) -> float | None:
        p, d = self.previous, self.delta
        if d is None or p is None or not p.value:
            return None
        return d / abs(float(p.value))

    @property
    def improved(self) -> bool | None:
        d = self.delta
        if d is None or abs(d) < 1e-12:
            return None
        return (d > 0) == self.spec.higher_is_better

    @property
    def on_target(self) -> bool | None:
        v = self.current.value
        if v is None or self.target is None:
            return None
        return v >= self.target if self.spec.higher_is_better else v <= self.target


def panel_targets(settings: KpiSettings) -> dict[str, float]:
    """The centre-wide target of every panel (as the audit report's findings use them)."""
    d = settings.targets["default"]
    return {
        **settings.rate_targets.model_dump(),
        "avg_handle_s": d.handle_s,
        "avg_hold_s": d.hold_s,
        "avg_dead_air_s": d.dead_air_s,
    }


def read_panels(
    con: duckdb.DuckDBPyConnection,
    since: date,
    until: date,
    *,
    period: Period = "week",
    settings: KpiSettings | None = None,
    with_satisfaction: bool | None = None,
) -> list[KpiPanel]:
    """The dashboard's KPI panels over [since, until] per `period`, centre-wide, through `read_kpi`.

    Each macro runs once (the three time panels share one `kpi_times` read). The satisfaction panel is
    left out when no call of the range has a survey answer (`with_satisfaction=None`), or as forced.
    """
    s = settings or KpiSettings()
    tg = panel_targets(s)
    starts = period_starts(since, until, period)
    by_kpi: dict[str, dict[date, KpiRow]] = {}
    for kpi in dict.fromkeys(p.kpi for p in PANELS):
        rows = read_kpi(con, kpi, since, until, grain="centre", period=period, settings=s, fill_empty=False)
        by_kpi[kpi] = {r.period_start: r for r in rows}
    if with_satisfaction is None:
        sat = by_kpi["satisfaction"].values()
        with_satisfaction = any((r.values.get("csat_responses") or 0) > 0 for r in sat)
    out = []
    for spec in PANELS:
        if spec.kpi == "satisfaction" and not with_satisfaction:
            continue
        points = []
        for p in starts:
            r = by_kpi[spec.kpi].get(p)
            if r is None:
                points.append(PanelPoint(p, 0, None, {}))
            else:
                v = r.values.get(spec.column)
                points.append(
                    PanelPoint(p, r.calls, None if v is None else float(v), {d: r.values.get(d) for d in spec.details})
                )
        out.append(KpiPanel(spec, period, points, tg.get(spec.key), since, until))
    return out
