"""The dashboards' centre-KPI panels: numbers against SQL over the KPI macros on generated rows, periods
without data, the static report and the served dashboard (week / month, English / Chinese)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callqa import rowgen
from callqa.config.settings import KpiSettings, load_settings
from callqa.pipeline import store
from callqa.workspace import kpis
from callqa.workspace.audit.findings import fmt_value
from callqa.workspace.audit.labels import labels
from callqa.workspace.report import build_report
from callqa.workspace.report.kpi_panels import kpi_panels_html, panel_range, panel_view
from callqa.workspace.report.queries import Period
from callqa.workspace.sandbox import connect_analyst

SINCE, UNTIL = date(2026, 10, 1), date(2026, 11, 29)
EMPTY_WEEK = date(2026, 10, 19)  # Monday of the week the fixture leaves without calls
EXTRA = {"repeat_contacts": ", window_days := 7", "effort": ", long_hold_s := 60"}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """300 rowgen calls over 60 days from 2026-10-01, none in the week of 19 October; customer ids with
    repeats, surveys on every other call, transfers and customer restatements on some."""
    path = tmp_path_factory.mktemp("panels") / "panels.duckdb"
    frames = rowgen.generate(300, seed=11, agents=5, start=datetime(2026, 10, 1))
    calls = frames["calls"]
    calls["customer_id"] = [None if i % 7 == 0 else f"C{i % 90}" for i in range(len(calls))]
    keep = ~calls["started_at"].between(datetime(2026, 10, 19), datetime(2026, 10, 25, 23, 59, 59))
    kept = set(calls.loc[keep, "call_id"])
    frames = {
        "calls": calls[keep],
        "events": frames["events"][frames["events"]["call_id"].isin(kept)],
        "call_metrics": frames["call_metrics"][frames["call_metrics"]["call_id"].isin(kept)],
    }
    con = store.connect(path)
    rowgen.load_into(con, frames)
    con.execute(
        "UPDATE calls SET csat = 1 + hash(call_id) % 5, nps = CAST(hash(call_id) % 11 AS INTEGER) "
        "WHERE hash(call_id, 's') % 2 = 0"
    )
    for typ, mod in (("transfer", 9), ("customer_repeat", 5)):
        con.execute(
            "INSERT INTO events (event_id, call_id, type, start_s, end_s, evidence, detector_version, role) "
            "SELECT ? || call_id, call_id, ?, 30, 32, 'test', 'test', 'customer' FROM calls"
            " WHERE hash(call_id, ?) % ? = 0",
            [typ, typ, typ, mod],
        )
    con.close()
    return path


@pytest.fixture()
def con(db):
    c = connect_analyst(db)
    yield c
    c.close()


def _sql(con, spec, period, start):
    """The panel's value and calls for one period, straight from its KPI macro (centre grain)."""
    return con.execute(
        f"SELECT {spec.column}, calls FROM kpi_{spec.kpi}(?, ?, grain := 'centre', period := ?"
        f"{EXTRA.get(spec.kpi, '')}) WHERE period_start = ?",
        [SINCE, UNTIL, period, start],
    ).fetchone()


@pytest.mark.parametrize("period", ["week", "month"])
def test_panel_numbers_equal_sql_over_the_kpi_macros(con, period):
    panels = kpis.read_panels(con, SINCE, UNTIL, period=period)
    assert [p.spec.key for p in panels] == [s.key for s in kpis.PANELS]  # surveys exist: satisfaction too
    starts = kpis.period_starts(SINCE, UNTIL, period)
    for p in panels:
        assert [pt.period_start for pt in p.points] == starts
        for pt in p.points:
            got = _sql(con, p.spec, period, pt.period_start)
            if got is None:  # a period without calls: no row, "no data"
                assert (pt.value, pt.calls) == (None, 0)
            else:
                assert pt.calls == got[1] and pt.value == pytest.approx(got[0])
        cur, prev = p.points[-1], p.points[-2]
        if cur.value is not None and prev.value:
            assert p.change == pytest.approx((cur.value - prev.value) / abs(prev.value))
            assert p.improved == ((cur.value > prev.value) == p.spec.higher_is_better)
    assert any(p.points[-1].value for p in panels)


def test_panel_numbers_from_the_raw_rows(con):
    """Complaint rate and effort components of the last week, counted on the tables themselves."""
    panels = {p.spec.key: p for p in kpis.read_panels(con, SINCE, UNTIL, period="week")}
    week = panels["complaint_rate"].current.period_start
    calls, complained, repeats = con.execute(
        """SELECT count(*),
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.call_id = c.call_id
                                                 AND e.type IN ('complaint', 'escalation_request'))),
                  (SELECT count(*) FROM events e JOIN calls c2 USING (call_id) WHERE e.type = 'customer_repeat'
                     AND CAST(date_trunc('week', c2.started_at) AS DATE) = ?)
           FROM calls c WHERE CAST(date_trunc('week', c.started_at) AS DATE) = ?""",
        [week, week],
    ).fetchone()
    assert panels["complaint_rate"].current.calls == calls > 0
    assert panels["complaint_rate"].current.value == pytest.approx(complained / calls)
    assert panels["avg_effort"].current.details["customer_repeats"] == repeats > 0


