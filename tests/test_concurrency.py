"""Working while the batch runs (issue 17, concurrency): the database is held per commit, others wait.

Fast tests: `store.open_db` waits out a lock held by another process and gives up after its timeout
with the file named, raises other errors at once, serialises writers in one process; the analyst
sandbox waits the same way and keeps its protections; a second batch is refused; the batch does not
hold the file while a call is processed; the bench's web client tells an answered page from a lock
the server waited out in vain. The slow test runs a real `callqa run` on 20 calls while two clients
work every 0.5 s (the `both` scenario of bench/concurrent_batch.py): one reads, lists and reviews
through the CLI, the other uses a real `callqa serve` (queue, call page, review posts).
"""

from __future__ import annotations

import collections
import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from callqa.pipeline import store
from callqa.pipeline.store import StoreError, StoreLocked
from callqa.workspace.sandbox import connect_analyst, query_read_only

REPO = Path(__file__).resolve().parents[1]

HOLDER = r"""
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "ro")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(db: Path, seconds: float, mode: str = "rw") -> subprocess.Popen:
    """A child process holding the database open (the batch, or another command) for `seconds`."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds), mode], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "qa.duckdb"
    store.connect(path).close()
    return path


def test_open_db_waits_for_another_process_and_then_opens(db):
    holder = _hold(db, 1.0)
    t = time.monotonic()
    with store.open_db(db, read_only=True, timeout_s=20) as con:
        waited = time.monotonic() - t
        assert con.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    holder.wait()
    assert waited >= 0.5, "opened while the other process still held the lock"
    # and closed on exit: another process can open it for writing straight away
    assert subprocess.run([sys.executable, "-c", HOLDER, str(db), "0", "rw"], capture_output=True).returncode == 0


def test_open_db_times_out_with_the_file_named(db):
    holder = _hold(db, 8.0)
    try:
        for read_only in (True, False):
            t = time.monotonic()
            with pytest.raises(StoreLocked) as e:
                with store.open_db(db, read_only=read_only, timeout_s=0.6):
                    pass
            took = time.monotonic() - t
            assert 0.55 <= took < 3.0, took
            assert str(db) in str(e.value) and "still locked after 0.6 s" in str(e.value)
    finally:
        holder.kill()
        holder.wait()


def test_the_env_variable_sets_the_default_wait(db, monkeypatch):
    holder = _hold(db, 8.0)
    try:
        monkeypatch.setenv("CALLQA_LOCK_TIMEOUT_S", "0.3")
        t = time.monotonic()
        with pytest.raises(StoreLocked):
            with store.open_db(db, read_only=True):
                pass
        assert time.monotonic() - t < 2.5
        monkeypatch.setenv("CALLQA_LOCK_TIMEOUT_S", "soon")
        with pytest.raises(StoreError, match="CALLQA_LOCK_TIMEOUT_S"):
            with store.open_db(db, read_only=True):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_other_errors_are_not_retried(tmp_path):
    bad = tmp_path / "notes.duckdb"
    bad.write_bytes(b"this is not a database file at all" * 200)
    t = time.monotonic()
    with pytest.raises(StoreError) as e:
        with store.open_db(bad, timeout_s=20):
            pass
    assert time.monotonic() - t < 2.0, "a corrupt file was retried like a lock"
    assert not isinstance(e.value, StoreLocked) and str(bad) in str(e.value)
    with pytest.raises(StoreError, match="does not exist"):
        with store.open_db(tmp_path / "missing.duckdb", read_only=True, timeout_s=20):
            pass


def test_reopening_a_current_schema_writes_nothing(db):
    before = (db.stat().st_size, db.stat().st_mtime_ns)
    with store.open_db(db) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (store.SCHEMA_VERSION,)
    assert (db.stat().st_size, db.stat().st_mtime_ns) == before
    assert not Path(f"{db}.wal").exists()


def test_writers_in_one_process_take_turns(db):
    # threads share DuckDB's instance, so the file lock alone would let both in
    inside: list[tuple[str, float, float]] = []

    def writer(name: str) -> None:
        with store.open_db(db, timeout_s=20) as con:
            t = time.monotonic()
            con.execute("SELECT 1").fetchone()
            time.sleep(0.4)
            inside.append((name, t, time.monotonic()))

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    spans = sorted(inside, key=lambda s: s[1])
    assert len(spans) == 3
    assert all(later[1] >= earlier[2] for earlier, later in zip(spans, spans[1:])), spans


def test_sandbox_waits_for_the_lock_and_keeps_its_protections(db):
    holder = _hold(db, 1.0)
    t = time.monotonic()
    res = query_read_only(db, "SELECT count(*) AS n FROM calls")
    assert res.rows == [(0,)] and time.monotonic() - t >= 0.5
    holder.wait()
    holder = _hold(db, 1.0)
    con = connect_analyst(db, timeout_s=20)
    try:
        holder.wait()
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (False,)
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE x AS SELECT 1")  # attached READ_ONLY
    finally:
        con.close()
    holder = _hold(db, 8.0)
    try:
        with pytest.raises(StoreLocked, match="still locked"):
            connect_analyst(db, timeout_s=0.3)
    finally:
        holder.kill()
        holder.wait()


