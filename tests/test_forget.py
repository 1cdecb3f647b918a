"""Erasure and retention (issue 15, point 7): `callqa forget` and `retention.days` on a run's database.

The database is what a nightly run leaves: stored calls (with customer ids and redacted audio copies),
the run row, failures, a QA sample, human reviews, a report with call pages, plus a table added later.
After forgetting one customer no row anywhere mentions their calls except the tombstone, their files are
gone, everyone else's rows are untouched, and the keyed review chain still verifies across the gap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import qa_data
from callqa.cli import app
from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.pipeline.redact import pseudonymise
from callqa.pipeline.types import CallFailure
from callqa.workspace.forget import purge_expired
from callqa.workspace.qa import draw_sample, open_db

runner = CliRunner()
CUSTOMERS = {"stereo_hold.wav": "C-1001", "rude.wav": "C-1001", "zh_call.wav": "C-2002"}


@pytest.fixture()
def run_db(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("CALLQA_AUDIT_KEY", raising=False)
    monkeypatch.setenv("CALLQA_PSEUDONYM_KEY", "test-pseudonym-key-0123456789")
    rec, red, report = tmp_path / "recordings", tmp_path / "redacted", tmp_path / "report"
    red.mkdir()
    calls = []
    for c in qa_data.all_calls(rec):
        name = Path(c.source.path).name
        meta = dict(c.source.metadata)
        if name in CUSTOMERS:
            meta["customer_id"] = CUSTOMERS[name]
        if name == "rude.wav":  # stored as today's runs store it: a keyed pseudonym, not the id
            meta["customer_id"] = pseudonymise(CUSTOMERS[name], b"test-pseudonym-key-0123456789")
        copy = red / f"{Path(name).stem}.{c.source.call_id[:12]}.redacted.wav"
        copy.write_bytes(b"RIFF redacted copy")
        meta["redacted_audio"] = str(copy)
        calls.append(replace(c, source=replace(c.source, metadata=meta)))
    ids = {Path(c.source.path).name: c.source.call_id for c in calls}
    db = tmp_path / "qa.duckdb"
    con = store.connect(db)
    try:
        run = store.start_run(con, "nightly_batch", str(rec), {}, "test")
        for c in calls:
            assert store.write_call(con, c, run, "test")
        store.write_failure(con, CallFailure(str(rec / "rude.wav"), ids["rude.wav"], "emotion", "boom", False), run)
        # recorded before the bytes were hashed: only the path links it to the call
        store.write_failure(con, CallFailure(str(rec / "stereo_hold.wav"), None, "decode", "unreadable", False), run)
        store.finish_run(con, run, {"processed": len(calls)})
        dups = [
            {"call_id": ids[n], "kept": str(rec / n), "same_audio": [str(rec / f"copy of {n}")]}
            for n in ("rude.wav", "mono_plain.wav")
        ]
        con.execute("UPDATE runs SET duplicates = ? WHERE run_id = ?", [json.dumps(dups), run])
        draw_sample(con, 4, seed=1, include_flagged=True)
        con.execute("CREATE TABLE qa_notes (call_id VARCHAR, note VARCHAR)")  # a table a later migration adds
        con.execute("INSERT INTO qa_notes SELECT call_id, 'coach ' || file_name FROM calls")
    finally:
        con.close()
    for name, verdict in (("stereo_hold.wav", "fail"), ("mono_plain.wav", "pass"), ("rude.wav", "fail")):
        res = runner.invoke(
            app, ["review", name, "--criterion", "greeting", "--verdict", verdict, "--reviewer", "Ana", "--db", str(db)]
        )
        assert res.exit_code == 0, res.output
    from callqa.workspace.report import build_report

    build_report(db, report, audio="none")
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"redaction:\n  audio_dir: {red}\nreport:\n  out_dir: {report}\n  audio: none\n")
    return {"db": db, "ids": ids, "cfg": cfg, "red": red, "report": report, "tmp": tmp_path}


def mentions(db: Path, needles: list[str]) -> dict[str, int]:
    """Rows per table whose text, in any column, contains one of the needles."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        out = {}
        for t in tables:
            cols = [
                r[0]
                for r in con.execute(
                    f"SELECT column_name FROM information_schema.columns WHERE table_name = '{t}'"
                ).fetchall()
            ]
            text = " || '|' || ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in cols)
            where = " OR ".join(f"contains({text}, ?)" for _ in needles)
            n = con.execute(f'SELECT count(*) FROM "{t}" WHERE {where}', needles).fetchone()[0]
            if n:
                out[t] = n
        return out
    finally:
        con.close()


