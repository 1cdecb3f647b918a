"""A rescore holds the database only per commit (flows/rescore.py): another process opens the file between
commits without waiting, and sees every call whole, at its old version or the new one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from callqa import rowgen
from callqa.flows.rescore import rescore_db
from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import load_scorecard

N_CALLS = 900
CHUNK = 300

# Another process: open read-only with no wait at all (timeout 0 fails on the first lock conflict), then
# count the calls at the new version and any call whose criterion rows and total disagree (half a call).
READER = """
import json, sys
from callqa.pipeline import store
db, card_id, version = sys.argv[1], sys.argv[2], int(sys.argv[3])
with store.open_db(db, read_only=True, timeout_s=0) as con:
    at_new = con.execute(
        "SELECT count(*) FROM call_scores WHERE scorecard_id = ? AND scorecard_version = ?", [card_id, version]
    ).fetchone()[0]
    half = con.execute(
        '''SELECT count(*) FROM call_scores s WHERE scorecard_id = ? AND scorecard_version = ?
           AND NOT EXISTS (SELECT 1 FROM criterion_results r WHERE r.call_id = s.call_id
                           AND r.scorecard_id = s.scorecard_id AND r.scorecard_version = s.scorecard_version)''',
        [card_id, version],
    ).fetchone()[0]
print(json.dumps({"at_new": at_new, "half": half}))
"""


@pytest.fixture()
def stored(tmp_path):
    db = tmp_path / "qa.duckdb"
    with store.open_db(db) as con:
        rowgen.load_into(con, rowgen.generate(N_CALLS, seed=3))
    return db, new_version()


def new_version():
    """The bundled card under a version no stored call has, loaded afresh for each rescore as the flow does
    (scoring leaves a loaded card's `where` values as ints, which changes its content hash)."""
    card = load_scorecard("inbound_service_en")
    return card.model_copy(update={"version": card.version + 40})


def read_from_another_process(db, card) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", READER, str(db), card.id, str(card.version)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]  # a held file fails here: the reader does not wait
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_another_process_opens_the_file_between_commits_and_sees_whole_calls(stored):
    db, card = stored
    seen: list[tuple[int, dict]] = []

    def between(done: int, total: int) -> None:
        if done in (CHUNK, 2 * CHUNK):  # two looks keep the test quick (a process start each)
            seen.append((done, read_from_another_process(db, card)))

    summary = rescore_db(db, card, all_languages=True, chunk_calls=CHUNK, on_commit=between)
    assert summary["commits"] == -(-N_CALLS // CHUNK) and summary["calls_scored"] > 0
    assert [d for d, _ in seen] == [CHUNK, 2 * CHUNK]
    for done, got in seen:
        assert got["half"] == 0
        assert 0 < got["at_new"] <= done < summary["calls_scored"] + CHUNK
    assert seen[0][1]["at_new"] < seen[1][1]["at_new"]  # results appear commit by commit
    with store.open_db(db, read_only=True) as con:
        n = con.execute("SELECT count(*) FROM call_scores WHERE scorecard_version = ?", [card.version]).fetchone()[0]
    assert n == summary["calls_scored"]


def test_chunked_rescore_stores_what_one_transaction_would(stored):
    db, card = stored
    rescore_db(db, card, all_languages=True, chunk_calls=CHUNK)
    card = new_version()
    rescore_db(db, card, all_languages=True, chunk_calls=7 * CHUNK)  # again: replaces, never duplicates
    with store.open_db(db) as con:
        scored = rescore_contexts(new_version(), load_contexts(con), True)
        expected = {cid: (s.percent, s.grade) for cid, s in scored}
        got = {
            cid: (pct, grade)
            for cid, pct, grade in con.execute(
                "SELECT call_id, percent, grade FROM call_scores WHERE scorecard_id = ? AND scorecard_version = ?",
                [card.id, card.version],
            ).fetchall()
        }
        n_crit = con.execute(
            "SELECT count(*) FROM criterion_results WHERE scorecard_id = ? AND scorecard_version = ?",
            [card.id, card.version],
        ).fetchone()[0]
    assert got.keys() == expected.keys()
    assert all(got[c][1] == expected[c][1] and got[c][0] == pytest.approx(expected[c][0]) for c in got)
    assert n_crit == len(expected) * len(card.criteria)


def test_a_call_made_unscorable_loses_the_versions_results(stored):
    db, card = stored
    rescore_db(db, card, all_languages=True)
    with store.open_db(db) as con:
        cid = con.execute("SELECT call_id FROM calls ORDER BY call_id LIMIT 1").fetchone()[0]
        con.execute("UPDATE calls SET scorable_status = 'unscorable' WHERE call_id = ?", [cid])
    summary = rescore_db(db, new_version(), all_languages=True)
    assert summary["unscorable"] >= 1
    with store.open_db(db, read_only=True) as con:
        left = con.execute(
            "SELECT count(*) FROM call_scores WHERE call_id = ? AND scorecard_version = ?", [cid, card.version]
        ).fetchone()[0]
    assert left == 0
