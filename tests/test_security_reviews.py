"""Attacks on the review history and the reviewer commands (issue 15, point 4), each tried for real.

Someone who can write the database file deletes the newest review, deletes them all, edits a verdict and
recomputes the chain with callqa's own (unkeyed) code, or rolls the head file back; a reviewer's name is
Rich markup; `--db` is mistyped. The keyed chain (an HMAC with a key outside the database) and the head
file beside it must catch every one, and `callqa audit` must say what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat

import duckdb
import pytest
from typer.testing import CliRunner

import qa_data
from callqa.cli import app
from callqa.workspace.ledger import GENESIS, REVIEW_FIELDS, legacy_hash

runner = CliRunner()
STEREO, MONO, RUDE = "stereo_hold.wav", "mono_plain.wav", "rude.wav"


@pytest.fixture()
def db(tmp_path, monkeypatch):
    # the audit key goes to this test's own config folder, never the user's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("CALLQA_AUDIT_KEY", raising=False)
    path = tmp_path / "qa.duckdb"
    qa_data.build_db(path)
    return path


def review(db, call, verdict, reviewer="Ana", criterion="greeting", *extra):
    res = runner.invoke(
        app,
        ["review", call, "--criterion", criterion, "--verdict", verdict, "--reviewer", reviewer, "--db", str(db)]
        + list(extra),
    )
    return res


def audit(db, *extra):
    return runner.invoke(app, ["audit", "--db", str(db), *extra])


def three_reviews(db):
    for call, verdict in ((STEREO, "fail"), (MONO, "pass"), (RUDE, "pass")):
        res = review(db, call, verdict)
        assert res.exit_code == 0, res.output
    res = audit(db)
    assert res.exit_code == 0 and "intact" in res.output, res.output


def sql(db, statement, params=()):
    con = duckdb.connect(str(db))
    try:
        con.execute(statement, list(params))
    finally:
        con.close()


def test_deleting_the_last_review_is_caught(db):
    three_reviews(db)
    sql(db, "DELETE FROM reviews WHERE seq = 3")
    res = audit(db)
    assert res.exit_code == 1, res.output
    assert "entries after #2 are missing" in res.output and "the last is #3" in res.output


def test_deleting_every_review_is_caught(db):
    three_reviews(db)
    sql(db, "DELETE FROM reviews")
    res = audit(db)
    assert res.exit_code == 1, res.output
    assert "all review history is gone" in res.output and "#3" in res.output


def _recompute_without_the_key(db):
    """What an attacker can do with callqa's own code but not the key: rebuild every link by hash."""
    con = duckdb.connect(str(db))
    try:
        cols = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'reviews'"
            ).fetchall()
        }
        rows = con.execute(f"SELECT {', '.join(REVIEW_FIELDS)} FROM reviews ORDER BY seq").fetchall()
        prev = GENESIS
        for r in rows:
            row = dict(zip(REVIEW_FIELDS, r))
            h = legacy_hash(prev, row)
            sets = {"prev_hash": prev, "row_hash": h}
            if "mac" in cols:  # the keyed columns too, with the best a keyless attacker has
                sets |= {"prev_mac": prev, "mac": h}
            assign = ", ".join(f"{k} = ?" for k in sets)
            con.execute(f"UPDATE reviews SET {assign} WHERE review_id = ?", [*sets.values(), row["review_id"]])
            prev = h
    finally:
        con.close()


def test_an_edited_verdict_with_the_chain_recomputed_by_the_old_code_is_caught(db):
    three_reviews(db)
    sql(db, "UPDATE reviews SET verdict = 'pass' WHERE seq = 1")
    _recompute_without_the_key(db)
    res = audit(db)
    assert res.exit_code == 1, res.output
    assert "review #1" in res.output and "altered" in res.output


def test_a_chain_rebuilt_with_another_key_is_caught(db, tmp_path):
    import hmac

    three_reviews(db)
    sql(db, "UPDATE reviews SET verdict = 'fail' WHERE seq = 2")
    con = duckdb.connect(str(db))
    rows = con.execute("SELECT review_id, prev_mac, mac FROM reviews ORDER BY seq").fetchall()
    forged = hmac.new(b"the attacker's own key", rows[1][1].encode(), hashlib.sha256).hexdigest()
    con.execute("UPDATE reviews SET mac = ? WHERE seq = 2", [forged])
    con.execute("UPDATE reviews SET prev_mac = ? WHERE seq = 3", [forged])
    con.close()
    res = audit(db)
    assert res.exit_code == 1 and "review #2" in res.output and "altered" in res.output, res.output


