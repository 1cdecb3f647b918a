"""`callqa audit-report`: its numbers against SQL over the tables, periods, labels, escaping, errors, speed."""

from __future__ import annotations

import os
import subprocess
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from callqa import rowgen
from callqa.cli import app
from callqa.config.settings import KpiSettings, load_settings
from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import load_scorecard
from callqa.pipeline.types import CallQAError
from callqa.workspace.audit import AuditError, Span, build_audit_report, collect, concentrations, correlations
from callqa.workspace.audit.labels import LANGS, labels
from callqa.workspace.sandbox import connect_analyst

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<img src=x onerror=alert(1)>|x"
OCT, NOV = Span(date(2026, 10, 1), date(2026, 10, 31)), Span(date(2026, 11, 1), date(2026, 11, 29))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """400 rowgen calls, 2026-10-01 .. 2026-11-29: teams, customer ids with repeats, surveys, one hostile
    agent name, and every billing call held far over the hold target (a concentration to find)."""
    path = tmp_path_factory.mktemp("audit") / "audit.duckdb"
    con = store.connect(path)
    frames = rowgen.generate(400, seed=5, agents=6, start=datetime(2026, 10, 1))
    frames["calls"]["customer_id"] = [None if i % 10 == 0 else f"C{i % 130}" for i in range(400)]
    rowgen.load_into(con, frames)
    con.execute("UPDATE calls SET team = CASE WHEN agent_id <= 'A002' THEN 'north' ELSE 'south' END")
    con.execute("UPDATE calls SET agent_id = ? WHERE agent_id = 'A005'", [HOSTILE])
    con.execute(
        "UPDATE call_metrics SET value = 400 WHERE name = 'hold_total_s' AND call_id IN "
        "(SELECT call_id FROM calls WHERE queue = 'billing')"
    )
    con.execute(
        "UPDATE call_metrics SET value = 5 WHERE name = 'hold_total_s' AND call_id IN "
        "(SELECT call_id FROM calls WHERE queue <> 'billing')"
    )
    card = load_scorecard("inbound_service_en")
    store.register_scorecard(con, card)
    store.replace_scores(con, card.id, card.version, rescore_contexts(card, load_contexts(con), all_languages=True))
    # satisfaction follows the score (plus noise) on the surveyed two thirds of the calls
    con.execute("""UPDATE calls SET csat = least(5, greatest(1, round(s.percent / 20 + (hash(calls.call_id) % 3) - 1))),
                                    nps = CAST(least(10, greatest(0, round(s.percent / 10))) AS INTEGER)
                   FROM current_scores s WHERE s.call_id = calls.call_id AND hash(calls.call_id) % 3 <> 0""")
    con.close()
    return path


