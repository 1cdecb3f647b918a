"""The KPI macros of migration 0011 over hand-inserted calls whose right answers are worked out by hand."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from callqa.config.settings import KpiSettings, KpiTarget
from callqa.pipeline import store
from callqa.workspace.kpis import period_starts, read_kpi, sync_targets

OCT1, OCT31 = date(2026, 10, 1), date(2026, 10, 31)

# call, customer, agent, team, queue, started_at, duration, tier, csat, nps, scorable_status
CALLS = [
    ("c1", "X", "A", "T1", "billing", datetime(2026, 10, 1, 10), 600.0, 1, 5.0, 10, "scorable"),
    # X again 4 days later: c1 is a repeat contact (on A, c1's agent)
    ("c2", "X", "B", "T2", "support", datetime(2026, 10, 5, 9), 420.0, 2, 2.0, 3, "scorable"),
    # X again 7 days and 1 s after c2: just outside the 7-day window, c2 is resolved
    ("c3", "X", "A", "T1", "billing", datetime(2026, 10, 12, 9, 0, 1), 300.0, None, None, None, "scorable"),
    # no customer id: excluded from the repeat rate, counted
    ("c4", None, "A", "T1", "sales", datetime(2026, 10, 1, 12), 200.0, None, None, 9, "scorable"),
    # an unscorable recording (a test tone) is no call: counted nowhere, and no repeat of c6
    ("c5", "Y", "B", "T2", "support", datetime(2026, 10, 3), 5.0, None, None, None, "unscorable"),
    ("c6", "Y", "B", "T2", "support", datetime(2026, 10, 2), 240.0, None, None, None, "scorable"),
]
EVENTS = [  # call, type, start, end
    ("c1", "complaint", 10.0, 12.0),
    ("c1", "hold", 100.0, 190.0),  # 90 s: a long hold
    ("c1", "hold", 300.0, 330.0),  # 30 s: not long
    ("c2", "transfer", 50.0, 52.0),
    ("c2", "repeat_contact_mention", 5.0, 8.0),
    ("c4", "escalation_request", 20.0, 22.0),
    ("c5", "complaint", 1.0, 2.0),
]
METRICS = [("c1", "talk_s", 400.0), ("c1", "hold_total_s", 120.0), ("c1", "dead_air_total_s", 65.0)]


@pytest.fixture()
def con(tmp_path):
    c = store.connect(tmp_path / "kpi.duckdb")
    for cid, cust, agent, team, queue, at, dur, tier, csat, nps, status in CALLS:
        c.execute(
            """INSERT INTO calls (call_id, source_path, file_name, duration_s, channels, sample_rate, processed_at,
                   pipeline_version, status, customer_id, agent_id, team, queue, started_at, tier, csat, nps,
                   scorable_status)
               VALUES (?, ?, ?, ?, 2, 8000, ?, 'test', 'processed', ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [cid, f"/r/{cid}.wav", f"{cid}.wav", dur, at, cust, agent, team, queue, at, tier, csat, nps, status],
        )
    for i, (cid, etype, s, e) in enumerate(EVENTS):
        c.execute(
            "INSERT INTO events (event_id, call_id, type, start_s, end_s, evidence, detector_version) "
            "VALUES (?, ?, ?, ?, ?, 'test', 'test')",
            [f"e{i}", cid, etype, s, e],
        )
    c.executemany("INSERT INTO call_metrics VALUES (?, ?, ?)", [list(m) for m in METRICS])
    # written here, not by the writer: call_facts (kpi_call_effort's dead air, migration 0013) as the store says
    store.refresh_call_facts(c, [row[0] for row in CALLS])
    yield c
    c.close()


def _by_group(rows):
    return {r.group_key: r for r in rows}