def test_sandbox_waits_for_a_writer_in_the_same_process(db):
    # a web server: one request writes (store.open_db) while another runs analyst SQL
    opened, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.open_db(db, timeout_s=20) as con:
            con.execute("SELECT 1").fetchone()
            opened.set()
            release.wait(10)

    th = threading.Thread(target=writer)
    th.start()
    assert opened.wait(10)
    threading.Timer(0.6, release.set).start()
    t = time.monotonic()
    assert query_read_only(db, "SELECT count(*) FROM calls").rows == [(0,)]
    assert time.monotonic() - t >= 0.4
    th.join()


BATCH_LOCKER = r"""
import sys, time
from callqa.pipeline import store
with store.batch_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_a_second_batch_is_refused_and_a_killed_one_leaves_no_lock(db):
    p = subprocess.Popen([sys.executable, "-c", BATCH_LOCKER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"another batch is running on this database \\(pid {p.pid}\\)"):
            with store.batch_lock(db):
                pass
    finally:
        p.kill()  # SIGKILL: the kernel drops the flock with the process
        p.wait()
    with store.batch_lock(db):
        pass


# A plain read-only open from another process, tried for up to 5 s: with one worker the batch writes call
# N (a commit of well under a second) while call N+1 is processed, so one attempt can meet that commit
# (seen in CI under load); a batch holding the file through a call would fail all of them.
PEEK = r"""
import sys, time, duckdb
for _ in range(50):
    try:
        duckdb.connect(sys.argv[1], read_only=True).close()
        sys.exit(0)
    except duckdb.IOException:
        time.sleep(0.1)