@pytest.fixture(scope="module")
def report(db, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit-out")
    s = build_audit_report(db, out, since="2026-11-01", until="2026-11-29", compare="2026-10-01..2026-10-31")
    return s, s.html.read_text("utf-8"), s.markdown.read_text("utf-8")


def _q(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchone()[0]
    finally:
        con.close()


def _ctx(db, span, compared, lang="en"):
    con = connect_analyst(db)
    try:
        return collect(con, span, compared, KpiSettings(), lang)
    finally:
        con.close()


def _calls_in(span):
    return "CAST(coalesce(c.started_at, c.processed_at) AS DATE) BETWEEN ? AND ?", [span.since, span.until]


def test_headline_numbers_equal_sql_over_the_tables(db, report):
    where, p = _calls_in(NOV)
    ctx = _ctx(db, NOV, OCT)
    cur = ctx["current"]
    assert cur["calls"] == _q(db, f"SELECT count(*) FROM calls c WHERE {where}", p) > 100
    # complaint rate straight from the events, not through the KPI macros
    complaints = _q(
        db,
        f"""SELECT count(*) FROM calls c WHERE {where} AND EXISTS (SELECT 1 FROM events e
                    WHERE e.call_id = c.call_id AND e.type IN ('complaint', 'escalation_request'))""",
        p,
    )
    assert cur["complaint_rate"] == pytest.approx(complaints / cur["calls"])
    score = _q(db, f"SELECT avg(s.percent) FROM current_scores s JOIN calls c USING (call_id) WHERE {where}", p)
    assert cur["avg_score"] == pytest.approx(score)
    hold = _q(
        db,
        f"""SELECT avg(coalesce(m.value, 0)) FROM calls c LEFT JOIN call_metrics m
                      ON m.call_id = c.call_id AND m.name = 'hold_total_s' WHERE {where}""",
        p,
    )
    assert cur["avg_hold_s"] == pytest.approx(hold)
    assert cur["avg_csat"] == pytest.approx(_q(db, f"SELECT avg(csat) FROM calls c WHERE {where}", p))
    # repeat contact: a later call of the same customer within 7 days (calls without a customer excluded)
    repeats = _q(
        db,
        f"""SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM calls d WHERE d.customer_id = c.customer_id
                     AND d.call_id <> c.call_id AND d.started_at >= c.started_at
                     AND d.started_at <= c.started_at + INTERVAL 7 DAY)) / count(*)
                     FROM calls c WHERE {where} AND c.customer_id IS NOT NULL""",
        p,
    )
    assert cur["repeat_rate"] == pytest.approx(repeats)
    # what the page shows is those numbers, and the change vs October is computed from October's numbers
    _, page, md = report
    prev = ctx["previous"]
    oct_calls = _q(db, "SELECT count(*) FROM calls c WHERE " + _calls_in(OCT)[0], _calls_in(OCT)[1])
    assert prev["calls"] == oct_calls
    change = (cur["complaint_rate"] - prev["complaint_rate"]) / prev["complaint_rate"]
    sentence = (
        f"Complaint rate {100 * cur['complaint_rate']:.1f} % ({100 * change:+.0f} % vs previous period; target 3.0 %)"
    )
    assert sentence in page and sentence in md
    assert f'<td class="n">{cur["calls"]:,}</td>' in page


def test_team_and_agent_tables_and_criteria_match_sql(db):
    where, p = _calls_in(NOV)
    ctx = _ctx(db, NOV, None)
    teams = {r["group_key"]: r for r in ctx["teams"]}
    assert set(teams) == {"north", "south"}
    for team, r in teams.items():
        assert r["calls"] == _q(db, f"SELECT count(*) FROM calls c WHERE {where} AND team = ?", [*p, team])
    top = ctx["criteria"][0]
    failed = _q(
        db,
        f"""SELECT count(*) FROM criterion_results r JOIN calls c USING (call_id)
                     WHERE {where} AND r.criterion_id = ? AND r.result = 'fail'""",
        [*p, top["criterion_id"]],
    )
    assert top["failed"] == failed
    worst = _q(
        db,
        f"""SELECT max(n) FROM (SELECT c.queue, count(*) AS n FROM criterion_results r JOIN calls c USING (call_id)
                   WHERE {where} AND r.criterion_id = ? AND r.result = 'fail' GROUP BY 1)""",
        [*p, top["criterion_id"]],
    )
    assert top["worst_queue_n"] == worst


def test_previous_period_without_calls(db, tmp_path):
    s = build_audit_report(db, tmp_path, since="2026-10-01", until="2026-10-31", compare="previous")
    assert s.compared == Span(date(2026, 8, 31), date(2026, 9, 30))
    ctx = _ctx(db, OCT, s.compared)
    assert ctx["previous"]["calls"] == 0
    assert all(f.change is None for f in ctx["findings"])  # nothing to compare with, no invented change
    page = s.html.read_text("utf-8")
    assert 'data-kpi="calls"><td>Calls</td><td class="n">' in page and "vs previous period" not in page


def test_weekly_trend_through_the_kpi_module(db):
    span = Span(date(2026, 11, 1), date(2026, 12, 20))  # the last three weeks have no calls
    ctx = _ctx(db, span, None)
    weeks = ctx["trends"]
    assert [w["period_start"] for w in weeks][:2] == [date(2026, 10, 26), date(2026, 11, 2)]
    assert weeks[-1]["period_start"] == date(2026, 12, 14) and weeks[-1]["calls"] == 0
    assert weeks[-1]["complaint_rate"] is None
    wk = weeks[1]
    where = "CAST(coalesce(c.started_at, c.processed_at) AS DATE) BETWEEN ? AND ?"
    wk_span = [date(2026, 11, 2), date(2026, 11, 8)]
    assert wk["calls"] == _q(db, f"SELECT count(*) FROM calls c WHERE {where}", wk_span)
    assert wk["avg_csat"] == pytest.approx(_q(db, f"SELECT avg(csat) FROM calls c WHERE {where}", wk_span))
    # the first week starts on the Monday before the span (ISO weeks): only its days in the span count
    assert weeks[0]["calls"] == _q(db, f"SELECT count(*) FROM calls c WHERE {where}", [span.since, span.since])


def test_empty_audit_period(db, tmp_path):
    s = build_audit_report(db, tmp_path, since="2025-01-01", until="2025-01-31")
    assert s.calls == 0 and "no calls" in s.html.read_text("utf-8")


def test_zh_labels(db, tmp_path):
    s = build_audit_report(db, tmp_path, since="2026-11-01", until="2026-11-29", lang="zh")
    page, md = s.html.read_text("utf-8"), s.markdown.read_text("utf-8")
    for word in (
        "审计概述",
        "主要发现",
        "问题诊断",
        "改进建议",
        "附录A",
        "附录B",
        "投诉率",
        "首次解决率",
        "平均候机时长",
        "满意度（CSAT 1-5）",
        "客户费力度",
        "升级率",
        "重复来电率",
        "平均单电时长",
    ):
        assert word in page and word in md, word
    assert "Main findings" not in page
    assert set(labels("zh")) == set(labels("en")) and LANGS == ("en", "zh")


def test_hostile_names_escaped(report):
    _, page, md = report
    assert HOSTILE not in page and "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;|x" in page
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x" in md and "<img" not in md


def test_concentration_finds_the_billing_holds(db):
    found = [c for c in concentrations(connect_analyst(db), NOV) if c.failure == "hold_over_target"]
    q = next(c for c in found if c.dimension == "queue")
    assert q.group == "billing" and q.failure_share == 1.0
    where, p = _calls_in(NOV)
    billing = _q(db, f"SELECT count(*) FROM calls c WHERE {where} AND queue = 'billing'", p)
    assert q.failures_in_group == q.failures == billing
    assert q.call_share == pytest.approx(billing / q.calls) and q.lift == pytest.approx(1 / q.call_share)
    assert q.p_value < 1e-6


def test_rate_targets_and_diagnosis_thresholds_are_settings(db, tmp_path):
    """kpi.rate_targets decide a finding's target, status and action; kpi.diagnosis the concentration hints."""
    cfg = tmp_path / "targets.yaml"
    cfg.write_text("kpi:\n  rate_targets: {complaint_rate: 0.9, fcr_rate: 0.99}\n  diagnosis: {min_failures: 100000}\n")
    loose = load_settings(cfg).kpi
    assert loose.rate_targets.avg_csat == 4.0  # the keys not given keep their defaults

    def complaint(ctx):
        return next(f for f in ctx["findings"] if f.kpi.key == "complaint_rate")

    con = connect_analyst(db)
    try:
        base, changed = collect(con, NOV, OCT, KpiSettings(), "en"), collect(con, NOV, OCT, loose, "en")
    finally:
        con.close()
    value = complaint(base).value
    assert 0.03 < value < 0.9  # off the default 3 % target, on the 90 % one
    assert (complaint(base).target, complaint(base).on_target) == (0.03, False)
    assert (complaint(changed).target, complaint(changed).on_target) == (0.9, True)
    assert any(a["action"].startswith("Complaint rate") for a in base["actions"])
    assert not any(a["action"].startswith("Complaint rate") for a in changed["actions"])
    fcr = next(f for f in changed["findings"] if f.kpi.key == "fcr_rate")
    assert fcr.target == 0.99 and fcr.on_target is False
    assert base["concentrations"] and changed["concentrations"] == []
    out = build_audit_report(db, tmp_path / "o", since="2026-11-01", until="2026-11-29", kpi=loose)
    assert "target 90.0 %" in out.markdown.read_text("utf-8")


def test_correlation_with_satisfaction(db):
    res = {(c.predictor, c.outcome): c for c in correlations(connect_analyst(db), NOV)}
    auto = res[("auto_score", "csat")]
    where, p = _calls_in(NOV)
    con = duckdb.connect(str(db), read_only=True)
    pairs = con.execute(
        f"""SELECT s.percent, c.csat FROM calls c JOIN current_scores s USING (call_id)
                            WHERE {where} AND c.csat IS NOT NULL""",
        p,
    ).fetchall()
    con.close()
    assert auto.n == len(pairs) > 50
    expected = sps.spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    assert auto.rho == pytest.approx(expected) and auto.rho > 0.5  # csat was made to follow the score
    assert auto.ci_low < auto.rho < auto.ci_high <= 1
    assert ("auto_score", "repeat_contact") in res and ("greeting", "csat") in res


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "2026-02-30"], "--from: '2026-02-30' is not a date"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "is before --from"),
        (["--compare", "2026-10-31..2026-10-01"], "ends before it starts"),
        (["--lang", "fr"], "--lang must be en or zh"),
    ],
)
def test_bad_inputs_give_a_clear_error(db, tmp_path, args, message):
    r = CliRunner().invoke(app, ["audit-report", "--db", str(db), "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output


def test_cli_writes_both_files(db, tmp_path):
    r = CliRunner().invoke(app, ["audit-report", "--db", str(db), "--out", str(tmp_path), "--to", "2026-11-29"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "audit.html").is_file() and (tmp_path / "audit.md").is_file()
    assert "2026-10-31..2026-11-29 vs 2026-10-01..2026-10-30" in r.output


def test_not_a_database(tmp_path):
    with pytest.raises(CallQAError, match="does not exist"):
        build_audit_report(tmp_path / "none.duckdb", tmp_path / "o")
    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    with pytest.raises(AuditError, match="not a callqa database with the KPI views"):
        build_audit_report(tmp_path / "other.duckdb", tmp_path / "o")


@pytest.mark.skipif(
    not CHROMIUM.exists() or not os.environ.get("CALLQA_SCREENSHOTS"),
    reason="screenshots when CALLQA_SCREENSHOTS names a folder (needs /usr/bin/chromium)",
)
def test_screenshots(db, tmp_path):
    shots = Path(os.environ["CALLQA_SCREENSHOTS"])
    shots.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "zh"):
        s = build_audit_report(db, tmp_path / lang, since="2026-11-01", until="2026-11-29", lang=lang)
        png = shots / f"audit_{lang}.png"
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={png}",
                "--window-size=1200,8000",  # the whole report, not its first screen
                s.html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=180,
        )
        assert png.is_file() and png.stat().st_size > 20_000
        pdf = shots / f"audit_{lang}.pdf"  # the print layout (print CSS, page breaks)
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--print-to-pdf={pdf}",
                "--no-pdf-header-footer",
                s.html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=180,
        )
        assert pdf.is_file() and pdf.read_bytes()[:4] == b"%PDF"


