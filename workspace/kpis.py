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