sys.exit(1)
"""


def test_the_batch_does_not_hold_the_file_while_a_call_is_processed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from callqa.cli import app
    from fake_pipeline import use_fake_pipeline, write_recordings

    calls, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    names = [f"call_{i}.wav" for i in range(3)]
    write_recordings(calls, names)
    peeks: list[int] = []

    def open_from_another_process(source) -> None:
        # no lock-retrying open here (PEEK tries a plain one for 5 s): it fails if the writer holds the file
        peeks.append(subprocess.run([sys.executable, "-c", PEEK, str(db)], capture_output=True).returncode)

    use_fake_pipeline(monkeypatch, on_call=open_from_another_process)
    result = CliRunner().invoke(app, ["run", str(calls), "--db", str(db), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert peeks == [0, 0, 0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert sorted(r[0] for r in con.execute("SELECT file_name FROM calls").fetchall()) == names
        assert con.execute("SELECT status, n_processed FROM runs").fetchall() == [("completed", 3)]
    finally:
        con.close()


# ---- the real batch with a client beside it -----------------------------------------------------


def _bench():
    spec = importlib.util.spec_from_file_location("concurrent_batch", REPO / "bench" / "concurrent_batch.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_the_bench_web_client_reviews_once_and_counts_a_held_lock_as_failed(tmp_path, monkeypatch):
    # the bench's client and `callqa serve` against a small stored database, no batch: what the slow
    # test relies on (login, CSRF, one review per criterion, the checks) and that a lock is not "answered"
    import httpx

    from qa_data import build_db_with_recordings

    bench = _bench()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    db, results = build_db_with_recordings(tmp_path, max_s=3.0)
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("{}\n")
    env = {**bench.batch_env(tmp_path), "CALLQA_LOCK_TIMEOUT_S": "0.5"}
    with store.open_db(db, read_only=True) as con:
        # the queue's calls' criteria: what the client can review, each once
        (reviewable,) = con.execute(
            """SELECT count(*) FROM criterion_results r JOIN current_scores s
               USING (call_id, scorecard_id, scorecard_version)
               WHERE r.call_id IN (SELECT call_id FROM flagged_queue)"""
        ).fetchone()
    assert reviewable >= 2
    sc = bench.Scenario()
    stop = threading.Event()
    with bench.serving(db, cfg, tmp_path, env) as (base, password, _):
        client = threading.Thread(target=bench._web_client, args=(base, password, 0.1, stop, sc))
        client.start()
        # a review of each criterion of the queue's calls, then only reads
        deadline = time.monotonic() + 90
        while len(sc.web_reviews) < reviewable and time.monotonic() < deadline and client.is_alive():
            time.sleep(0.1)
        reads = sum(r.kind == "call" for r in sc.requests)
        while sum(r.kind == "call" for r in sc.requests) < reads + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        client.join(timeout=60)
        kinds = collections.Counter(r.kind for r in sc.requests)
        assert all(r.ok for r in sc.requests), [r for r in sc.requests if not r.ok][:3]
        assert kinds["login"] == 2 and kinds["post"] == reviewable and kinds["call"] >= reviewable + 2, kinds
        with httpx.Client(base_url=base, timeout=30) as http:
            assert all(r.ok for r in bench.log_in(http, password))
            holder = _hold(db, 8.0)  # another process keeps the file past the server's 0.5 s wait
            try:
                busy, r = bench._http(http, "queue", "GET", "/queue")
            finally:
                holder.kill()
                holder.wait()
    assert r is not None and r.status_code == 503 and not busy.ok and busy.lock_error, (busy, r and r.text[:300])
    expected = {c.source.path: c.source.call_id for c in results}
    assert bench.problems(db, sc, expected, cfg, tmp_path, audit=False) == []  # the slow test runs the audit
    stored = bench.stored_reviews(db)
    assert sorted((c, k, t) for _, c, k, _, t in stored) == sorted(sc.web_reviews)
    assert len({(c, k) for c, k, _ in sc.web_reviews}) == len(sc.web_reviews)  # never the same criterion twice
    # and the checks do catch a review answered ok but never stored
    sc.reviews_sent.append("web probe 999")
    assert any("not stored once" in p for p in bench.problems(db, sc, expected, cfg, tmp_path, audit=False))


@pytest.mark.slow
def test_cli_and_web_clients_work_while_a_real_batch_writes(tmp_path, asr_model_settings, whisper_asr):
    # whisper_asr: the session's model cache is assembled before the batch subprocess starts. One batch
    # serves both clients (the CLI one and the web one), so the acceptance costs one batch run.
    bench = _bench()
    calls, db = tmp_path / "calls", tmp_path / "qa.duckdb"
    expected = bench.make_calls(calls, 20)
    assert len(set(expected.values())) == 20
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"cache_dir": str(asr_model_settings.cache_dir)}}))

    sc = bench.run_scenario(calls, db, cfg, tmp_path, interval=0.5, mode="both")
    assert sc.batch_rc == 0, sc.batch_log[-3000:]
    print("\n".join(bench.report(sc)))

    # every request answered (web: 2xx/3xx with no lock message), none with a lock error
    failed = [(r.kind, round(r.latency_s, 1), r.error[-300:]) for r in sc.requests if not r.ok]
    assert not failed, failed[:5]
    assert not any(r.lock_error for r in sc.requests)
    kinds = collections.Counter(r.kind for r in sc.requests)
    assert kinds["sql"] >= 5 and kinds["flagged"] >= 5 and kinds["review"] >= 3, kinds
    assert kinds["login"] == 2 and kinds["queue"] >= 5 and kinds["call"] >= 3 and kinds["post"] >= 3, kinds
    assert "Traceback" not in sc.server_log, sc.server_log[-3000:]

    final = bench.final_counts(db)
    # every call stored once, whole
    assert sorted(final) == sorted(expected.values())
    assert all(final[c]["utterances"] > 0 and final[c]["criteria"] > 0 and final[c]["scores"] > 0 for c in final)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT call_id) FROM calls").fetchone() == (20, 20)
        assert con.execute("SELECT count(*) FROM failures").fetchone() == (0,)
        assert con.execute("SELECT status, n_processed FROM runs").fetchall() == [("completed", 20)]
    finally:
        con.close()
    reviews = bench.stored_reviews(db)

    # counts only grow, and no read ever saw part of a call: each call's rows as they are at the end
    seen: set[str] = set()
    growth = []
    for snap in sc.snapshots:
        ids = {r["call_id"] for r in snap}
        assert seen <= ids, "a stored call disappeared from a later read"
        seen = ids
        growth.append(len(ids))
        for r in snap:
            got = {k: r[k] for k in bench.COUNT_COLUMNS}
            assert got == {k: final[r["call_id"]][k] for k in bench.COUNT_COLUMNS}, ("half a call", r)
    assert growth[0] < 20 and max(growth) >= 2, f"the client never read while the batch wrote: {growth}"

    # every review stored exactly once (the CLI's and the web's, in one chain without a gap), each web
    # review on the call and criterion it was posted for, by the logged-in reviewer
    assert collections.Counter(t for *_, t in reviews) == collections.Counter(sc.reviews_sent)
    assert all(n == 1 for n in collections.Counter(sc.reviews_sent).values())
    assert [s for s, *_ in reviews] == list(range(1, len(reviews) + 1))
    by_tag = {t: (c, k, who) for _, c, k, who, t in reviews}
    assert all(by_tag[t] == (c, k, bench.WEB_USER) for c, k, t in sc.web_reviews)
    assert len({(c, k) for c, k, _ in sc.web_reviews}) == len(sc.web_reviews)
    # the whole check, as the bench prints it (the audit chain and its head file intact included)
    assert bench.problems(db, sc, expected, cfg, tmp_path) == []