def test_empty_period_is_no_data_and_renders(con):
    # the week of 19 October has no calls: as the current period, and as the previous one
    for until in (date(2026, 10, 25), date(2026, 11, 1)):
        panels = kpis.read_panels(con, date(2026, 10, 5), until, period="week")
        html = kpi_panels_html(con, Period(date(2026, 10, 5), until), kpi_period="week")
        for p in panels:
            v = panel_view(p, labels("en"))
            if until == date(2026, 10, 25):
                assert p.current.period_start == EMPTY_WEEK and p.current.value is None
                assert v["value"] == "no data" and v["change"] == "no data" and v["arrow"] == ""
            else:
                assert p.previous is not None and p.previous.period_start == EMPTY_WEEK
                assert v["previous"] == "no data" and v["arrow"] == ""
        assert html.count('class="kp"') == len(panels) and "no data" in html


def test_empty_database_renders_every_panel_as_no_data(tmp_path):
    path = tmp_path / "empty.duckdb"
    store.connect(path).close()
    c = connect_analyst(path)
    try:
        html = kpi_panels_html(c, Period(), kpi_period="month", lang="zh")
    finally:
        c.close()
    assert html.count('class="kp"') == len(kpis.PANELS) - 1  # no surveys: no satisfaction panel
    assert "无数据" in html and "所选范围内无满意度调查数据" in html


def test_targets_and_default_range(con):
    strict = KpiSettings(rate_targets={"complaint_rate": 0.0}, targets={"default": {"handle_s": 10_000}})
    panels = {p.spec.key: p for p in kpis.read_panels(con, SINCE, UNTIL, period="month", settings=strict)}
    assert panels["complaint_rate"].target == 0.0 and panels["complaint_rate"].on_target is False
    assert panels["avg_handle_s"].target == 10_000 and panels["avg_handle_s"].on_target is True
    # without --since: back 26 weeks but not before the first call; up to the latest call's day
    rng = panel_range(con, Period(), "week")
    assert (rng.since, rng.until) == (
        date(2026, 10, 1),
        con.execute("SELECT max(started_at)::DATE FROM calls").fetchone()[0],
    )


def test_static_report_has_the_panels_in_both_languages(db, tmp_path):
    for lang, title in (("en", "Complaint rate"), ("zh", "投诉率")):
        s = build_report(db, tmp_path / lang, audio="none", max_call_pages=5, kpi_period="month", lang=lang)
        html = s.index.read_text("utf-8")
        assert 'id="kpi-panels"' in html and title in html
        for spec in kpis.PANELS:
            assert f'id="fig-kpi-{spec.key}"' in html
    c = connect_analyst(db)
    try:
        [p] = [p for p in kpis.read_panels(c, *_range(c, "month"), period="month") if p.spec.key == "fcr_rate"]
    finally:
        c.close()
    en = (tmp_path / "en" / "index.html").read_text("utf-8")
    block = re.search(r'id="kp-fcr_rate".*?</table>', en, re.S).group(0)
    assert fmt_value("rate", p.current.value) in block


def _range(c, period):
    r = panel_range(c, Period(), period)
    return r.since, r.until


def test_served_dashboard_switches_period_and_language(db, tmp_path: Path, monkeypatch):
    from callqa.workspace.web.app import create_app
    from callqa.workspace.web.keys import Passwords, load_secret
    from callqa.workspace.web.users import add_user

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CALLQA_WEB_SECRET", raising=False)
    copy = tmp_path / "web.duckdb"
    copy.write_bytes(Path(db).read_bytes())
    with store.open_db(copy) as c:
        add_user(c, "sup", "supervisor", Passwords(load_secret()).hash("pw-pw-pw-pw"), actor="test")
    client = TestClient(create_app(load_settings(), copy))
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"username": "sup", "password": "pw-pw-pw-pw", "csrf_token": token})
    week = client.get("/dashboard")
    assert week.status_code == 200 and 'id="kpi-panels"' in week.text and "Latest week" in week.text
    month = client.get("/dashboard", params={"kpi_period": "month", "lang": "zh"})
    assert month.status_code == 200 and "最近一月" in month.text and "首次解决率" in month.text
    assert 'href="/dashboard?kpi_period=week&amp;lang=zh"' in month.text  # the switch back to weeks
    bad = client.get("/dashboard", params={"kpi_period": "year"})
    assert bad.status_code == 400 and "week or month" in bad.text
