"""The QA views (migration 0004) over calls stored by the real writer, and forward migration of a v1 file."""

from __future__ import annotations

import uuid
from datetime import datetime
from importlib.resources import files

import duckdb
import pytest

import qa_data
from callqa.pipeline import store
from callqa.workspace.queue import QueueFilter, flagged_count, flagged_page

VIEWS = [
    "current_scores",
    "flagged_queue",
    "flagged_reasons",
    "call_summary",
    "agent_daily",
    "agent_daily_kpis",
    "criterion_pass_rates",
    "hold_stats",
    "review_agreement",
    "flagged_page(10)",
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "qa.duckdb"
    calls = qa_data.build_db(path)
    return path, {c.source.path.rsplit("/", 1)[-1]: c for c in calls}


def q(path, sql, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_every_view_exists_and_answers(db):
    path, _ = db
    for v in VIEWS:
        q(path, f"SELECT * FROM {v} LIMIT 5")


def test_flagged_queue_is_worst_first_with_reviews_marked(db):
    path, calls = db
    rows = q(path, "SELECT file_name, auto_fail, percent, grade, reviewed, day FROM flagged_queue")
    assert [r[0] for r in rows] == ["rude.wav", "mono_plain.wav"]  # auto-fail first, then the lowest score
    assert rows[0][1] is True and rows[0][3] == "poor"
    assert str(rows[1][5]) == "2026-11-21"
    labels = q(path, "SELECT file_name, label FROM flagged_reasons ORDER BY 1, 2")
    assert ("rude.wav", "auto-fail: no_forbidden_language") in labels
    assert ("mono_plain.wav", "grade poor below fair") in labels


def test_call_summary_pivots_metrics_and_counts(db):
    path, calls = db
    rows = {
        r[0]: r[1:]
        for r in q(
            path,
            """SELECT file_name, n_utterances, n_events, hold_total_s, dead_air_total_s,
                      talk_ratio_agent, customer_emotion_end, grade, flagged FROM call_summary""",
        )
    }
    assert rows["stereo_hold.wav"] == (6, 9, 29.0, 6.6, 0.55, 0.6, "excellent", False)
    assert rows["mono_plain.wav"][:3] == (2, 0, None) and rows["mono_plain.wav"][-1] is True
    assert len(rows) == 4


def test_agent_daily_aggregates_per_agent_and_day(db):
    path, _ = db
    rows = q(
        path,
        """SELECT day::VARCHAR, agent_id, calls, avg_percent, flagged, auto_failed, flagged_rate
                      FROM agent_daily ORDER BY 1, 2""",
    )
    assert rows == [
        ("2026-11-20", "A1", 1, 100.0, 0, 0, 0.0),
        ("2026-11-21", "A1", 1, 100.0, 0, 0, 0.0),
        ("2026-11-21", "A2", 1, 0.0, 1, 0, 1.0),
        ("2026-11-22", "A3", 1, 0.0, 1, 1, 1.0),
    ]
    kpis = q(
        path,
        """SELECT day::VARCHAR, agent_id, calls, avg_hold_s, avg_dead_air_s, avg_talk_ratio_agent,
                  avg_customer_emotion_end
           FROM agent_daily_kpis ORDER BY 1, 2""",
    )
    assert kpis[0] == ("2026-11-20", "A1", 1, 29.0, 6.6, 0.55, 0.6)
    assert kpis[1] == ("2026-11-21", "A1", 1, None, None, None, -0.8)
    # filtering by day is what the dashboard and the benchmark do
    assert q(path, "SELECT sum(calls) FROM agent_daily WHERE day >= DATE '2026-11-21'")[0][0] == 3


def test_criterion_pass_rates(db):
    path, _ = db
    rows = {
        r[0]: r[1:]
        for r in q(
            path,
            "SELECT criterion_id, n, passed, failed, not_applicable, pass_rate, auto_fail FROM criterion_pass_rates",
        )
    }
    assert rows["greeting"] == (4, 2, 2, 0, 0.5, False)
    assert rows["no_forbidden_language"] == (4, 3, 1, 0, 0.75, True)
    assert rows["hold_etiquette"] == (1, 1, 0, 0, 1.0, False)


def test_hold_stats_reads_hold_events_and_metrics(db):
    path, _ = db
    rows = {
        r[0]: r[1:]
        for r in q(
            path,
            """SELECT file_name, hold_count, hold_total_s, holds_announced, holds_thanked,
                      holds_unannounced, hold_announcements, dead_air_spans, dead_air_total_s FROM hold_stats""",
        )
    }
    assert rows["stereo_hold.wav"] == (1, 29.0, 1, 1, 0, 1, 1, 6.6)
    assert rows["mono_plain.wav"] == (0, 0, 0, 0, 0, 0, 0, 0)


def test_current_scores_follow_a_rescore_and_review_agreement(tmp_path):
    path = tmp_path / "qa.duckdb"
    calls = qa_data.build_db(path)
    con = store.connect(path)
    try:
        mono = calls[1].source.call_id
        # rescoring the mono call with v2 of the scorecard passes it: it must leave the queue
        from dataclasses import replace

        v2 = replace(qa_data.score([("greeting", "pass", 10, False, ())]), scorecard_version=2)
        crit, total = store._score_rows(mono, v2, datetime(2026, 11, 23))
        store._insert_df(con, "criterion_results", crit)
        store._insert_df(con, "call_scores", [total])
        stereo, rude = calls[0].source.call_id, calls[3].source.call_id
        # reviewers: agree on stereo greeting (pass), overturn rude's greeting (fail -> pass), agree on forbidden (fail)
        for cid, crit_id, verdict in [
            (stereo, "greeting", "pass"),
            (rude, "greeting", "pass"),
            (rude, "no_forbidden_language", "fail"),
            (stereo, "no_forbidden_language", "agree"),
        ]:
            con.execute(
                "INSERT INTO reviews (review_id, call_id, scorecard_id, scorecard_version, criterion_id, reviewer, "
                "verdict, created_at) "
                "VALUES (?, ?, 'inbound_basic', 1, ?, 'qa1', ?, now())",
                [uuid.uuid4().hex, cid, crit_id, verdict],
            )
    finally:
        con.close()
    assert q(path, "SELECT scorecard_version FROM current_scores WHERE call_id = ?", [mono]) == [(2,)]
    assert [r[0] for r in q(path, "SELECT file_name FROM flagged_queue")] == ["rude.wav"]
    assert q(path, "SELECT reviewed FROM flagged_queue") == [(True,)]
    agree = {
        r[0]: r[1:]
        for r in q(
            path,
            """SELECT criterion_id, reviews, agree, agreement, auto_pass_human_fail, auto_fail_human_pass, kappa
                                            FROM review_agreement""",
        )
    }
    assert agree["greeting"][:5] == (2, 1, 0.5, 0, 1)
    assert agree["no_forbidden_language"][:5] == (2, 2, 1.0, 0, 0)
    assert agree["no_forbidden_language"][5] == pytest.approx(1.0)


def test_queue_filters_and_sorts(db):
    path, _ = db
    con = store.connect(path, read_only=True)
    try:
        names = lambda f: [r[1] for r in flagged_page(con, f).rows]  # noqa: E731
        assert names(QueueFilter()) == ["rude.wav", "mono_plain.wav"]  # served by the flagged_page() macro
        assert q(path, "SELECT file_name FROM flagged_page(1, start := 1)") == [("mono_plain.wav",)]
        assert q(path, "SELECT file_name FROM flagged_queue") == q(path, "SELECT file_name FROM flagged_page(100)")
        assert names(QueueFilter(reasons=("auto-fail",))) == ["rude.wav"]
        assert names(QueueFilter(reasons=("GREETING",))) == ["rude.wav", "mono_plain.wav"]
        assert names(QueueFilter(agents=("A2",))) == ["mono_plain.wav"]
        assert names(QueueFilter(queues=("sales", "cards"))) == ["rude.wav"]
        assert names(QueueFilter(grades=("fair",))) == []
        assert names(QueueFilter(since=datetime(2026, 11, 22).date())) == ["rude.wav"]
        assert names(QueueFilter(until=datetime(2026, 11, 21).date())) == ["mono_plain.wav"]
        assert names(QueueFilter(sort="oldest")) == ["mono_plain.wav", "rude.wav"]
        assert names(QueueFilter(limit=1, offset=1)) == ["mono_plain.wav"]
        assert flagged_count(con, QueueFilter(limit=1)) == 2
        with pytest.raises(store.StoreError, match="unknown sort"):
            flagged_page(con, QueueFilter(sort="random"))
    finally:
        con.close()


def test_cli_flagged_filters(db):
    from typer.testing import CliRunner

    from callqa.cli import app

    path, _ = db
    r = CliRunner().invoke(app, ["flagged", "--db", str(path), "--reason", "auto-fail", "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 2 and "rude.wav" in lines[1]
    r = CliRunner().invoke(
        app, ["flagged", "--db", str(path), "--agent", "A2", "--since", "2026-11-01", "--sort", "newest"]
    )
    assert r.exit_code == 0 and "mono_plain.wav" in r.output and "rude.wav" not in r.output
    r = CliRunner().invoke(app, ["flagged", "--db", str(path), "--since", "last tuesday"])
    assert r.exit_code != 0 and "7d" in r.output


def _v1_sql() -> str:
    return files("callqa.config").joinpath("migrations", "0001_init.sql").read_text(encoding="utf-8")


def test_a_schema_v1_file_is_upgraded_forward_without_losing_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
    con.execute(_v1_sql())
    con.execute("INSERT INTO schema_migrations VALUES (1, '0001_init.sql', now())")
    con.execute("""INSERT INTO calls (call_id, source_path, file_name, duration_s, channels, sample_rate, processed_at,
                   pipeline_version, status, agent_id, started_at) VALUES
                   ('c1', '/r/a.wav', 'a.wav', 60, 2, 8000, now(), '0.0.1', 'processed', 'A9',
                    TIMESTAMP '2026-01-05 10:00:00')""")
    con.execute(
        "INSERT INTO utterances (call_id, seq, speaker, role, start_s, end_s, text) "
        "VALUES ('c1', 0, 'ch0', 'agent', 0, 2, 'hello')"
    )
    con.execute(
        "INSERT INTO events (event_id, call_id, type, start_s, end_s, evidence, detector_version) "
        "VALUES ('e1', 'c1', 'greeting', 0, 2, 'hello', 'v1')"
    )
    con.execute("INSERT INTO call_metrics VALUES ('c1', 'hold_total_s', 12.5)")
    con.execute("""INSERT INTO call_scores VALUES ('c1', 'inbound_basic', 1, 0, 10, 0, 'poor', false, true,
                   ['grade poor (0%) below fair; failed: greeting'], now())""")
    before = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("calls", "utterances", "events", "call_metrics", "call_scores")
    }
    con.close()

    con = store.connect(path)  # the writer opens it: migrations run forward
    try:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
        assert versions[0] == 1 and versions[-1] == store.SCHEMA_VERSION and 4 in versions
        assert after == before
        assert con.execute("SELECT file_name, agent_id FROM flagged_queue").fetchall() == [("a.wav", "A9")]
        assert con.execute("SELECT agent_id, calls FROM agent_daily").fetchall() == [("A9", 1)]
        assert con.execute("SELECT hold_total_s FROM hold_stats").fetchall() == [(12.5,)]
    finally:
        con.close()
    # opening it again changes nothing
    con = store.connect(path)
    try:
        assert [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()] == versions
    finally:
        con.close()
