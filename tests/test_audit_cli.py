"""`callqa audit` over the whole keyed history: reviews, workflow transitions, calibration verdicts and the
free-text notes kept beside them (audit_notes), each failure printed with the row it concerns."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.pipeline import store
from callqa.workspace import calibration_sessions as cs
from callqa.workspace import workflow
from callqa.workspace.workflow import Actor
from qa_data import build_db

REVIEWER = Actor("ana", "reviewer")
AGENT = Actor("sam", "agent", "A1")  # stereo_hold.wav is agent A1's
SUPERVISOR = Actor("sue", "supervisor")


@pytest.fixture()
def history(tmp_path):
    """A database whose chain holds workflow transitions (seq 1-3, a dispute note on #3) and a calibration
    session with a commented verdict."""
    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    cid = next(c.source.call_id for c in calls if c.source.path.endswith("stereo_hold.wav"))
    with store.open_db(path) as con:
        workflow.transition(con, cid, "start_review", REVIEWER)
        workflow.transition(con, cid, "share", REVIEWER, window_days=7)
        workflow.transition(con, cid, "dispute", AGENT, comment="I did say the company name")
        session = cs.create_session(con, "week 48", [cid], ["ana", "bo"], SUPERVISOR)
        view = cs.call_view(con, session.session_id, cid, REVIEWER)
        verdicts = {c.criterion_id: "pass" for c in view.criteria}
        first = next(iter(verdicts))
        cs.submit(con, session.session_id, cid, REVIEWER, verdicts, {first: "borderline"})
        note_seq = con.execute("SELECT seq FROM audit_notes WHERE note = 'I did say the company name'").fetchone()[0]
    return path, cid, note_seq


def audit(path) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["audit", "--db", str(path)])
    return res.exit_code, res.output


def edit(path, sql: str, params=()) -> None:
    con = duckdb.connect(str(path))  # outside callqa, as someone with the file would
    try:
        con.execute(sql, list(params))
    finally:
        con.close()


def test_untampered_history_passes_and_counts_workflow_and_notes(history):
    path, _, _ = history
    code, out = audit(path)
    assert code == 0, out
    assert "review history intact" in out and "3 workflow transitions" in out and "2 notes" in out
    assert "calibration entries" in out


def test_an_edited_note_fails_naming_its_row(history):
    path, _, seq = history
    edit(path, "UPDATE audit_notes SET note = 'the reviewer is right' WHERE seq = ?", [seq])
    code, out = audit(path)
    assert code == 1
    assert f"note #{seq} was altered after it was written" in out and "intact" not in out
    edit(path, "UPDATE audit_notes SET note = 'I did say the company name' WHERE seq = ?", [seq])
    assert audit(path)[0] == 0  # put back word for word: the HMAC matches again


def test_a_deleted_note_of_a_stored_call_fails(history):
    path, cid, seq = history
    edit(path, "DELETE FROM audit_notes WHERE seq = ?", [seq])
    code, out = audit(path)
    assert code == 1 and f"note #{seq} of workflow entry #{seq} (call {cid[:12]}) was deleted" in out


def test_an_edited_workflow_row_fails_naming_its_entry(history):
    path, _, _ = history
    edit(path, "UPDATE audit_log SET detail = replace(detail, '\"shared\"', '\"final\"') WHERE seq = 2")
    code, out = audit(path)
    assert code == 1 and "workflow entry #2 was altered after it was written" in out


def test_a_removed_workflow_row_fails(history):
    path, _, _ = history
    edit(path, "DELETE FROM audit_log WHERE seq = 2")
    code, out = audit(path)
    assert code == 1 and "#2 is missing" in out