def test_scheduled_audit_covers_the_previous_month_and_publishes_an_artifact(db, tmp_path, monkeypatch):
    from callqa.flows import audit as audit_flow

    assert audit_flow.previous_period("monthly", date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert audit_flow.previous_period("weekly", date(2026, 12, 2)) == (date(2026, 11, 23), date(2026, 11, 29))
    published = {}
    monkeypatch.setattr("prefect.artifacts.create_markdown_artifact", lambda **kw: published.update(kw))
    res = audit_flow.scheduled_audit.fn(str(db), str(tmp_path), "monthly", "zh", None)
    assert res["span"] == "2026-11-01..2026-11-30" and res["calls"] > 100
    assert published["key"] == "callqa-audit-report" and "主要发现" in published["markdown"]
    dep = audit_flow.build_audit_deployment("monthly", "UTC", {"db_path": str(db), "out_dir": str(tmp_path)})
    assert dep.parameters["every"] == "monthly" and dep.name == "audit"


def test_deploy_dry_run_with_the_audit_report(db, tmp_path):
    r = CliRunner().invoke(
        app,
        [
            "deploy",
            "--cron",
            "0 2 * * *",
            "--input",
            str(tmp_path),
            "--db",
            str(db),
            "--mode",
            "local",
            "--audit-report",
            "monthly",
            "--timezone",
            "UTC",
            "--audit-out",
            str(tmp_path / "aud"),
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "audit report: monthly" in r.output and "06:00" in r.output
    bad = CliRunner().invoke(
        app,
        [
            "deploy",
            "--cron",
            "0 2 * * *",
            "--input",
            str(tmp_path),
            "--db",
            str(db),
            "--mode",
            "local",
            "--audit-report",
            "daily",
            "--dry-run",
        ],
    )
    assert bad.exit_code == 2 and "monthly or weekly" in bad.output
