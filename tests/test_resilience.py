"""Kill the nightly batch with SIGKILL at random points, rerun it, and check that every call is stored
exactly once, nothing is lost or half-written, and the runs table tells what happened.

The batch runs in a subprocess (its own session, so the kill takes its Prefect temporary server with
it, as a crashed machine would); progress lines on its stdout tell the test where it is, and the kill
lands a random moment after a chosen event: during model loading, mid-transcription, mid-write.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from batch_helpers import CONTENT_TABLES, orphans
from callqa.pipeline.staging import staged_files

pytestmark = pytest.mark.slow

DRIVER = r"""
import json, sys
from callqa.flows.nightly import run_nightly

def progress(event, info):
    print(json.dumps({"event": event, "status": info.get("status"), "path": info.get("path"),
                      "recovered": info.get("recovered", 0)}), flush=True)

staging = sys.argv[4] if len(sys.argv) > 4 else None
s = run_nightly(sys.argv[1], sys.argv[2], sys.argv[3], workers=1, parquet_dir=staging, progress=progress)
print(json.dumps({"event": "summary", **{k: v for k, v in s.items() if isinstance(v, (int, float, str))}}), flush=True)
"""


def _env(prefect_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # A Prefect home of its own: the test process may run its own temporary server on the session's.
    env["PREFECT_HOME"] = str(prefect_home)
    env.pop("PREFECT_API_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_batch(args: list[str], env: dict[str, str], kill_after: tuple[str, int, float] | None, timeout: float = 600):
    """Run the driver; with kill_after=(event, n, delay) SIGKILL its whole process group `delay` s after
    the n-th `event` line. Returns (killed, events seen, summary or None)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    events: list[dict] = []
    killed = threading.Event()

    def kill_later(delay: float) -> None:
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed.set()

    seen = 0
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            if time.monotonic() > deadline:
                break
            if not line.startswith("{"):
                continue
            ev = json.loads(line)
            events.append(ev)
            if kill_after and ev["event"] == kill_after[0]:
                seen += 1
                if seen == kill_after[1]:
                    threading.Thread(target=kill_later, args=(kill_after[2],), daemon=True).start()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    summary = next((e for e in events if e["event"] == "summary"), None)
    return killed.is_set(), events, summary


def _check_final_state(db: Path, expected_ids: dict[str, str], runs_started: int) -> None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT file_name, call_id FROM calls").fetchall()
        # every good call exactly once, the corrupt file never
        assert sorted(stored) == sorted(expected_ids.items())
        for t, key in CONTENT_TABLES.items():
            dup = con.execute(
                f"SELECT count(*) FROM (SELECT {key} FROM {t} GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()[0]
            assert dup == 0, f"duplicate rows in {t}"
        # each call whole: transcript, detections and scores all there
        for call_id in expected_ids.values():
            n_utt, n_crit, n_scores = con.execute(
                """SELECT (SELECT count(*) FROM utterances WHERE call_id = $1),
                          (SELECT count(*) FROM criterion_results WHERE call_id = $1),
                          (SELECT count(*) FROM call_scores WHERE call_id = $1)""",
                [call_id],
            ).fetchone()
            assert n_utt > 0 and n_crit > 0 and n_scores > 0, call_id
        # the corrupt file is recorded once, however many runs met it
        fails = con.execute("SELECT path, permanent FROM failures").fetchall()
        assert len(fails) == 1 and fails[0][0].endswith("corrupt.wav") and fails[0][1]
        runs = con.execute("SELECT status, n_processed FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    assert orphans(db) == {t: 0 for t in CONTENT_TABLES if t != "calls"}
    # the audit trail is honest: one row per started run, killed ones closed as crashed, and every
    # stored call counted once, by the run that stored it
    assert len(runs) <= runs_started and runs[-1][0] == "completed"
    assert all(status in ("completed", "crashed") for status, _ in runs)
    assert sum(n for _, n in runs) == len(expected_ids)


def _kill_and_rerun(tmp_path: Path, calls: Path, expected: dict[str, str], cfg: Path, plans, staging: Path | None):
    db = tmp_path / "qa.duckdb"
    env = _env(tmp_path / "prefect-home")
    args = [str(calls), str(db), str(cfg)] + ([str(staging)] if staging else [])
    kills = recoveries = 0
    left: list = []
    for plan in [*plans, None]:  # the last run goes to completion
        killed, events, summary = run_batch(args, env, plan)
        start = next((e for e in events if e["event"] == "start"), None)
        if left and start is not None:
            # what the killed run had staged is loaded first, before any call is processed again
            assert start["recovered"] == len(left), (start, left)
            recoveries += 1
        kills += killed
        if not killed:
            assert summary is not None, events
        left = staged_files(staging) if staging else []
    assert not killed and not left
    assert kills >= 2, "the kill points never hit a running batch"
    _check_final_state(db, expected, runs_started=len(plans) + 1)
    # and one more run has nothing left to do
    _, _, again = run_batch(args, env, None)
    assert (again["processed"], again["failed"], again["skipped"]) == (0, 0, len(expected) + 1)
    return db, recoveries


@pytest.fixture()
def settings_file(tmp_path, asr_model_settings):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"cache_dir": str(asr_model_settings.cache_dir)}}))
    return cfg


def test_sigkill_at_random_points_then_rerun_stores_every_call_once(tmp_path, batch_calls, settings_file, whisper_asr):
    # whisper_asr: the session's model cache is assembled before the subprocesses start
    calls, expected = batch_calls
    rng = random.Random(20261123)
    plans = [
        ("start", 1, rng.uniform(0.0, 2.0)),  # while the models load or the first call is transcribed
        ("call", 1, rng.uniform(0.0, 1.5)),  # after one call is stored: mid-way through the next
        ("call", 2, rng.uniform(0.0, 0.3)),  # right after a write
    ]
    _kill_and_rerun(tmp_path, calls, expected, settings_file, plans, staging=None)


def test_sigkill_in_parquet_mode_loads_staged_calls_on_rerun(tmp_path, batch_calls, asr_model_settings, whisper_asr):
    src, all_ids = batch_calls
    names = ["billing.wav", "password.wav", "delivery.wav", "refund.wav"]
    calls = tmp_path / "calls"
    calls.mkdir()
    for n in names + ["corrupt.wav"]:
        shutil.copy(src / n, calls / n)
    expected = {n: all_ids[n] for n in names}
    cfg = tmp_path / "settings.yaml"
    # load every 3 staged calls, so that a kill usually leaves staged files behind
    cfg.write_text(
        yaml.safe_dump({"models": {"cache_dir": str(asr_model_settings.cache_dir)}, "batch": {"parquet_load_every": 3}})
    )
    rng = random.Random(7)
    # "call" events come as each call is staged; loads happen every third one
    plans = [
        ("start", 1, rng.uniform(0.0, 1.0)),
        ("call", 1, rng.uniform(0.0, 0.5)),
        ("call", 2, rng.uniform(0.0, 0.5)),
    ]
    _, recoveries = _kill_and_rerun(tmp_path, calls, expected, cfg, plans, staging=tmp_path / "staging")
    assert recoveries >= 1, "no kill left staged files behind: the recovery path was not exercised"
