"""Headline KPIs compared with the previous period and with targets, worded as the audit's main findings,
and the action plan template derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callqa.config.settings import KpiSettings
from callqa.workspace import kpis
from callqa.workspace.audit.data import KPIS, Kpi


@dataclass(frozen=True)
class Finding:
    kpi: Kpi
    value: Any
    previous: Any  # None: no comparison, or nothing to compare with
    # vs previous: relative (0.15 = +15 %) for counts, rates, times and scores; in points for the
    # point-valued KPIs (QA score, NPS), whose relative change is meaningless near or below zero
    change: float | None
    target: float | None
    on_target: bool | None


def targets(settings: KpiSettings) -> dict[str, float]:
    """Every headline KPI's target: the rates from `kpi.rate_targets`, the times from `kpi.targets.default`
    (the centre-wide figure; the time KPI macros judge each call against its own queue's target)."""
    return kpis.panel_targets(settings)


def findings(current: dict[str, Any], previous: dict[str, Any] | None, settings: KpiSettings) -> list[Finding]:
    tg = targets(settings)
    out = []
    for k in KPIS:
        v = current.get(k.key)
        p = previous.get(k.key) if previous is not None else None
        if v is None or p is None:
            change = None
        elif k.unit == "points":
            change = v - p
        else:
            change = (v - p) / abs(p) if p != 0 else None
        t = tg.get(k.key)
        ok = None if v is None or t is None else (v >= t if k.higher_is_better else v <= t)
        out.append(Finding(k, v, p, change, t, ok))
    return out


def fmt_value(unit: str, v: Any) -> str:
    if v is None:
        return "–"
    if unit == "count":
        return f"{int(v):,}"
    if unit == "rate":
        return f"{100 * v:.1f} %"
    if unit == "seconds":
        return f"{v:.0f} s"
    if unit == "points":
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_change(change: float | None, unit: str = "rate", pts: str = "pts") -> str:
    """A change for a reader: relative in %, or in points (`pts`: the word, 分 in Mandarin)."""
    if change is None:
        return "–"
    if unit == "points":
        return f"±0.0 {pts}" if abs(change) < 0.05 else f"{change:+.1f} {pts}"
    return "±0 %" if abs(change) < 0.005 else f"{100 * change:+.0f} %"


def sentence(f: Finding, name: str, lab: dict[str, str]) -> str:
    """e.g. "Complaint rate 4.1 % (+15 % vs previous period; target 3.0 %)"."""
    bits = []
    if f.change is not None:
        bits.append(f"{fmt_change(f.change, f.kpi.unit, lab['pts'])} {lab['vs_previous']}")
    if f.target is not None:
        bits.append(f"{lab['target_word']} {fmt_value(f.kpi.unit, f.target)}")
    tail = f" ({'; '.join(bits)})" if bits else ""
    return f"{name} {fmt_value(f.kpi.unit, f.value)}{tail}"


def actions(found: list[Finding], criteria: list[dict[str, Any]], lab: dict[str, str]) -> list[dict[str, str]]:
    """Prioritised actions: KPIs off target first (by relative gap), then the criteria failed most.

    A template: the measure is the KPI and the target it must reach; owner and due date are left for the
    QA lead to fill in.
    """
    gaps = []
    for f in found:
        if f.on_target is False and f.target:
            gaps.append((abs(f.value - f.target) / abs(f.target), f))
    out = []
    for _, f in sorted(gaps, key=lambda g: -g[0]):
        name = lab[f.kpi.key]
        out.append(
            {
                "action": f"{name}: {fmt_value(f.kpi.unit, f.value)} → {fmt_value(f.kpi.unit, f.target)}",
                "measure": f"{name} {'≥' if f.kpi.higher_is_better else '≤'} {fmt_value(f.kpi.unit, f.target)}",
            }
        )
    for c in criteria[:3]:
        rate = c["fail_rate"] or 0
        out.append(
            {
                "action": f"{c['criterion_id']} ({c['worst_queue']} / {c['worst_agent']}): "
                f"{lab['fail_rate']} {100 * rate:.1f} %",
                "measure": f"{c['criterion_id']} {lab['fail_rate']} ≤ {100 * rate / 2:.1f} %",
            }
        )
    return [{"priority": f"P{min(i + 1, 3)}", **a, "owner": "", "due": ""} for i, a in enumerate(out)]
