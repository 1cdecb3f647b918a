"""Faults that must end with a clear message and nothing lost (issue 15, point 6).

A full disk under the database stops the batch with one line naming the database and the free
space, keeps every committed call, and the next run continues; byte-identical recordings are
reported (summary and `runs` row) and a bad sidecar on one copy never drops the call; a batch
killed with SIGKILL leaves no Prefect temporary API server behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import psutil
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.pipeline import store
from fake_pipeline import use_fake_pipeline, write_recordings

NAMES = [f"call_{i}.wav" for i in range(6)]


def _stored(db: Path) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT file_name FROM calls").fetchall())
    finally:
        con.close()


def _cli_run(calls: Path, db: Path, cfg: Path | None = None):
    args = ["run", str(calls), "--db", str(db), "--workers", "1"] + (["--config", str(cfg)] if cfg else [])
    return CliRunner().invoke(app, args)


def _one_line_disk_full(result, db: Path) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(db) in lines[0] and "disk full" in lines[0] and "MB free" in lines[0], lines[0]


# ---- disk full --------------------------------------------------------------------------------


def test_disk_full_stops_the_batch_in_one_line_and_the_next_run_continues(tmp_path, monkeypatch):
    """DuckDB's own error for a full disk at COMMIT, raised on the third call's write."""
    use_fake_pipeline(monkeypatch)
    real_write = store.write_call
    writes = []

    def write_call(con, result, run_id, version):
        writes.append(result.source.path)
        if len(writes) == 3:
            raise duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{db}.wal": No space left on device'
            )
        return real_write(con, result, run_id, version)

    monkeypatch.setattr(store, "write_call", write_call)
    calls, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    write_recordings(calls, NAMES)
    _one_line_disk_full(_cli_run(calls, db), db)
    assert len(writes) == 3  # the batch stopped at the failed write: no call after it was attempted
    assert _stored(db) == sorted(Path(p).name for p in writes[:2])  # what was committed is kept

    monkeypatch.setattr(store, "write_call", real_write)
    again = _cli_run(calls, db)
    assert again.exit_code == 0, again.output
    assert _stored(db) == sorted(NAMES)
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT status, n_processed FROM runs ORDER BY started_at").fetchall()
    failures = con.execute("SELECT count(*) FROM failures").fetchone()[0]
    con.close()
    assert runs == [("crashed", 2), ("completed", 4)] and failures == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB tmpfs (needs root); skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_real_full_disk_ends_in_one_line_and_loses_nothing(tmp_path, monkeypatch, small_disk):
    calls, db = tmp_path / "calls", small_disk / "qa.duckdb"
    write_recordings(calls, NAMES)
    seen = []

    def fill_on_third_call(source):
        # the third call is submitted once the first is committed: the disk fills then
        seen.append(source)
        if len(seen) == 3:
            _fill(small_disk)

    use_fake_pipeline(monkeypatch, on_call=fill_on_third_call)
    result = _cli_run(calls, db)
    _one_line_disk_full(result, db)
    kept = _stored(db)
    assert 1 <= len(kept) < len(NAMES)

    (small_disk / "filler").unlink()
    use_fake_pipeline(monkeypatch)
    again = _cli_run(calls, db)
    assert again.exit_code == 0, again.output
    assert _stored(db) == sorted(NAMES)  # every call once: the committed ones kept, the rest added


# ---- duplicates -------------------------------------------------------------------------------


def test_duplicates_are_reported_in_the_run_summary_and_the_runs_row(tmp_path, monkeypatch):
    use_fake_pipeline(monkeypatch)
    calls, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    files = write_recordings(calls, ["a.wav", "c.wav"], same={"b.wav": "a.wav", "sub/z.wav": "a.wav"})
    result = _cli_run(calls, db)
    assert result.exit_code == 0, result.output
    assert "2 duplicate file(s)" in result.stdout
    assert f"kept {files['a.wav']}; same audio: {files['b.wav']}, {files['sub/z.wav']}" in result.stdout

    con = duckdb.connect(str(db), read_only=True)
    (dups,) = con.execute("SELECT duplicates FROM runs").fetchone()
    (source_path,) = con.execute("SELECT source_path FROM calls WHERE file_name = 'a.wav'").fetchone()
    n_calls = con.execute("SELECT count(*) FROM calls").fetchone()[0]
    con.close()
    (group,) = json.loads(dups)
    assert group["kept"] == source_path == str(files["a.wav"])
    assert group["same_audio"] == [str(files["b.wav"]), str(files["sub/z.wav"])]
    assert n_calls == 2


def test_a_bad_sidecar_on_the_first_copy_does_not_drop_the_call(tmp_path, monkeypatch):
    from callqa.flows.nightly import run_nightly

    use_fake_pipeline(monkeypatch)
    calls, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    files = write_recordings(calls, ["a.wav"], same={"b.wav": "a.wav"})
    (calls / "a.json").write_text('{"agent_id": "A1", ')  # cut off
    (calls / "b.json").write_text('{"agent_id": "A2"}')
    summary = run_nightly(calls, db, workers=1)
    assert (summary["processed"], summary["failed"]) == (1, 0)
    assert summary["duplicates"] == 1
    assert summary["duplicate_groups"][0]["kept"] == str(files["b.wav"])
    con = duckdb.connect(str(db), read_only=True)
    row = con.execute("SELECT source_path, agent_id FROM calls").fetchall()
    con.close()
    assert row == [(str(files["b.wav"]), "A2")]


# ---- Prefect's temporary API server after SIGKILL ---------------------------------------------

DRIVER = r"""
import json, os, sys, time
from callqa.flows.nightly import run_nightly