def test_a_missing_or_rolled_back_head_file_is_caught(db, tmp_path):
    head = tmp_path / "qa.duckdb.audit-head"
    assert review(db, STEREO, "fail").exit_code == 0
    assert review(db, MONO, "pass").exit_code == 0
    old = tmp_path / "old-head"
    shutil.copy(head, old)
    res = review(db, RUDE, "pass")
    assert res.exit_code == 0
    receipt = res.output.split("chain head ")[1].split()[0]
    assert receipt.startswith("3:")

    shutil.copy(old, head)  # rolled back to an older genuine copy: the newest review is not anchored
    res = audit(db)
    assert res.exit_code == 1 and "head file is behind" in res.output and "#3" in res.output, res.output

    head.unlink()
    res = audit(db)
    assert res.exit_code == 1 and "is missing" in res.output, res.output

    # rolled back and the review after it deleted: consistent locally, but not with the published head
    shutil.copy(old, head)
    sql(db, "DELETE FROM reviews WHERE seq = 3")
    assert audit(db).exit_code == 0
    res = audit(db, "--expect-head", receipt)
    assert res.exit_code == 1 and "published head #3" in res.output, res.output


def test_seal_rewrites_a_lagging_head_but_never_launders_an_edit(db, tmp_path):
    head = tmp_path / "qa.duckdb.audit-head"
    assert review(db, STEREO, "fail").exit_code == 0
    old = head.read_bytes()
    assert review(db, MONO, "pass").exit_code == 0
    head.write_bytes(old)
    assert audit(db).exit_code == 1
    res = audit(db, "--seal")
    assert res.exit_code == 0 and "intact" in res.output, res.output
    sql(db, "UPDATE reviews SET verdict = 'na' WHERE seq = 1")
    head.write_bytes(old)
    res = audit(db, "--seal")
    assert res.exit_code != 0 and "not sealed" in res.output and "review #1" in res.output, res.output
    # a new review is refused while the history does not match its head
    head.unlink()
    res = review(db, RUDE, "pass")
    assert res.exit_code != 0 and "does not match its head file" in res.output, res.output


