"""The review workflow: states, who may move them, the agent's window, and the audit chain underneath."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.config.settings import Settings
from callqa.pipeline import store
from callqa.workspace import audited, chain, workflow
from callqa.workspace.ledger import database_path, head_path, load_key, now
from callqa.workspace.qa import verify_reviews
from callqa.workspace.workflow import Actor, Change, WorkflowError
from qa_data import build_db

REVIEWER = Actor("ana", "reviewer")
AGENT = Actor("sam", "agent", "A1")  # stereo_hold.wav and zh_call.wav are agent A1's
OTHER_AGENT = Actor("pat", "agent", "A3")
SUPERVISOR = Actor("sue", "supervisor")


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    return path, {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}


def shared(con, call_id):
    workflow.transition(con, call_id, "start_review", REVIEWER)
    return workflow.transition(con, call_id, "share", REVIEWER, window_days=7)


def test_dispute_and_decision_walk_the_states_and_stay_in_the_verified_chain(db):
    path, ids = db
    cid = ids["stereo_hold.wav"]
    with store.open_db(path) as con:
        assert workflow.state_of(con, cid).state == "machine_scored"
        t1 = workflow.transition(con, cid, "start_review", REVIEWER)
        t2 = workflow.transition(con, cid, "share", REVIEWER, window_days=7)
        assert (t1.from_state, t1.to_state, t2.to_state) == ("machine_scored", "in_review", "shared")
        assert t2.respond_by is not None and timedelta(days=7) - timedelta(
            seconds=5
        ) < t2.respond_by - now() <= timedelta(days=7)
        assert workflow.allowed_actions(workflow.state_of(con, cid), AGENT) == ["acknowledge", "dispute"]
        assert workflow.allowed_actions(workflow.state_of(con, cid), SUPERVISOR) == []  # the window is open
        t3 = workflow.transition(con, cid, "dispute", AGENT, comment="I greeted; ring me on 07700 900123")
        assert t3.comment == "I greeted; ring me on [PHONE]"  # free text is redacted like transcripts
        disputes = workflow.calls_in_state(con, "disputed")
        assert [(d["call_id"], d["agent_id"], d["comment"]) for d in disputes] == [(cid, "A1", t3.comment)]
        t4 = workflow.transition(
            con,
            cid,
            "decide",
            SUPERVISOR,
            comment="hold etiquette missed",
            decision="changed",
            changes=[Change("hold_etiquette", "fail")],
        )
        assert (t4.to_state, t4.decision, t4.seq) == ("final", "changed", 5)  # review #4 is the corrected verdict
        assert t4.review_seqs == (4,)
        review = con.execute("SELECT reviewer, criterion_id, verdict, comment, seq FROM reviews").fetchall()
        assert review == [("sue", "hold_etiquette", "fail", "hold etiquette missed", 4)]
        hist = workflow.history(con, cid)
        assert [(h["seq"], h["action"], h["from_state"], h["to_state"], h["actor"], h["actor_role"]) for h in hist] == [
            (1, "start_review", "machine_scored", "in_review", "ana", "reviewer"),
            (2, "share", "in_review", "shared", "ana", "reviewer"),
            (3, "dispute", "shared", "disputed", "sam", "agent"),
            (5, "decide", "disputed", "final", "sue", "supervisor"),
        ]
        states = dict(con.execute("SELECT call_id, state FROM workflow_state").fetchall())
        assert states == {
            cid: "final",
            ids["mono_plain.wav"]: "machine_scored",
            ids["zh_call.wav"]: "machine_scored",
            ids["rude.wav"]: "machine_scored",
        }
        assert verify_reviews(con) == []
        assert audited.note_problems(con) == []
    res = CliRunner().invoke(app, ["audit", "--db", str(path)])
    assert res.exit_code == 0, res.output
    assert "review history intact (1 reviews; head 5:" in res.output


@pytest.mark.parametrize(
    ("steps", "action", "actor", "kwargs", "message"),
    [
        ([], "share", REVIEWER, {}, "it is machine_scored, and share applies only to a call that is in_review"),
        ([], "start_review", AGENT, {}, "a agent may not start review: that is for admin, reviewer, supervisor"),
        (["start_review"], "acknowledge", AGENT, {}, "it is in_review"),
        (["start_review", "share"], "share", REVIEWER, {}, "it is shared"),
        (["start_review", "share"], "acknowledge", REVIEWER, {}, "a reviewer may not acknowledge"),
        (["start_review", "share"], "dispute", AGENT, {}, "to dispute, give a comment saying why"),
        (["start_review", "share"], "dispute", OTHER_AGENT, {"comment": "no"}, "only their own calls"),
        (["start_review", "share"], "dispute", Actor("x", "agent"), {"comment": "no"}, "only their own calls"),
        (["start_review", "share"], "decide", SUPERVISOR, {"comment": "c", "decision": "upheld"}, "it is shared"),
        (["start_review", "share"], "acknowledge", AGENT, {"decision": "upheld"}, "only a supervisor's decide"),
        (["start_review"], "start_review", SUPERVISOR, {}, "it is in_review"),
        ([], "reopen", SUPERVISOR, {}, "unknown workflow action 'reopen'"),
    ],
)
def test_invalid_transitions_are_refused_with_the_reason_and_write_nothing(db, steps, action, actor, kwargs, message):
    path, ids = db
    cid = ids["stereo_hold.wav"]
    with store.open_db(path) as con:
        for s in steps:
            workflow.transition(con, cid, s, REVIEWER)
        before = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        with pytest.raises(WorkflowError) as e:
            workflow.transition(con, cid, action, actor, **kwargs)
        assert message in str(e.value)
        assert con.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before == len(steps)


def test_decisions_need_a_verdict_change_exactly_when_changed(db):
    path, ids = db
    cid = ids["stereo_hold.wav"]
    with store.open_db(path) as con:
        shared(con, cid)
        workflow.transition(con, cid, "dispute", AGENT, comment="wrong")
        cases = [
            ({"decision": "changed"}, "names the corrected verdicts"),
            ({"decision": "upheld", "changes": [Change("greeting", "fail")]}, "give no changes"),
            ({"decision": "maybe"}, "upheld or changed, not 'maybe'"),
            ({"decision": "changed", "changes": [Change("empathy", "fail")]}, "no criterion 'empathy' on this call"),
            ({"decision": "changed", "changes": [Change("greeting", "good")]}, "must be pass, fail or na"),
        ]
        for kwargs, message in cases:
            with pytest.raises(WorkflowError, match=message):
                workflow.transition(con, cid, "decide", SUPERVISOR, comment="c", **kwargs)
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
        t = workflow.transition(con, cid, "decide", SUPERVISOR, comment="score stands", decision="upheld")
        assert (t.to_state, t.decision, t.review_seqs) == ("final", "upheld", ())
        with pytest.raises(WorkflowError, match="it is final"):
            workflow.transition(con, cid, "finalise", SUPERVISOR)


def test_the_agents_window_closes_and_then_the_supervisor_may_finalise(db):
    path, ids = db
    cid, zh = ids["stereo_hold.wav"], ids["zh_call.wav"]
    with store.open_db(path) as con:
        t = shared(con, cid)
        late = t.respond_by + timedelta(seconds=1)
        with pytest.raises(WorkflowError, match="the window to acknowledge or dispute call .* closed at"):
            workflow.transition(con, cid, "acknowledge", AGENT, at=late)
        with pytest.raises(WorkflowError, match="the agent may still acknowledge or dispute"):
            workflow.transition(con, cid, "finalise", SUPERVISOR, at=t.respond_by - timedelta(seconds=1))
        assert workflow.allowed_actions(workflow.state_of(con, cid), AGENT, at=late) == []
        assert workflow.allowed_actions(workflow.state_of(con, cid), SUPERVISOR, at=late) == ["finalise"]
        assert workflow.transition(con, cid, "finalise", SUPERVISOR, at=late).to_state == "final"
        # within the window (a shorter one, set when shared): acknowledged, then finalised at once
        workflow.transition(con, zh, "start_review", REVIEWER)
        t2 = workflow.transition(con, zh, "share", REVIEWER, window_days=1)
        assert (
            workflow.transition(con, zh, "acknowledge", AGENT, at=t2.respond_by - timedelta(minutes=1)).to_state
            == "acknowledged"
        )
        assert workflow.transition(con, zh, "finalise", SUPERVISOR).to_state == "final"
        for bad in (0, 91):
            with pytest.raises(WorkflowError, match="from 1 to 90"):
                workflow.transition(con, ids["rude.wav"], "start_review", REVIEWER, window_days=bad)


def test_dispute_window_setting_defaults_to_7_days_and_accepts_1_to_90():
    assert Settings().workflow.dispute_window_days == 7
    assert Settings.model_validate({"workflow": {"dispute_window_days": 90}}).workflow.dispute_window_days == 90
    for bad in (0, 91):
        with pytest.raises(ValueError, match="dispute_window_days"):
            Settings.model_validate({"workflow": {"dispute_window_days": bad}})


def test_an_edited_transition_or_note_is_caught_and_erasure_removes_the_notes(db):
    path, ids = db
    cid = ids["stereo_hold.wav"]
    with store.open_db(path) as con:
        shared(con, cid)
        workflow.transition(con, cid, "dispute", AGENT, comment="I did say the company name")
        con.execute("UPDATE audit_notes SET note = 'the reviewer is right' WHERE seq = 3")
        assert audited.note_problems(con) == [
            "note #3 was altered after it was written (its HMAC in entry #3 does not match)"
        ]
        con.execute("UPDATE audit_notes SET note = 'I did say the company name' WHERE seq = 3")
        con.execute(
            "UPDATE audit_log SET detail = json_object('action', 'share', 'to_state', 'final', 'role', 'reviewer') "
            "WHERE seq = 2"
        )
        assert any("workflow entry #2 was altered" in p for p in verify_reviews(con))
    path2 = path.with_name("qa2.duckdb")
    build_db(path2)
    from callqa.workspace.forget import erase_calls

    with store.open_db(path2) as con:
        shared(con, cid)
        workflow.transition(con, cid, "dispute", AGENT, comment="personal details here")
        key = chain.writer_key(con, None, head_path(database_path(con)))
        erase_calls(con, [cid], "erasure request 17", key)
        assert con.execute("SELECT count(*) FROM audit_notes").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM workflow_latest").fetchone()[0] == 0
        assert verify_reviews(con) == []


def test_cli_moves_a_call_as_the_os_user_and_lists_disputes(db):
    path, ids = db
    cid = ids["rude.wav"]
    runner = CliRunner()
    base = ["--db", str(path)]
    for args in (["start", cid[:12]], ["share", cid[:12], "--window-days", "3"]):
        res = runner.invoke(app, ["workflow", *args, *base])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["workflow", "dispute", cid[:12], "--comment", "the customer swore first", *base])
    assert res.exit_code == 0, res.output
    assert "shared → disputed" in res.output
    res = runner.invoke(app, ["workflow", "list", "disputed", *base])
    assert res.exit_code == 0 and "rude.wav" in res.output and "the customer swore first" in res.output
    res = runner.invoke(app, ["workflow", "decide", cid[:12], "--decision", "changed", "--comment", "x", *base])
    assert res.exit_code == 2 and "names the corrected verdicts" in res.output
    res = runner.invoke(
        app,
        [
            "workflow",
            "decide",
            cid[:12],
            "--decision",
            "changed",
            "--change",
            "greeting=pass",
            "--comment",
            "ok",
            *base,
        ],
    )
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT action, actor_role FROM workflow_transitions ORDER BY seq").fetchall()
        assert rows == [("start_review", "admin"), ("share", "admin"), ("dispute", "admin"), ("decide", "admin")]
        respond = con.execute(
            "SELECT respond_by - created_at FROM workflow_transitions WHERE action = 'share'"
        ).fetchone()[0]
        assert timedelta(days=3) - timedelta(seconds=2) < respond <= timedelta(days=3)
    finally:
        con.close()
    res = runner.invoke(app, ["workflow", "show", cid[:12], *base])
    assert res.exit_code == 0 and "final" in res.output
    assert load_key() is not None
