"""The nightly flow end to end on synthesised calls with known truth (real TTS, real ASR, real DuckDB)."""

from __future__ import annotations

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from callqa.cli import app
from callqa.flows.nightly import run_nightly
from callqa.synth.mix import render_call
from callqa.synth.script import CallScript, Turn

pytestmark = pytest.mark.slow

DATA_TABLES = ["calls", "utterances", "words", "events", "call_metrics", "criterion_results", "call_scores", "failures"]

CALLS = {
    # stem: (script turns, stereo, greeting expected)
    "greeted": (
        [
            Turn(
                "agent",
                "Thank you for calling Acme Energy, my name is Sarah, how can I help you today?",
                gap_before_s=0.4,
            ),
            Turn("customer", "Hi Sarah, I would like to check the balance on my account please."),
            Turn("agent", "Of course. Your balance is forty two pounds."),
        ],
        True,
        True,
    ),
    "no_greeting": (
        [
            Turn("agent", "Account number?", gap_before_s=0.4),
            Turn("customer", "Oh, hello. It is one two three four five."),
            Turn("agent", "Right. The engineer is booked for Monday."),
        ],
        True,
        False,
    ),
    "mono_greeted": (
        [
            Turn(
                "agent",
                "Good morning, thanks for calling Brightline, this is Daniel, how may I help you?",
                gap_before_s=0.4,
            ),
            Turn("customer", "Hello, my internet keeps dropping out every evening."),
        ],
        False,
        True,
    ),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, asr_model_settings):
    root = tmp_path_factory.mktemp("batch")
    calls = root / "calls"
    calls.mkdir()
    for stem, (turns, stereo, _) in CALLS.items():
        script = CallScript(turns, voices={"agent": "joe_high", "customer": "joe"})
        render_call(
            script,
            calls / f"{stem}.wav",
            sample_rate=8000,
            stereo=stereo,
            codec="pcm_mulaw" if stereo else None,
            telephone=True,
            write_truth=False,
        )
    (calls / "corrupt.wav").write_text("this is a text file, not a recording\n")
    cfg = root / "settings.yaml"
    # these three-turn calls test the greeting verdict end to end, so they are scored with the one-criterion
    # card; the default 16-criterion cards are checked on the labelled calls (tests/test_eval_scoring.py)
    cfg.write_text(
        yaml.safe_dump({"models": {"cache_dir": str(asr_model_settings.cache_dir)}, "scorecards": ["inbound_basic"]})
    )
    db = root / "qa.duckdb"
    first = run_nightly(calls, db, cfg, workers=1)
    return {"root": root, "calls": calls, "db": db, "cfg": cfg, "first": first}


def counts(db, tables=DATA_TABLES + ["runs", "reviews"]):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def test_first_run_stores_good_calls_and_records_the_corrupt_one(batch):
    s = batch["first"]
    assert (s["discovered"], s["processed"], s["failed"], s["skipped"]) == (4, 3, 1, 0)
    c = counts(batch["db"])
    for t in DATA_TABLES + ["runs"]:
        assert c[t] > 0, f"no rows in {t}"
    assert c["calls"] == 3 and c["failures"] == 1
    con = duckdb.connect(str(batch["db"]), read_only=True)
    path, stage, error, permanent = con.execute("SELECT path, stage, error, permanent FROM failures").fetchone()
    assert path.endswith("corrupt.wav") and stage == "decode" and permanent
    assert "corrupt.wav" in error and "not an audio file" in error
    run = con.execute("SELECT status, n_discovered, n_processed, n_failed, n_flagged FROM runs").fetchone()
    assert run == ("completed", 4, 3, 1, 1)


def test_greeting_verdicts_match_what_was_synthesised(batch):
    con = duckdb.connect(str(batch["db"]), read_only=True)
    rows = con.execute(
        """SELECT c.file_name, r.result, s.flagged, r.evidence_event_ids, r.rationale FROM criterion_results r
           JOIN calls c USING (call_id) JOIN call_scores s USING (call_id) WHERE r.criterion_id = 'greeting'"""
    ).fetchall()
    got = {r[0]: r for r in rows}
    for stem, (_, _, greeted) in CALLS.items():
        name, result, flagged, evidence, rationale = got[f"{stem}.wav"]
        assert result == ("pass" if greeted else "fail"), (name, rationale)
        assert flagged == (not greeted)
        if greeted:
            # the cited event exists, is a greeting, and quotes the transcript
            ev = con.execute("SELECT type, start_s, evidence FROM events WHERE event_id = ?", [evidence[0]]).fetchone()
            assert ev[0] == "greeting" and ev[1] < 15 and len(ev[2]) > 10


def test_stereo_roles_come_from_the_channel_map_and_mono_is_single_speaker(batch):
    # closed by the context manager even when an assertion fails: an open read-only connection in this
    # process would block the next test's writer (DuckDB shares one database instance per process)
    with duckdb.connect(str(batch["db"]), read_only=True) as con:
        _check_roles(con)


def _check_roles(con) -> None:
    roles = dict(
        con.execute(
            """SELECT c.file_name, list(DISTINCT u.role ORDER BY u.role)
               FROM utterances u JOIN calls c USING (call_id) GROUP BY 1"""
        ).fetchall()
    )
    assert roles["greeted.wav"] == ["agent", "customer"]
    # mono: diarized into two speakers, the greeter is the agent (issue 4)
    assert roles["mono_greeted.wav"] == ["agent", "customer"]
    first = con.execute(
        """SELECT u.role, u.text FROM utterances u JOIN calls c USING (call_id)
           WHERE c.file_name = 'greeted.wav' ORDER BY seq LIMIT 2"""
    ).fetchall()
    assert first[0][0] == "agent" and "calling" in first[0][1].lower()
    # greedy base on the 8 kHz synthetic voice hears "I'm out on my account" for "check the balance on my account"
    assert first[1][0] == "customer" and "account" in first[1][1].lower()
    meta = con.execute(
        "SELECT channels, sample_rate, codec, language FROM calls WHERE file_name = 'greeted.wav'"
    ).fetchone()
    assert meta == (2, 8000, "pcm_mulaw", "en")


def test_second_run_adds_nothing_and_cli_sql_refuses_writes(batch):
    before = counts(batch["db"])
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(batch["calls"]), "--db", str(batch["db"]), "--config", str(batch["cfg"])])
    assert res.exit_code == 0, res.output
    after = counts(batch["db"])
    assert {t: after[t] for t in DATA_TABLES} == {t: before[t] for t in DATA_TABLES}
    assert after["runs"] == before["runs"] + 1
    con = duckdb.connect(str(batch["db"]), read_only=True)
    last = con.execute(
        "SELECT n_discovered, n_skipped, n_processed, n_failed FROM runs ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    con.close()
    assert last == (4, 4, 0, 0)

    res = runner.invoke(app, ["sql", "--db", str(batch["db"]), "DELETE FROM calls"])
    assert res.exit_code != 0 and "read-only" in res.output
    assert counts(batch["db"]) == after

    res = runner.invoke(app, ["sql", "--db", str(batch["db"]), "SELECT count(*) AS n FROM calls", "--format", "csv"])
    assert res.exit_code == 0 and res.output.strip().splitlines() == ["n", "3"]

    res = runner.invoke(app, ["flagged", "--db", str(batch["db"])])
    assert (
        res.exit_code == 0
        and "no_greeting.wav" in res.output
        and "greeted.wav" not in res.output.replace("no_greeting.wav", "")
    )
