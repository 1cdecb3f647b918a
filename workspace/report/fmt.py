"""How values read on the report's pages: durations, numbers, percentages, timestamps, clipped text, escaped HTML."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape as html_escape
from typing import Any


def fmt_s(s: float | None) -> str:
    if s is None:
        return "—"
    m, sec = divmod(float(s), 60)
    return f"{int(m)}:{sec:04.1f}"


def fmt_num(v: Any, nd: int = 1, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{float(v):,.{nd}f}{suffix}"


def fmt_pct(v: Any) -> str:
    return fmt_num(None if v is None else 100 * float(v), 0, " %")


def fmt_dt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    return str(v)


def clip(s: str | None, n: int) -> str:
    s = (s or "").replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def esc(s: Any) -> str:
    # the transcript is the bulk of a call page: plain html.escape here, not per-item template lookups
    return html_escape("" if s is None else str(s), quote=True)


def lane(u: dict) -> str:
    """The row a turn is shown on: its role when known, else its speaker label."""
    role = u.get("role") or "unknown"
    return role if role in ("agent", "customer") else f"{u['speaker']}"