def counts(db: Path, call_id: str) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'call_id'"
            ).fetchall()
        ]
        return {
            t: con.execute(f'SELECT count(*) FROM "{t}" WHERE call_id = ?', [call_id]).fetchone()[0] for t in tables
        }
    finally:
        con.close()


def test_forget_a_customer_leaves_only_the_tombstone(run_db):
    db, ids, report = run_db["db"], run_db["ids"], run_db["report"]
    gone = [ids["stereo_hold.wav"], ids["rude.wav"]]
    kept = [ids["mono_plain.wav"], ids["zh_call.wav"]]
    before = {cid: counts(db, cid) for cid in kept}
    assert mentions(db, gone).keys() >= {"calls", "utterances", "words", "events", "call_metrics", "reviews"}
    assert all((report / "calls" / f"{cid}.html").exists() for cid in ids.values())
    # words only these calls said, as they sit in the database file's blocks
    said = (b"ridiculous", b"stupid")
    assert all(w in db.read_bytes() for w in said)

    res = runner.invoke(
        app,
        ["forget", "--customer-id", "C-1001", "--reason", "erasure request R117 (phone 07700 900123)"]
        + ["--db", str(db), "--config", str(run_db["cfg"])],
    )
    assert res.exit_code == 0, res.output
    assert "2 call(s)" in res.output and "2 review(s)" in res.output and "tombstone #4" in res.output
    assert not any(w in db.read_bytes() for w in said)  # not even in the file's free space

    # no row anywhere names these calls or the customer, except the tombstone
    assert mentions(db, gone + [cid[:16] for cid in gone]) == {"audit_log": 1}
    assert mentions(db, ["C-1001"]) == {}
    assert {cid: counts(db, cid) for cid in kept} == before
    con = duckdb.connect(str(db), read_only=True)
    tomb = con.execute("SELECT erased_by, reason, call_ids, calls, detail FROM tombstones").fetchall()
    failures = con.execute("SELECT count(*) FROM failures").fetchone()[0]
    dups = json.loads(con.execute("SELECT duplicates FROM runs").fetchone()[0])
    con.close()
    assert [g["call_id"] for g in dups] == [ids["mono_plain.wav"]]  # only the forgotten call's group goes
    assert len(tomb) == 1
    erased_by, reason, call_ids, n, detail = tomb[0]
    assert erased_by and sorted(call_ids) == sorted(gone) and n == 2
    assert reason == "erasure request R117 (phone [PHONE])"  # the reason is free text: redacted too
    assert '"selector":"customer_id"' in detail.replace(" ", "") and "C-1001" not in detail
    assert failures == 0

    # their files are gone, everyone else's stay
    left = sorted(p.name for p in run_db["red"].iterdir())
    assert left == sorted(f"{Path(n).stem}.{ids[n][:12]}.redacted.wav" for n in ("mono_plain.wav", "zh_call.wav"))
    assert not any((report / "calls" / f"{cid}.html").exists() for cid in gone)
    assert all((report / "calls" / f"{cid}.html").exists() for cid in kept)
    listing = (report / "calls.html").read_text() + (report / "index.html").read_text()
    assert "rude.wav" not in listing and "stereo_hold.wav" not in listing and "mono_plain.wav" in listing

    res = runner.invoke(app, ["audit", "--db", str(db)])
    assert res.exit_code == 0 and "1 reviews, 1 erasures" in res.output, res.output