def test_repeat_contacts_per_agent(con):
    rows = _by_group(read_kpi(con, "repeat_contacts", OCT1, OCT31, grain="agent", period="month"))
    a, b = rows["A"], rows["B"]
    assert (a.calls, a.values["calls_without_customer"], a.values["calls_with_customer"]) == (3, 1, 2)
    assert a.values["repeat_contacts"] == 1 and a.values["repeat_rate"] == 0.5 and a.values["fcr_rate"] == 0.5
    # c2 -> c3 is 7 days and 1 s; c5 (unscorable) is not a later call of Y
    assert (b.calls, b.values["calls_with_customer"], b.values["repeat_contacts"], b.values["fcr_rate"]) == (
        2,
        2,
        0,
        1.0,
    )


def test_repeat_window_is_a_setting(con):
    eight = KpiSettings(repeat_window_days=8)
    rows = _by_group(read_kpi(con, "repeat_contacts", OCT1, OCT31, grain="agent", period="month", settings=eight))
    assert rows["B"].values["repeat_contacts"] == 1  # c2 -> c3 now inside the window
    assert rows["A"].values["repeat_contacts"] == 1


def test_repeat_reads_calls_after_the_range(con):
    # only 1 October counted, but c2 (5 October) still makes c1 a repeat contact
    rows = read_kpi(con, "repeat_contacts", OCT1, OCT1, grain="centre", period="day")
    assert [(r.calls, r.values["repeat_contacts"], r.values["calls_without_customer"]) for r in rows] == [(2, 1, 1)]


def test_complaint_rate(con):
    [row] = read_kpi(con, "complaints", OCT1, OCT31, grain="centre", period="month")
    assert row.calls == 5  # c5 unscorable: neither its call nor its complaint counts
    assert row.values == {
        "complaint_calls": 1,
        "escalation_request_calls": 1,
        "complaint_or_escalation_calls": 2,
        "complaint_rate": 0.4,
    }


def test_escalation_funnel_per_team(con):
    rows = _by_group(read_kpi(con, "escalations", OCT1, OCT31, grain="team", period="month"))
    assert rows["T1"].calls == 3 and rows["T1"].values == {
        "escalation_requested": 1,
        "transferred": 0,
        "escalated": 1,
        "escalation_rate": pytest.approx(1 / 3),
        "calls_with_tier": 1,
        "tier_2_or_above": 0,
        "tier_3": 0,
    }
    assert rows["T2"].calls == 2 and rows["T2"].values == {
        "escalation_requested": 0,
        "transferred": 1,
        "escalated": 1,
        "escalation_rate": 0.5,
        "calls_with_tier": 1,
        "tier_2_or_above": 1,
        "tier_3": 0,
    }


def test_effort_per_call_and_centre(con):
    per_call = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT call_id, repeat_mentions, transfers, long_holds, dead_air_s, effort_score "
            "FROM kpi_call_effort(DATE '2026-10-01', DATE '2026-10-31')"
        ).fetchall()
    }
    assert per_call["c1"] == (0, 0, 1, 65.0, 3)  # one 90 s hold, 65 s dead air = 2 x 30 s
    assert per_call["c2"] == (1, 1, 0, 0.0, 4)
    assert per_call["c3"] == (0, 0, 0, 0.0, 0) and "c5" not in per_call
    [row] = read_kpi(con, "effort", OCT1, OCT31, grain="centre", period="month")
    assert row.calls == 5 and row.values == {
        "avg_effort_score": pytest.approx(7 / 5),
        "high_effort_calls": 2,
        "repeat_mentions": 1,
        "transfers": 1,
        "long_holds": 1,
        "dead_air_s": 65.0,
        "customer_repeats": 0,
    }
    # a higher long-hold threshold drops c1's hold from its score
    [row] = read_kpi(con, "effort", OCT1, OCT31, grain="centre", period="month", settings=KpiSettings(long_hold_s=91))
    assert row.values["long_holds"] == 0 and row.values["avg_effort_score"] == pytest.approx(6 / 5)


