"""What a reader sees on the static dashboard: charts fit their cards, the trend axis is labelled in days."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from callqa import rowgen
from callqa.pipeline import store
from callqa.workspace.report import build_report
from callqa.workspace.report.figures import grade_bars, score_trend


def _figure(html: str, div_id: str) -> dict:
    m = re.search(
        r'Plotly\.newPlot\(\s*"' + div_id + r'",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', str(html), re.S
    )
    assert m, div_id
    return {"data": json.loads(m.group(1)), "layout": json.loads(m.group(2))}


def test_one_day_trend_is_labelled_in_days():
    fig = _figure(score_trend([{"day": "2026-11-20", "p": 80.0, "n": 3}], [], []), "fig-trend")
    axis = fig["layout"]["xaxis"]
    # plotly's autorange around one point labels it in milliseconds ("23:59:59.999")
    assert axis["tickformat"] == "%Y-%m-%d" and axis["dtick"] == 86_400_000
    assert axis["range"] == ["2026-11-19 12:00", "2026-11-20 12:00"]


def test_long_trend_keeps_automatic_ticks_in_days():
    days = [{"day": f"2026-10-{d:02d}", "p": 70.0, "n": 1} for d in range(1, 31)]
    axis = _figure(score_trend(days, [], []), "fig-trend")["layout"]["xaxis"]
    assert axis["tickformat"] == "%Y-%m-%d" and "dtick" not in axis and "range" not in axis


def test_grade_bars_take_the_card_width():
    layout = _figure(grade_bars({"good": 3, "poor": 1}), "fig-grades")["layout"]
    assert layout["autosize"] is True and "width" not in layout


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    con = store.connect(tmp / "one_day.duckdb")
    frames = rowgen.generate(12, start=datetime(2026, 11, 20))
    frames["calls"]["started_at"] = datetime(2026, 11, 20, 10)  # one day of data
    rowgen.load_into(con, frames)
    con.close()
    build_report(tmp / "one_day.duckdb", tmp / "site")
    return (tmp / "site" / "index.html").read_text(encoding="utf-8")


def test_dashboard_cards_clip_and_resize_their_charts(dashboard):
    card = re.search(r'<section class="([^"]+)"><h2>Grade bands</h2>', dashboard)
    assert card and "fig" in card.group(1).split()
    css = re.search(r"\.card\.fig\s*\{([^}]*)\}", dashboard)
    assert css and "overflow: hidden" in css.group(1)  # a plain .card scrolls sideways (overflow-x: auto)
    assert "ResizeObserver" in dashboard
    axis = _figure(dashboard, "fig-trend")["layout"]["xaxis"]
    assert axis["dtick"] == 86_400_000 and axis["tickformat"] == "%Y-%m-%d"


def test_flag_reasons_are_counted_per_rule_not_per_call():
    """ "long hold: hold_max_s = 125" and "... = 170" are one bar; an escalation without the customer's words."""
    import duckdb

    from callqa.workspace.report.figures import reason_bars
    from callqa.workspace.report.queries import Period, flag_reasons

    con = duckdb.connect()
    con.execute("CREATE TABLE flagged_reasons (call_id VARCHAR, label VARCHAR, day DATE, scorecard_id VARCHAR)")
    labels = [
        ("c1", "long hold: hold_max_s = 125"),
        ("c2", "long hold: hold_max_s = 170"),
        ("c1", 'customer asked to escalate: escalation_request by customer: customer at 145.7s: "get me a manager"'),
        ("c3", "customer still negative at the end: customer_emotion_end = -0.314"),
        ("c3", "grade poor below fair"),
        ("c4", "auto-fail: polite_language"),
    ]
    con.executemany("INSERT INTO flagged_reasons VALUES (?, ?, DATE '2026-11-20', 'card')", labels)
    got = {r["reason"]: r["n"] for r in flag_reasons(con, Period(), None)}
    assert got == {
        "long hold: hold_max_s": 2,
        "customer asked to escalate: escalation_request by customer": 1,
        "customer still negative at the end: customer_emotion_end": 1,
        "grade poor below fair": 1,
        "auto-fail: polite_language": 1,
    }
    fig = _figure(reason_bars(flag_reasons(con, Period(), None)), "fig-reasons")["data"][0]
    assert (
        max(len(y) for y in fig["y"]) <= 42
        and "customer asked to escalate: escalation_request by customer" in (fig["hovertext"])
    )