def test_the_chain_records_the_erasure_and_still_catches_tampering(run_db):
    db, ids = run_db["db"], run_db["ids"]
    res = runner.invoke(app, ["forget", "--call-id", ids["mono_plain.wav"][:10], "--reason", "test", "--db", str(db)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["review", "zh_call.wav", "--criterion", "greeting", "--verdict", "pass", "--reviewer", "Bo", "--db", str(db)],
    )
    assert res.exit_code == 0 and "review #5" in res.output, res.output
    assert runner.invoke(app, ["audit", "--db", str(db)]).exit_code == 0
    again = runner.invoke(app, ["forget", "--call-id", ids["mono_plain.wav"], "--reason", "test", "--db", str(db)])
    assert again.exit_code != 0 and "forgotten already" in again.output

    # a review removed by hand is still caught, and so is a forged tombstone that claims to explain it
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM reviews WHERE seq = 3")
    con.close()
    res = runner.invoke(app, ["audit", "--db", str(db)])
    assert res.exit_code == 1 and "review #3 is missing" in res.output, res.output
    con = duckdb.connect(str(db))
    prev = con.execute("SELECT mac FROM reviews WHERE seq = 5").fetchone()[0]
    con.execute(
        """INSERT INTO audit_log VALUES (6, 'erasure', now(), 'mallory', 'cover', []::VARCHAR[], ?, ?, ?)""",
        ['{"reviews": [[3, "' + "0" * 64 + '"]]}', prev, hashlib.sha256(b"no key").hexdigest()],
    )
    con.close()
    res = runner.invoke(app, ["audit", "--db", str(db)])
    assert res.exit_code == 1 and "erasure entry #6 was altered" in res.output and "#3 is missing" in res.output


def test_a_table_erasure_cannot_clear_stops_it_before_anything_is_removed(run_db):
    db, ids = run_db["db"], run_db["ids"]
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE exports_log (what VARCHAR)")
    con.execute("INSERT INTO exports_log VALUES (?)", [f"sent {ids['rude.wav']} to the CRM"])
    con.close()
    before = counts(db, ids["rude.wav"])
    res = runner.invoke(app, ["forget", "--call-id", "rude.wav", "--reason", "test", "--db", str(db)])
    assert res.exit_code != 0 and "exports_log.what" in res.output and "nothing was removed" in res.output
    assert counts(db, ids["rude.wav"]) == before
    assert runner.invoke(app, ["audit", "--db", str(db)]).exit_code == 0


def test_retention_forgets_calls_older_than_n_days(run_db):
    from datetime import datetime

    db, ids = run_db["db"], run_db["ids"]
    settings = load_settings(run_db["cfg"], overrides={"retention": {"days": 4}})
    con = open_db(db)
    try:
        # stereo_hold started 2026-11-20 09:00, the others on the 21st and 22nd
        erased = purge_expired(con, settings, as_of=datetime(2026, 11, 25))
        assert erased is not None and erased.call_ids == [ids["stereo_hold.wav"]]
        assert purge_expired(con, settings, as_of=datetime(2026, 11, 25)) is None
        tomb = con.execute("SELECT erased_by, reason FROM tombstones").fetchall()
    finally:
        con.close()
    assert tomb[0][0].startswith("retention") and tomb[0][1] == "retention: older than 4 days"
    assert mentions(db, [ids["stereo_hold.wav"]]) == {"audit_log": 1}
    assert runner.invoke(app, ["audit", "--db", str(db)]).exit_code == 0
    assert load_settings(None).retention.days is None  # off unless configured


@pytest.mark.slow  # a Prefect flow run (~45 s on 2 cores), no ASR
def test_the_nightly_run_purges_by_retention_and_never_stores_a_forgotten_recording_again(run_db):
    from callqa.flows.nightly import run_nightly

    db, ids, tmp = run_db["db"], run_db["ids"], run_db["tmp"]
    con = duckdb.connect(str(db))
    con.execute("UPDATE calls SET started_at = TIMESTAMP '2000-01-01 09:00:00'")  # long past, whatever the clock
    con.close()
    cfg = tmp / "nightly.yaml"
    cfg.write_text(run_db["cfg"].read_text() + "retention:\n  days: 1\n")
    inbox = tmp / "inbox"
    inbox.mkdir()
    # a recording still in the input folder whose bytes are a forgotten call's (call_id = sha256 of the bytes)
    (inbox / "again.wav").write_bytes(b"stereo_hold.wav")
    assert hashlib.sha256(b"stereo_hold.wav").hexdigest() == ids["stereo_hold.wav"]
    summary = run_nightly(inbox, db, cfg)
    assert summary["purged"] == 4 and summary["skipped"] == 1 and summary["processed"] == 0 == summary["failed"]
    assert mentions(db, list(ids.values())) == {"audit_log": 1}
    head = summary["audit_head"]
    assert head["seq"] == 4 and head["reviews"] == 0
    res = runner.invoke(app, ["audit", "--db", str(db), "--expect-head", f"{head['seq']}:{head['mac'][:16]}"])
    assert res.exit_code == 0, res.output
