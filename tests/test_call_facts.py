"""call_facts (migration 0012): the writer stores each call's row, refresh_call_facts recomputes edited calls,
and `callqa forget` erases the row with the call."""

from __future__ import annotations

from callqa.pipeline import store
from callqa.pipeline.types import CallSource
from callqa.workspace.forget import call_id_tables
from fake_pipeline import result_for


def _result(call_id: str):
    return result_for(CallSource(f"/calls/{call_id[:4]}.wav", call_id, 1000, {"agent_id": "A7"}), False)


def _facts(con, table: str, call_id: str):
    return con.execute(f"SELECT * FROM {table} WHERE call_id = ?", [call_id]).fetchone()


def test_the_writer_stores_the_computed_row_in_the_calls_transaction(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    for cid in ("a" * 64, "b" * 64):
        assert store.write_call(con, _result(cid), None, "0.1")
    assert con.execute("SELECT count(*) FROM call_facts").fetchone()[0] == 2
    row = _facts(con, "call_facts", "a" * 64)
    assert row == _facts(con, "call_facts_computed", "a" * 64)
    n_utt = con.execute("SELECT count(*) FROM utterances WHERE call_id = ?", ["a" * 64]).fetchone()[0]
    assert row[1] == n_utt > 0
    # a call stored twice is not written twice (write_call returns False before any insert)
    assert not store.write_call(con, _result("a" * 64), None, "0.1")
    assert con.execute("SELECT count(*) FROM call_facts").fetchone()[0] == 2


def test_refresh_recomputes_the_calls_it_is_given_and_fills_missing_rows(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    for cid in ("a" * 64, "b" * 64):
        store.write_call(con, _result(cid), None, "0.1")
    con.execute("DELETE FROM utterances WHERE call_id = ?", ["a" * 64])
    con.execute(
        "INSERT INTO call_metrics VALUES (?, 'rate_agent', 123.0) ON CONFLICT DO UPDATE SET value = 123.0", ["a" * 64]
    )
    stale = _facts(con, "call_facts", "a" * 64)
    assert stale != _facts(con, "call_facts_computed", "a" * 64)
    assert store.refresh_call_facts(con, ["a" * 64]) == 1
    fresh = _facts(con, "call_facts", "a" * 64)
    assert fresh == _facts(con, "call_facts_computed", "a" * 64) and fresh[1] == 0
    assert con.execute(
        "SELECT n_utterances, rate_agent FROM call_summary WHERE call_id = ?", ["a" * 64]
    ).fetchone() == (
        0,
        123.0,
    )
    con.execute("DELETE FROM call_facts WHERE call_id = ?", ["b" * 64])
    assert store.refresh_call_facts(con) == 1  # only the call without a row
    assert store.refresh_call_facts(con) == 0
    assert _facts(con, "call_facts", "b" * 64) == _facts(con, "call_facts_computed", "b" * 64)


def test_forget_erases_the_row_with_the_call(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    assert "call_facts" in call_id_tables(con)