def test_reviewer_names_that_look_like_markup_print_literally(db):
    for name in ("[/]", "[bold]x"):
        res = review(db, STEREO, "fail", name)
        assert res.exit_code == 0, res.output
        assert f"by {name} " in res.output
    res = runner.invoke(app, ["show", STEREO, "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "fail ([bold]x)" in res.output
    res = runner.invoke(app, ["sql", "--db", str(db), 'SELECT reviewer AS "[/]" FROM reviews ORDER BY seq'])
    assert res.exit_code == 0 and "[bold]x" in res.output, res.output
    assert audit(db).exit_code == 0


@pytest.mark.parametrize(
    "cmd",
    [
        ["review", STEREO, "--criterion", "greeting", "--verdict", "pass", "--reviewer", "Ana"],
        ["sample", "--n", "2"],
        ["show", STEREO],
        ["audit"],
        ["calibration"],
        ["forget", "--call-id", STEREO, "--reason", "test"],
    ],
)
def test_a_mistyped_db_is_refused_and_never_created(db, tmp_path, cmd):
    typo = tmp_path / "qa.duckbd"
    res = runner.invoke(app, [*cmd, "--db", str(typo)])
    assert res.exit_code != 0
    assert "no such database file" in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not typo.exists() and not (tmp_path / "qa.duckbd.wal").exists()


def test_review_comments_are_redacted_like_transcripts(db, tmp_path):
    comment = "customer read out card 4111 1111 1111 1111 and phone 07700 900123"
    assert review(db, STEREO, "fail", "Ana", "greeting", "--comment", comment).exit_code == 0
    raw = tmp_path / "raw.yaml"
    raw.write_text("redaction:\n  enabled: false\n")
    assert review(db, MONO, "pass", "Ana", "greeting", "--comment", comment, "--config", str(raw)).exit_code == 0
    con = duckdb.connect(str(db), read_only=True)
    comments = [r[0] for r in con.execute("SELECT comment FROM reviews ORDER BY seq").fetchall()]
    con.close()
    assert comments[0] == "customer read out card [CARD] and phone [PHONE]"
    assert comments[1] == comment  # redaction.enabled: false keeps it raw, as for transcripts
    assert audit(db).exit_code == 0


def test_the_key_lives_outside_the_database_and_a_wrong_or_lost_key_is_named(db, tmp_path, monkeypatch):
    three_reviews(db)
    key = tmp_path / "cfg" / "callqa" / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip()
    con = duckdb.connect(str(db), read_only=True)
    for table, col in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
    ).fetchall():
        hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{col}", ?)', [secret]).fetchone()[0]
        assert hits == 0, (table, col)
    con.close()
    assert secret not in (tmp_path / "qa.duckdb.audit-head").read_text()

    monkeypatch.setenv("CALLQA_AUDIT_KEY", "some-other-key-of-enough-length")
    res = audit(db)
    assert res.exit_code == 1 and "is not the key this history was written with" in res.output, res.output
    assert review(db, STEREO, "pass").exit_code != 0
    monkeypatch.delenv("CALLQA_AUDIT_KEY")

    os.chmod(key, 0o644)
    res = audit(db)
    assert res.exit_code != 0 and "chmod 600" in res.output, res.output
    os.chmod(key, 0o600)

    moved = tmp_path / "backup.key"
    key.rename(moved)
    res = audit(db)
    assert res.exit_code == 1 and "no audit key was found" in res.output, res.output
    res = review(db, STEREO, "pass")
    assert res.exit_code != 0 and "restore the key" in res.output, res.output
    assert not key.exists()  # a lost key is never silently replaced by a new one
    moved.rename(key)
    assert audit(db).exit_code == 0


def test_unkeyed_history_from_before_the_keyed_chain_is_checked_then_sealed(db, tmp_path):
    """A database reviewed with schema v5 (SHA-256 chain, no key) migrates forward deterministically."""
    from callqa.workspace.ledger import legacy_hash

    con = duckdb.connect(str(db))
    cid = con.execute("SELECT call_id FROM calls WHERE file_name = ?", [STEREO]).fetchone()[0]
    prev = "0" * 64
    for seq, verdict in ((1, "fail"), (2, "pass")):
        row = {
            "review_id": f"r{seq}",
            "seq": seq,
            "call_id": cid,
            "scorecard_id": "inbound_basic",
            "scorecard_version": 1,
            "criterion_id": "greeting",
            "reviewer": "Old",
            "verdict": verdict,
            "comment": None,
            "auto_result": "pass",
            "created_at": con.execute(f"SELECT TIMESTAMP '2026-11-2{seq} 10:00:00'").fetchone()[0],
        }
        h = legacy_hash(prev, row)
        con.execute(
            f"INSERT INTO reviews ({', '.join(row)}, prev_hash, row_hash) VALUES ({', '.join('?' * (len(row) + 2))})",
            [*row.values(), prev, h],
        )
        prev = h
    con.close()
    backup = tmp_path / "v5.duckdb"
    shutil.copy(db, backup)
    res = audit(db)
    assert res.exit_code == 0 and "chained without a key" in res.output, res.output
    assert review(db, MONO, "pass").exit_code == 0  # the first keyed write seals the old history
    con = duckdb.connect(str(db), read_only=True)
    seal = con.execute("SELECT seq, kind, detail FROM audit_log").fetchall()
    macs = con.execute("SELECT seq, mac FROM reviews ORDER BY seq").fetchall()
    con.close()
    assert [(s, k) for s, k, _ in seal] == [(3, "seal")] and json.loads(seal[0][2])["unkeyed_head"] == prev
    assert [s for s, _ in macs] == [1, 2, 4] and all(m for _, m in macs)
    res = audit(db)
    assert res.exit_code == 0 and "3 reviews" in res.output, res.output

    # the same history sealed again with the same key gives the same MACs (deterministic)
    shutil.copy(backup, db)
    (tmp_path / "qa.duckdb.audit-head").unlink()
    assert audit(db, "--seal").exit_code == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT seq, mac FROM reviews ORDER BY seq").fetchall() == macs[:2]
    con.close()

    # broken unkeyed history is reported, never sealed
    shutil.copy(backup, db)
    (tmp_path / "qa.duckdb.audit-head").unlink()
    sql(db, "UPDATE reviews SET verdict = 'na' WHERE seq = 1")
    res = review(db, MONO, "pass")
    assert res.exit_code != 0 and "unkeyed review history is broken" in res.output, res.output
    assert audit(db).exit_code == 1


def test_the_run_artifact_publishes_the_chain_head_as_an_outside_anchor():
    from callqa.flows.artifacts import run_markdown

    summary = {"run_id": "r1", "db_path": "/x/qa.duckdb", "audit_head": {"seq": 7, "mac": "ab" * 32, "reviews": 5}}
    md = run_markdown(summary, 0, [], None)
    assert "## Review chain" in md and "(5 reviews)" in md
    assert "callqa audit --db /x/qa.duckdb --expect-head 7:abababababababab" in md
    assert "No reviews or erasures yet." in run_markdown({"run_id": "r2", "db_path": "d"}, 0, [], None)
