"""Reading and reviewing while the nightly batch writes (issue 17): latency, lock errors, throughput.

A real `callqa run` over N short synthesised calls (piper TTS, 8 kHz µ-law stereo) runs in a subprocess
while a client, every `--interval` seconds, runs `callqa sql` (one read of every stored call with its
row counts), `callqa flagged`, `callqa review` on a stored call, and the same sandbox count from its
own process ("inproc": the wait for the lock without a CLI's start-up). It prints p50/p95/max latency per
request kind, the failed requests and lock errors among them, and the batch's throughput against the
same batch without the client (run after it; `--no-baseline` skips it). tests/test_concurrency.py runs
the same scenario and checks its invariants (no lock error, counts only grow, no half call, each review stored once).

    .venv/bin/python bench/concurrent_batch.py --calls 20            # client + baseline
    .venv/bin/python bench/concurrent_batch.py --open-cost 200       # open+write+close per call vs held

The web mode (`--mode web`: the workspace's queue and a call page over HTTP while the batch runs) needs
`callqa serve` (issue 17, point 1); until the checkout has it the bench says so and exits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

AGENTS = ["Sarah", "Daniel", "Priya", "Tom", "Anna", "Marco", "Leila", "Owen", "Grace", "Ivan"]
COMPANIES = ["Acme Energy", "Brightline", "Parcelway", "Northwind"]
ISSUES = [
    "my bill is twice what I normally pay",
    "I cannot log in to my account",
    "my parcel never arrived",
    "I need to change my address",
    "I am still waiting for my refund",
    "the engineer did not turn up",
]
REPLIES = [
    "let me take a look at that for you",
    "I will send you a reset link now",
    "I can see it at the depot, it arrives tomorrow",
    "no problem, what is the new postcode",
]

# one read: every stored call with the counts of its rows, so a half-written call would show
SNAPSHOT_SQL = """SELECT c.call_id,
  (SELECT count(*) FROM utterances u WHERE u.call_id = c.call_id) AS utterances,
  (SELECT count(*) FROM words w WHERE w.call_id = c.call_id) AS words,
  (SELECT count(*) FROM events e WHERE e.call_id = c.call_id) AS events,
  (SELECT count(*) FROM criterion_results r WHERE r.call_id = c.call_id) AS criteria,
  (SELECT count(*) FROM call_scores s WHERE s.call_id = c.call_id) AS scores,
  (SELECT min(criterion_id) FROM criterion_results r WHERE r.call_id = c.call_id) AS criterion
