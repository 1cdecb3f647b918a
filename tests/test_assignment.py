"""Splitting a sample or a day's queue between reviewers, and the 'assigned to me' filter."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.pipeline import store
from callqa.workspace import assignment
from callqa.workspace.assignment import CallRef
from callqa.workspace.qa import draw_sample
from callqa.workspace.workflow import Actor, WorkflowError
from qa_data import build_db

SUP = Actor("sue", "supervisor")
CALLS = [CallRef(f"c{i}", q) for i, q in enumerate(["billing", "sales", "billing", "cards", "sales", "billing", "x"])]


def test_round_robin_deals_calls_in_order_and_skips_those_already_assigned():
    p = assignment.plan(CALLS, ["ana", "bo", "cy"])
    assert p.assigned == (
        ("c0", "ana"),
        ("c1", "bo"),
        ("c2", "cy"),
        ("c3", "ana"),
        ("c4", "bo"),
        ("c5", "cy"),
        ("c6", "ana"),
    )
    assert p.counts() == {"ana": 3, "bo": 2, "cy": 2}
    p = assignment.plan(CALLS[:4], ["ana", "bo"], already={"c1": "zed"})
    assert p.assigned == (("c0", "ana"), ("c2", "bo"), ("c3", "ana"))
    assert p.skipped == (("c1", "already assigned to zed"),)


def test_by_queue_gives_each_queue_to_its_reviewers_in_turn_and_reports_uncovered_queues():
    queues = assignment.parse_queues(["ana=billing", "bo=billing,sales", "cy=cards"])
    assert queues == {"ana": ["billing"], "bo": ["billing", "sales"], "cy": ["cards"]}
    p = assignment.plan(CALLS, ["ana", "bo", "cy"], "by_queue", queues)
    assert p.assigned == (("c0", "ana"), ("c1", "bo"), ("c2", "bo"), ("c3", "cy"), ("c4", "bo"), ("c5", "ana"))
    assert p.skipped == (("c6", "no reviewer covers queue x"),)
    with pytest.raises(WorkflowError, match="by_queue needs the queues"):
        assignment.plan(CALLS, ["ana"], "by_queue")
    with pytest.raises(WorkflowError, match="given for zed, who are not among the reviewers"):
        assignment.plan(CALLS, ["ana"], "by_queue", {"zed": ["x"]})
    with pytest.raises(WorkflowError, match="reviewer=queue1,queue2"):
        assignment.parse_queues(["ana"])
    with pytest.raises(WorkflowError, match="round_robin or by_queue, not 'random'"):
        assignment.plan(CALLS, ["ana"], "random")
    with pytest.raises(WorkflowError, match="at least one reviewer"):
        assignment.plan(CALLS, [" "])


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    return path, {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}


def test_a_sample_and_a_days_queue_are_assigned_stored_and_filtered(db):
    path, ids = db
    with store.open_db(path) as con:
        sample = draw_sample(con, 4, by="none", include_flagged=True, seed=1)
        order = [cid for cid, _ in sample["calls"]]
        b = assignment.assign(
            con, assignment.sample_calls(con, sample["sample_id"]), ["ana", "bo"], SUP, f"sample:{sample['sample_id']}"
        )
        assert b.plan.assigned == tuple((cid, "ana" if i % 2 == 0 else "bo") for i, cid in enumerate(order))
        assert assignment.current(con) == dict(b.plan.assigned)
        mine = [r["call_id"] for r in assignment.assigned_to(con, "ana")]
        assert sorted(mine) == sorted(order[0::2])
        # the queue of 2026-11-22 holds rude.wav only; it is assigned already, so a second batch skips it...
        q = assignment.queue_calls(con, date(2026, 11, 22))
        assert q == [CallRef(ids["rude.wav"], "sales")]
        again = assignment.assign(con, q, ["cy"], SUP, "queue:2026-11-22")
        assert again.plan.assigned == () and again.plan.skipped[0][1].startswith("already assigned to ")
        # ...unless reassigned: the newest batch wins, history stays
        assignment.assign(con, q, ["cy"], SUP, "queue:2026-11-22", reassign=True)
        assert assignment.current(con, [ids["rude.wav"]]) == {ids["rude.wav"]: "cy"}
        assert con.execute("SELECT count(*) FROM assignments WHERE call_id = ?", [ids["rude.wav"]]).fetchone()[0] == 2
        # the documented queue filter
        sql = f"SELECT q.call_id FROM flagged_queue q WHERE {assignment.ASSIGNED_TO_SQL} ORDER BY q.call_id"
        assert con.execute(sql, ["cy"]).fetchall() == [(ids["rude.wav"],)]
        with pytest.raises(WorkflowError, match="a reviewer may not assign calls"):
            assignment.assign(con, q, ["cy"], Actor("ana", "reviewer"), "queue:2026-11-22")
        with pytest.raises(WorkflowError, match="no sample 'nope'"):
            assignment.sample_calls(con, "nope")


def test_cli_assigns_a_days_queue(db):
    path, ids = db
    res = CliRunner().invoke(
        app, ["assign", "--day", "2026-11-21", "--reviewer", "ana", "--reviewer", "bo", "--db", str(path)]
    )
    assert res.exit_code == 0, res.output
    with store.open_db(path, read_only=True) as con:
        assert assignment.current(con) == {ids["mono_plain.wav"]: "ana"}
        assert con.execute("SELECT created_by, source, method FROM assignment_batches").fetchall()[0][1:] == (
            "queue:2026-11-21",
            "round_robin",
        )
    res = CliRunner().invoke(app, ["assign", "--reviewer", "ana", "--db", str(path)])
    assert res.exit_code == 2 and "give --sample or --day" in res.output
