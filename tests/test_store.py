import duckdb
import pytest

from callqa.pipeline import store
from callqa.pipeline.types import CallFailure, CallSource
from callqa.workspace import sandbox
from fake_pipeline import result_for


def make_result(call_id="a" * 64, dup_seq=False):
    source = CallSource(
        f"/calls/{call_id[:4]}.wav", call_id, 1000, {"agent_id": "A7", "started_at": "2026-11-20T09:30:00Z"}
    )
    return result_for(source, dup_seq)


def test_write_call_lands_in_every_call_table(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    assert store.write_call(con, make_result(), "run1", "0.1")
    counts = store.table_counts(con)
    for t in ("calls", "utterances", "words", "events", "call_metrics", "criterion_results", "call_scores"):
        assert counts[t] > 0, t
    row = con.execute("SELECT agent_id, started_at, sample_rate, role_method FROM calls").fetchone()
    assert row[0] == "A7" and str(row[1]) == "2026-11-20 09:30:00" and row[2] == 8000 and row[3] == "channel_map"
    # idempotent: the same call again writes nothing
    assert not store.write_call(con, make_result(), "run2", "0.1")
    assert store.table_counts(con) == counts


def test_a_failing_call_rolls_back_and_leaves_stored_calls_intact(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    store.write_call(con, make_result("a" * 64), None, "0.1")
    before = store.table_counts(con)
    with pytest.raises(duckdb.Error):
        store.write_call(con, make_result("b" * 64, dup_seq=True), None, "0.1")
    assert store.table_counts(con) == before
    assert con.execute("SELECT count(*) FROM calls WHERE call_id = ?", ["b" * 64]).fetchone()[0] == 0


def test_permanent_failures_are_recorded_once(tmp_path):
    con = store.connect(tmp_path / "t.duckdb")
    f = CallFailure("/calls/bad.wav", "c" * 64, "decode", "/calls/bad.wav: not an audio file", True)
    assert store.write_failure(con, f, "r1")
    assert not store.write_failure(con, f, "r2")
    assert store.permanent_failure_ids(con) == {"c" * 64}
    transient = CallFailure("/calls/x.wav", "d" * 64, "transcribe", "boom", False)
    store.write_failure(con, transient, "r1")
    assert "d" * 64 not in store.permanent_failure_ids(con)


def test_schema_is_versioned_and_reopening_does_not_reapply(tmp_path):
    db = tmp_path / "t.duckdb"
    store.connect(db).close()
    con = store.connect(db)
    rows = con.execute("SELECT version FROM schema_migrations").fetchall()
    assert sorted(r[0] for r in rows) == [v for v, _, _ in store._migrations()]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM calls",
        "UPDATE calls SET agent_id = 'x'",
        "DROP TABLE calls",
        "INSERT INTO reviews VALUES ('r', 'c', NULL, NULL, NULL, 'me', 'pass', NULL, now())",
        "COPY calls TO 'out.csv'",
        "ATTACH 'other.duckdb' AS o",
        "SELECT 1; DELETE FROM calls",
        "CREATE TABLE x AS SELECT 1",
        "SET threads = 1",
    ],
)
def test_read_only_sql_refuses_writes(tmp_path, sql):
    db = tmp_path / "t.duckdb"
    con = store.connect(db)
    store.write_call(con, make_result(), None, "0.1")
    con.close()
    with pytest.raises(sandbox.ReadOnlyViolation, match="read-only"):
        sandbox.query_read_only(db, sql)
    assert sandbox.query_read_only(db, "SELECT count(*) FROM calls").rows == [(1,)]


def test_read_only_sql_answers_queries(tmp_path):
    db = tmp_path / "t.duckdb"
    con = store.connect(db)
    store.write_call(con, make_result(), None, "0.1")
    con.close()
    res = sandbox.query_read_only(
        db, "WITH x AS (SELECT * FROM utterances) SELECT role, count(*) n FROM x GROUP BY 1 ORDER BY 1"
    )
    assert res.columns == ["role", "n"] and res.rows == [("agent", 1), ("customer", 1)]
    with pytest.raises(store.StoreError, match="query failed"):
        sandbox.query_read_only(db, "SELECT nope FROM calls")
    with pytest.raises(store.StoreError, match="does not exist"):
        sandbox.query_read_only(tmp_path / "missing.duckdb", "SELECT 1")