def progress(event, info):
    if event == "start":
        print(json.dumps({"event": "start", "pid": os.getpid()}), flush=True)
        time.sleep(600)

run_nightly(sys.argv[1], sys.argv[2], workers=1, progress=progress)
"""


def _servers(proc: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [c for c in proc.children(recursive=True) if any("create_app" in a for a in c.cmdline())]
    return []


@pytest.mark.slow
def test_no_prefect_api_server_outlives_a_batch_killed_with_sigkill(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(calls), str(tmp_path / "qa.duckdb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    servers: list[psutil.Process] = []
    try:
        line = proc.stdout.readline()  # the flow is running: its API server is up
        assert json.loads(line)["event"] == "start", line
        servers = _servers(psutil.Process(proc.pid))
        assert servers, "no temporary API server found under the batch"
        os.kill(proc.pid, signal.SIGKILL)  # the batch only, as the OOM killer would: not its process group
        proc.wait(10)
        _, alive = psutil.wait_procs(servers, timeout=20)
        assert not alive, f"Prefect's temporary API server outlived its batch: {[p.pid for p in alive]}"
    finally:
        for p in servers:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if proc.poll() is None:
            proc.kill()


ORPHAN_MAKER = r"""
import os, subprocess, sys
from pathlib import Path
from callqa.flows.ephemeral import record_server

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "prefect.server.api.server:create_app"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
record_server(child.pid, Path(sys.argv[1]))
print(child.pid, flush=True)
os._exit(0)  # dies without stopping its server, as a killed batch does
"""


def test_the_next_run_ends_a_server_orphaned_by_a_dead_batch(tmp_path):
    from callqa.flows.ephemeral import end_orphans, record_server

    records = tmp_path / "callqa-servers"
    out = subprocess.run([sys.executable, "-c", ORPHAN_MAKER, str(records)], capture_output=True, text=True)
    orphan = psutil.Process(int(out.stdout))
    # a server of a batch that still runs (this process) is left alone, and so is a recorded pid
    # that now belongs to some other program
    ours = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "prefect.server.api.server:create_app"]
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    record_server(ours.pid, records)
    (records / f"{other.pid}.json").write_text(
        json.dumps({"server": other.pid, "server_started": psutil.Process(other.pid).create_time(), "batch": 1})
    )
    try:
        assert end_orphans(records) == [orphan.pid]
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
        assert ours.poll() is None and other.poll() is None
        assert sorted(p.name for p in records.iterdir()) == [f"{ours.pid}.json"]
    finally:
        for p in (ours, other):
            p.kill()
            p.wait()
        with contextlib.suppress(psutil.Error):
            orphan.kill()