FROM calls c ORDER BY c.call_id"""
COUNT_COLUMNS = ("utterances", "words", "events", "criteria", "scores")


def make_calls(out_dir: Path, n: int) -> dict[str, str]:
    """n distinct short calls (three turns, ~8-12 s); {file name: call_id}."""
    from callqa.synth.mix import render_call
    from callqa.synth.script import CallScript, Turn

    out_dir.mkdir(parents=True, exist_ok=True)
    ids = {}
    for i in range(n):
        agent, company = AGENTS[i % len(AGENTS)], COMPANIES[i % len(COMPANIES)]
        turns = [
            Turn("agent", f"Thank you for calling {company}, my name is {agent}, how can I help?", gap_before_s=0.3),
            Turn("customer", f"Hi {agent}, {ISSUES[i % len(ISSUES)]}, reference {i + 1}."),
            Turn("agent", f"I am sorry about that, {REPLIES[i % len(REPLIES)]}."),
        ]
        path = out_dir / f"call_{i:02d}.wav"
        script = CallScript(turns, voices={"agent": "joe_high", "customer": "joe"})
        render_call(script, path, sample_rate=8000, stereo=True, codec="pcm_mulaw", telephone=True, write_truth=False)
        ids[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return ids


def callqa_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("callqa")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "callqa.cli"]


def batch_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(work / "prefect-home")  # its own temporary API server, never the caller's
    env.pop("PREFECT_API_URL", None)
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("XDG_CONFIG_HOME", str(work / "config-home"))  # the audit key, private to the run
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Request:
    kind: str
    latency_s: float
    ok: bool
    error: str = ""

    @property
    def lock_error(self) -> bool:
        return "lock" in self.error.lower()


@dataclass
class Scenario:
    requests: list[Request] = field(default_factory=list)
    snapshots: list[list[dict]] = field(default_factory=list)  # each `callqa sql` answer, in order
    reviews_sent: list[str] = field(default_factory=list)  # the comment tag of each review answered ok
    batch_rc: int | None = None
    batch_wall_s: float = 0.0
    batch_log: str = ""


def _timed(kind: str, args: list[str], env: dict[str, str]) -> tuple[Request, str]:
    t = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    req = Request(kind, time.perf_counter() - t, p.returncode == 0, "" if p.returncode == 0 else p.stderr.strip())
    return req, p.stdout


def _in_process_count(db: Path) -> Request:
    """The sandbox's count from this process: the lock wait without a CLI's Python start-up (~0.6 s)."""
    from callqa.pipeline.types import CallQAError
    from callqa.workspace.sandbox import query_read_only

    t = time.perf_counter()
    try:
        query_read_only(db, "SELECT count(*) FROM calls")
    except CallQAError as e:
        return Request("inproc", time.perf_counter() - t, False, str(e))
    return Request("inproc", time.perf_counter() - t, True)


def _client(db: Path, cfg: Path, env: dict[str, str], interval: float, stop: threading.Event, out: Scenario) -> None:
    cli = callqa_cmd()
    n = 0
    while not stop.is_set():
        t0 = time.monotonic()
        req, stdout = _timed("sql", [*cli, "sql", "--db", str(db), "-f", "json", SNAPSHOT_SQL], env)
        out.requests.append(req)
        rows: list[dict] = json.loads(stdout) if req.ok else []
        if req.ok:
            out.snapshots.append(rows)
        req, _ = _timed("flagged", [*cli, "flagged", "--db", str(db), "--limit", "20"], env)
        out.requests.append(req)
        out.requests.append(_in_process_count(db))
        target = next((r for r in rows if r["criterion"]), None)
        if target is not None:
            n += 1
            tag = f"probe {n}"
            args = [*cli, "review", target["call_id"], "--criterion", target["criterion"], "--verdict", "pass"]
            args += ["--reviewer", "bench", "--comment", tag, "--db", str(db), "--config", str(cfg)]
            req, _ = _timed("review", args, env)
            out.requests.append(req)
            if req.ok:
                out.reviews_sent.append(tag)
        stop.wait(max(0.0, interval - (time.monotonic() - t0)))


def run_scenario(
    calls: Path, db: Path, cfg: Path, work: Path, *, client: bool = True, interval: float = 0.5, workers: int = 1
) -> Scenario:
    """`callqa run` in a subprocess, with the client loop alongside it until the batch ends."""
    from callqa.pipeline import store

    env = batch_env(work)
    store.connect(db).close()  # an empty, migrated database: the client has something to read from the start
    out = Scenario()
    log = work / f"batch-{db.stem}.log"
    stop = threading.Event()
    thread = threading.Thread(target=_client, args=(db, cfg, env, interval, stop, out), daemon=True)
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*callqa_cmd(), "run", str(calls), "--db", str(db), "--config", str(cfg), "--workers", str(workers)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if client:
            thread.start()
        try:
            out.batch_rc = proc.wait(timeout=1800)
        finally:
            if proc.poll() is None:
                proc.kill()
            out.batch_wall_s = time.perf_counter() - t
            stop.set()
            if client:
                thread.join(timeout=180)
    out.batch_log = log.read_text(errors="replace")
    return out


def final_counts(db: Path) -> dict[str, dict]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(SNAPSHOT_SQL)
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
    finally:
        con.close()


def run_stats(db: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        wall, n, audio = con.execute(
            "SELECT wall_s, n_processed, audio_s FROM runs WHERE flow = 'nightly_batch' ORDER BY started_at DESC"
        ).fetchone()
    finally:
        con.close()
    return {"wall_s": wall, "processed": n, "audio_s": audio}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def report(sc: Scenario) -> list[str]:
    lines = [f"{'request':<8} {'n':>4} {'failed':>6} {'lock':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
    for kind in ("sql", "flagged", "review", "inproc"):
        rs = [r for r in sc.requests if r.kind == kind]
        if not rs:
            continue
        lat = [r.latency_s * 1000 for r in rs]
        lines.append(
            f"{kind:<8} {len(rs):>4} {sum(not r.ok for r in rs):>6} {sum(r.lock_error for r in rs):>5} "
            f"{statistics.median(lat):>8.0f} {_pct(lat, 0.95):>8.0f} {max(lat):>8.0f}"
        )
    return lines


# ---------------------------------------------------------------------------------------------
# the cost of opening per commit


def open_cost(n: int) -> None:
    """open+write+close per call against one connection held for all writes (today's writer)."""
    from callqa.pipeline import store
    from callqa.pipeline.scoring import ScoringContext, load_scorecard, score_call
    from callqa.pipeline.types import CallResult, CallSource, Event, RoleDecision, Utterance, Word

    card = load_scorecard("inbound_service_en")

    def result(i: int) -> CallResult:  # ~a 90 s call: 30 turns, 300 words
        cid = hashlib.sha256(f"cost-{i}".encode()).hexdigest()
        utts = []
        for u in range(30):
            ws = [Word(u * 3 + k * 0.2, u * 3 + k * 0.2 + 0.15, f"word{k}", 0.9, u % 2) for k in range(10)]
            text = " ".join(w.text for w in ws)
            utts.append(Utterance(u, f"ch{u % 2}", u * 3.0, u * 3 + 2.0, text, ws, channel=u % 2))
        ev = Event("greeting", 0.5, 1.2, "ch0", "agent", "Thank you", 0.9, "scripts/1", {}, event_id=cid[:8])
        return CallResult(
            source=CallSource(f"/bench/{i}.wav", cid, 10, {}),
            duration_s=90.0,
            channels=2,
            sample_rate=8000,
            codec="pcm_mulaw",
            language="en",
            language_probability=0.99,
            utterances=utts,
            events=[ev],
            metrics={"talk_s": 60.0},
            scores=[score_call(card, ScoringContext([ev], 90.0, True))],
            models={},
            roles=RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map"),
            timings={},
        )

    results = [result(i) for i in range(n)]
    work = Path(tempfile.mkdtemp(prefix="callqa-open-cost-"))
    print(f"{n} calls of 300 words; ms per call (write, or open+write+close), and a reader's open+count after each")
    variants: list[tuple[str, int | None | str]] = [
        ("held (today)", "held"),
        ("per call, checkpoint every close", None),
        ("per call, checkpoint at WAL 1 MB", 1 << 20),
        ("per call, checkpoint at WAL 4 MB", 4 << 20),
    ]
    try:
        for name, how in variants:
            db = work / f"{len(name)}-{abs(hash(name))}.duckdb"
            store.connect(db).close()
            writes, reads = [], []
            held = store.connect(db) if how == "held" else None
            for r in results:
                t = time.perf_counter()
                if held is not None:
                    store.write_call(held, r, None, "bench")
                else:
                    wal = how if isinstance(how, int) else None
                    with store.open_db(db, checkpoint_wal_bytes=wal) as con:
                        store.write_call(con, r, None, "bench")
                writes.append((time.perf_counter() - t) * 1000)
                if held is None:
                    t = time.perf_counter()
                    with store.open_db(db, read_only=True) as con:
                        con.execute("SELECT count(*) FROM calls").fetchone()
                    reads.append((time.perf_counter() - t) * 1000)
            if held is not None:
                held.close()
            read = f"reader p50 {statistics.median(reads):5.1f} p95 {_pct(reads, 0.95):5.1f}" if reads else ""
            print(
                f"{name:<34} p50 {statistics.median(writes):6.1f}  p95 {_pct(writes, 0.95):6.1f}  "
                f"max {max(writes):6.1f}  file {db.stat().st_size / 1e6:5.1f} MB  {read}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--no-baseline", action="store_true", help="skip the batch without the client")
    ap.add_argument("--mode", choices=["cli", "web"], default="cli")
    ap.add_argument("--open-cost", type=int, metavar="N", help="only measure open+write+close on N calls")
    ap.add_argument("--work", type=Path, help="keep the calls and databases here")
    a = ap.parse_args()
    if a.open_cost:
        open_cost(a.open_cost)
        return
    if a.mode == "web":
        has_serve = subprocess.run([*callqa_cmd(), "serve", "--help"], capture_output=True).returncode == 0
        if not has_serve:
            sys.exit("--mode web needs `callqa serve` (issue 17, point 1), which this checkout does not have yet")
        sys.exit("--mode web: `callqa serve` exists now; its queue and call-page requests are still to be added here")
    work = a.work or Path(tempfile.mkdtemp(prefix="callqa-concurrent-"))
    work.mkdir(parents=True, exist_ok=True)
    calls = work / "calls"
    t = time.perf_counter()
    make_calls(calls, a.calls)
    print(f"{a.calls} calls synthesised in {time.perf_counter() - t:.1f} s under {work}")
    cfg = work / "settings.yaml"
    cfg.write_text("{}\n")
    sc = run_scenario(calls, work / "with_client.duckdb", cfg, work, interval=a.interval, workers=a.workers)
    if sc.batch_rc != 0:
        sys.exit(f"the batch failed ({sc.batch_rc}):\n{sc.batch_log[-2000:]}")
    stats = run_stats(work / "with_client.duckdb")
    print("\n".join(report(sc)))
    print(f"reviews stored: {len(sc.reviews_sent)}; snapshots read: {len(sc.snapshots)}")
    print(
        f"batch with client: {stats['processed']} calls in {stats['wall_s']:.1f} s "
        f"({stats['audio_s'] / stats['wall_s']:.2f}× real time)"
    )
    if not a.no_baseline:
        base = run_scenario(calls, work / "alone.duckdb", cfg, work, client=False, workers=a.workers)
        if base.batch_rc != 0:
            sys.exit(f"the baseline batch failed ({base.batch_rc}):\n{base.batch_log[-2000:]}")
        b = run_stats(work / "alone.duckdb")
        print(
            f"batch alone:       {b['processed']} calls in {b['wall_s']:.1f} s "
            f"({b['audio_s'] / b['wall_s']:.2f}× real time); with the client it took "
            f"{(stats['wall_s'] / b['wall_s'] - 1) * 100:+.0f} %"
        )


if __name__ == "__main__":
    main()