def test_customer_repeats_add_to_effort_at_most_two(con):
    # c3: one restatement (score 0 -> 1); c6: three (counted 3, scored 2: migration 0013)
    for i, cid in enumerate(["c3", "c6", "c6", "c6"]):
        con.execute(
            "INSERT INTO events (event_id, call_id, type, start_s, end_s, evidence, detector_version, role) "
            "VALUES (?, ?, 'customer_repeat', ?, ?, 'again', 'restate/1', 'customer')",
            [f"r{i}", cid, 10.0 * i, 10.0 * i + 2],
        )
    per_call = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT call_id, customer_repeats, effort_score FROM kpi_call_effort(DATE '2026-10-01', DATE '2026-10-31')"
        ).fetchall()
    }
    assert per_call["c3"] == (1, 1) and per_call["c6"] == (3, 2) and per_call["c1"] == (0, 3)
    [row] = read_kpi(con, "effort", OCT1, OCT31, grain="centre", period="month")
    assert row.values["customer_repeats"] == 4 and row.values["avg_effort_score"] == pytest.approx((7 + 1 + 2) / 5)
    assert row.values["high_effort_calls"] == 2


def test_times_against_queue_targets(con):
    sync_targets(con, KpiSettings(targets={"billing": KpiTarget(handle_s=500, talk_s=350, hold_s=100)}))
    rows = _by_group(read_kpi(con, "times", OCT1, OCT31, grain="queue", period="month"))
    billing = rows["billing"]  # c1 (600 s, talk 400, hold 120, dead air 65) and c3 (300 s, no metrics)
    assert billing.calls == 2
    assert billing.values["avg_handle_s"] == 450.0 and billing.values["avg_talk_s"] == 400.0
    assert billing.values["avg_hold_s"] == 60.0 and billing.values["avg_dead_air_s"] == 32.5
    assert billing.values["over_handle_target"] == 1 and billing.values["over_talk_target"] == 1
    assert billing.values["over_hold_target"] == 1 and billing.values["over_dead_air_target"] == 1
    assert billing.values["handle_vs_target"] == pytest.approx(450 / 500)
    assert billing.values["hold_vs_target"] == pytest.approx(60 / 100)
    sales = rows["sales"]  # c4, 200 s, default targets (480 s)
    assert sales.values["over_handle_target"] == 0 and sales.values["handle_vs_target"] == pytest.approx(200 / 480)


def test_satisfaction(con):
    [row] = read_kpi(con, "satisfaction", OCT1, OCT31, grain="centre", period="month")
    assert row.values == {
        "csat_responses": 2,
        "avg_csat": 3.5,
        "nps_responses": 3,
        "promoters": 2,
        "detractors": 1,
        "nps": pytest.approx(100 / 3),
    }


def test_periods_without_calls_are_zero_rows(con):
    rows = read_kpi(con, "complaints", date(2026, 10, 4), date(2026, 10, 7), grain="centre", period="day")
    assert [(r.period_start, r.calls) for r in rows] == [
        (date(2026, 10, 4), 0),
        (date(2026, 10, 5), 1),
        (date(2026, 10, 6), 0),
        (date(2026, 10, 7), 0),
    ]
    assert read_kpi(con, "complaints", date(2026, 10, 6), date(2026, 10, 7), fill_empty=False) == []


def test_weeks_start_on_monday(con):
    rows = read_kpi(con, "satisfaction", OCT1, date(2026, 10, 12), grain="centre", period="week")
    assert [(r.period_start, r.calls) for r in rows] == [
        (date(2026, 9, 28), 3),  # c1, c4, c6 (Thursday 1 - Friday 2 October)
        (date(2026, 10, 5), 1),
        (date(2026, 10, 12), 1),
    ]
    assert period_starts(date(2026, 10, 30), date(2026, 12, 1), "month") == [
        date(2026, 10, 1),
        date(2026, 11, 1),
        date(2026, 12, 1),
    ]


def test_bad_arguments_are_refused(con):
    with pytest.raises(ValueError, match="grain"):
        read_kpi(con, "complaints", OCT1, OCT31, grain="floor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown KPI"):
        read_kpi(con, "complaints; DROP TABLE calls", OCT1, OCT31)
    with pytest.raises(Exception, match="grain must be"):
        con.execute("SELECT * FROM kpi_complaints(DATE '2026-10-01', DATE '2026-10-02', grain := 'x')").fetchall()
