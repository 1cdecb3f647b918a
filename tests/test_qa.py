"""Rescoring, scorecard versions, append-only reviews, calibration and sampling on stored rows."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from callqa import rowgen
from callqa.cli import app
from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import load_scorecard
from callqa.pipeline.types import ConfigError
from callqa.workspace.qa import add_review, calibration, draw_sample, verify_reviews

N = 300


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "qa.duckdb"
    con = store.connect(path)
    rowgen.load_into(con, rowgen.generate(N, seed=3, agents=6))
    card = load_scorecard("inbound_service_en")
    store.register_scorecard(con, card)
    store.replace_scores(con, card.id, card.version, rescore_contexts(card, load_contexts(con), all_languages=True))
    con.close()
    return path


def snapshot(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for t in (
            "calls",
            "events",
            "call_metrics",
            "criterion_results",
            "call_scores",
            "reviews",
            "scorecards",
            "samples",
        ):
            out[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        out["scores_digest"] = con.execute(
            "SELECT md5(string_agg(call_id || scorecard_version || criterion_id || result, ','"
            " ORDER BY call_id, scorecard_version, criterion_id)) FROM criterion_results"
        ).fetchone()[0]
        return out
    finally:
        con.close()


def test_rescoring_matches_the_stored_events(db):
    con = duckdb.connect(str(db), read_only=True)
    # independent check in SQL: greeting passes iff the agent greeted within 15 s
    expected = dict(
        con.execute(
            """SELECT c.call_id, bool_or(e.type = 'greeting' AND e.role = 'agent' AND e.start_s <= 15)
           FROM calls c LEFT JOIN events e USING (call_id) GROUP BY 1"""
        ).fetchall()
    )
    got = dict(
        con.execute("SELECT call_id, result = 'pass' FROM criterion_results WHERE criterion_id = 'greeting'").fetchall()
    )
    assert got == {k: bool(v) for k, v in expected.items()}
    # hold etiquette is n/a exactly on calls without a hold
    na = {
        r[0]
        for r in con.execute(
            "SELECT call_id FROM criterion_results WHERE criterion_id = 'hold_etiquette' AND result = 'na'"
        ).fetchall()
    }
    with_hold = {r[0] for r in con.execute("SELECT DISTINCT call_id FROM events WHERE type = 'hold'").fetchall()}
    assert na == set(expected) - with_hold
    # forbidden language is an auto-fail: those calls score 0 and are flagged
    af = con.execute(
        """SELECT count(*), bool_and(s.percent = 0 AND s.flagged AND s.grade = 'poor') FROM call_scores s
           WHERE call_id IN (SELECT call_id FROM events WHERE type = 'forbidden_phrase')"""
    ).fetchone()
    assert af[0] > 0 and af[1]
    assert con.execute("SELECT count(DISTINCT criterion_id) FROM criterion_results").fetchone()[0] == 16


def test_versions_are_kept_side_by_side_and_a_changed_version_is_refused(db, tmp_path):
    v1 = load_scorecard("inbound_service_en")
    text = (v1_path := store_path("inbound_service_en")).read_text()
    v2_path = tmp_path / "v2.yaml"
    v2_path.write_text(text.replace("version: 1", "version: 2").replace("within_s: 15}", "within_s: 3}"))
    runner = CliRunner()
    res = runner.invoke(app, ["rescore", "--scorecard", str(v2_path), "--db", str(db), "--all-languages"])
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(db), read_only=True)
    per_version = dict(
        con.execute(
            "SELECT scorecard_version, count(*) FILTER (result = 'pass') FROM criterion_results "
            "WHERE criterion_id = 'greeting' GROUP BY 1"
        ).fetchall()
    )
    con.close()
    assert set(per_version) == {1, 2} and per_version[2] < per_version[1]
    # same version, different rules: refused, nothing changes
    before = snapshot(db)
    v1_changed = tmp_path / "v1_changed.yaml"
    v1_changed.write_text(v1_path.read_text().replace("within_s: 15}", "within_s: 5}"))
    res = runner.invoke(app, ["rescore", "--scorecard", str(v1_changed), "--db", str(db), "--all-languages"])
    assert res.exit_code != 0 and "already stored with different rules" in res.output
    assert snapshot(db) == before
    assert v1.version == 1


def store_path(name):
    from callqa.pipeline.scoring import resolve_scorecard_path

    return resolve_scorecard_path(name)


@pytest.mark.parametrize(
    "mutation, message",
    [
        (("event: identity_verification", "event: identity_check"), "unknown event type 'identity_check'"),
        (
            (
                "        points: 10\n        rule: {event: identity_verification",
                "        rule: {event: identity_verification",
            ),
            "points",
        ),
        (
            ("{metric: hold_max_s, max: 120}", "{metric: hold_max_s, max: 120, min: 300}"),
            "min 300.0 is greater than max 120.0",
        ),
        (
            ("{metric: dead_air_total_s, max: 10, if_missing: pass}", "{metric: dead_air_s, max: 10}"),
            "unknown metric 'dead_air_s'",
        ),
    ],
)
def test_invalid_scorecard_is_rejected_before_any_call_is_touched(db, tmp_path, mutation, message):
    bad = tmp_path / "bad.yaml"
    text = store_path("inbound_service_en").read_text()
    assert mutation[0] in text
    bad.write_text(text.replace(mutation[0], mutation[1], 1).replace("version: 1", "version: 7"))
    before = snapshot(db)
    with pytest.raises(ConfigError) as e:
        load_scorecard(bad)
    assert str(bad) in str(e.value) and message in str(e.value) and "criterion '" in str(e.value)
    res = CliRunner().invoke(app, ["rescore", "--scorecard", str(bad), "--db", str(db)])
    assert res.exit_code != 0 and message in res.output.replace("\n", "")
    assert snapshot(db) == before


def test_reviews_are_append_only_and_tamper_evident(db):
    runner = CliRunner()
    con = duckdb.connect(str(db), read_only=True)
    cid = con.execute("SELECT call_id FROM calls ORDER BY call_id LIMIT 1").fetchone()[0]
    con.close()
    for verdict in ("fail", "pass"):
        res = runner.invoke(
            app,
            ["review", cid[:10], "--criterion", "greeting", "--verdict", verdict, "--reviewer", "Ana", "--db", str(db)],
        )
        assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["review", cid[:10], "--criterion", "no_such", "--verdict", "pass", "--reviewer", "Ana", "--db", str(db)]
    )
    assert res.exit_code != 0 and "has no criterion 'no_such'" in res.output
    con = duckdb.connect(str(db), read_only=True)
    history = con.execute("SELECT verdict FROM reviews ORDER BY seq").fetchall()
    latest = con.execute("SELECT verdict FROM latest_reviews").fetchall()
    con.close()
    assert history == [("fail",), ("pass",)] and latest == [("pass",)]
    # no CLI path rewrites history
    for sql in (
        "UPDATE reviews SET verdict = 'fail'",
        "DELETE FROM reviews",
        "DROP TABLE reviews",
        "INSERT INTO reviews SELECT * FROM reviews",
        "TRUNCATE reviews",
    ):
        res = runner.invoke(app, ["sql", "--db", str(db), sql])
        assert res.exit_code != 0 and "read-only" in res.output, sql
    assert runner.invoke(app, ["audit", "--db", str(db)]).exit_code == 0
    # someone edits the file directly, outside callqa: the audit names the row
    con = duckdb.connect(str(db))
    con.execute("UPDATE reviews SET verdict = 'fail' WHERE seq = 2")
    con.close()
    res = runner.invoke(app, ["audit", "--db", str(db)])
    assert res.exit_code == 1 and "review #2" in res.output and "altered" in res.output
    con = duckdb.connect(str(db))
    con.execute("UPDATE reviews SET verdict = 'pass' WHERE seq = 2")
    assert verify_reviews(con) == []
    con.execute("DELETE FROM reviews WHERE seq = 1")
    assert any("review #1 is missing" in p for p in verify_reviews(con))
    con.close()


def test_calibration_reports_accuracy_and_kappa_worst_first(db):
    from sklearn.metrics import cohen_kappa_score

    con = store.connect(db)
    rows = con.execute(
        """SELECT call_id, criterion_id, result FROM criterion_results
           WHERE criterion_id IN ('greeting', 'closing') AND result <> 'na' ORDER BY call_id LIMIT 80"""
    ).fetchall()
    human = {}
    for i, (cid, crit, auto) in enumerate(rows):
        # greeting: the human always agrees; closing: the human overturns every third verdict
        verdict = auto if crit == "greeting" or i % 3 else ("fail" if auto == "pass" else "pass")
        add_review(con, cid, crit, verdict, "Bo")
        human[(cid, crit)] = (auto, verdict)
    result = {r.criterion_id: r for r in calibration(con)}
    con.close()
    pairs = [v for (c, crit), v in human.items() if crit == "closing"]
    assert result["greeting"].accuracy == 1.0
    exp_acc = sum(a == h for a, h in pairs) / len(pairs)
    assert result["closing"].accuracy == pytest.approx(exp_acc, abs=1e-3) and exp_acc < 1
    exp_kappa = cohen_kappa_score([a for a, _ in pairs], [h for _, h in pairs])
    assert result["closing"].kappa == pytest.approx(exp_kappa, abs=1e-3)
    assert list(result)[0] == "closing"  # worst first


def test_stratified_sample_is_even_reproducible_and_recorded(db):
    con = store.connect(db)
    a = draw_sample(con, 12, by="agent", seed=42)
    b = draw_sample(con, 12, by="agent", seed=42)
    c = draw_sample(con, 12, by="agent", seed=43)
    flagged = {r[0] for r in con.execute("SELECT call_id FROM call_scores WHERE flagged").fetchall()}
    recorded = con.execute("SELECT count(*) FROM sample_calls WHERE sample_id = ?", [a["sample_id"]]).fetchone()[0]
    meta = con.execute(
        "SELECT stratify_by, seed, n_drawn FROM samples WHERE sample_id = ?", [a["sample_id"]]
    ).fetchone()
    con.close()
    assert [x for x, _ in a["calls"]] == [x for x, _ in b["calls"]] != [x for x, _ in c["calls"]]
    per_agent = {}
    for _, s in a["calls"]:
        per_agent[s] = per_agent.get(s, 0) + 1
    assert len(per_agent) == 6 and set(per_agent.values()) == {2}
    assert not flagged & {x for x, _ in a["calls"]}
    assert recorded == 12 and meta == ("agent", 42, 12)


def test_exemplar_view_lists_best_passing_calls_per_agent_and_criterion(db):
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT agent_id, criterion_id, rank, percent FROM exemplar_calls ORDER BY agent_id, criterion_id, rank"
    ).fetchall()
    con.close()
    assert rows and max(r[2] for r in rows) <= 3
    by_key = {}
    for agent, crit, _rank, pct in rows:
        by_key.setdefault((agent, crit), []).append(pct)
    assert all(v == sorted(v, reverse=True) for v in by_key.values())
