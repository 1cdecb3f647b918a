"""Reading, reviewing and serving while the nightly batch writes (issue 17): latency, lock errors, throughput.

A real `callqa run` over N short synthesised calls (piper TTS, 8 kHz µ-law stereo) runs in a subprocess
while clients work beside it until it ends:
- cli (`--mode cli`): every `--interval` seconds `callqa sql` (one read of every stored call with its
  row counts), `callqa flagged`, `callqa review` on a stored call, and the same sandbox count from this
  process ("inproc": the wait for the lock without a CLI's start-up);
- web (`--mode web`): a real `callqa serve` subprocess on the same database (a reviewer made by
  `callqa users add`) and an HTTP client that logs in, then every `--interval` seconds GETs the queue,
  GETs the page of a stored call and POSTs a review (the page's CSRF token) of a criterion it has not
  reviewed yet, preferring calls it has not reviewed at all;
- both (`--mode both`): the two clients at once, on one batch.
It prints p50/p95/max latency per request kind, the failed requests and lock errors among them, the final
checks (every call stored once, every review answered ok stored exactly once, the audit chain intact), and
the batch's throughput against the same batch without a client (run after it; `--no-baseline` skips it).
A web request "answers" when it gets a 2xx/3xx without a lock message in the page: a 503 is how the app
reports a lock it waited out in vain (StoreLocked), so it counts as a failed request and a lock error.
tests/test_concurrency.py runs the `both` scenario and checks its invariants.

    .venv/bin/python bench/concurrent_batch.py --calls 20 --mode both  # both clients + baseline
    .venv/bin/python bench/concurrent_batch.py --open-cost 200         # open+write+close per call vs held
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

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
WEB_USER = "bench-reviewer"
WEB_TAG = "web probe"  # the comment of the web client's reviews: "web probe 3"; the CLI's are "probe 3"
# what a page says when the database stayed locked (StoreLocked) or DuckDB's own lock message leaked
LOCK_TEXT = re.compile(r"still locked|conflicting lock|could not set lock", re.IGNORECASE)
CALL_LINK = re.compile(r'href="/calls/([0-9a-f]{64})"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REVIEW_FORM = re.compile(r'<form[^>]*action="/calls/[^"]+/review"[^>]*>(.*?)</form>', re.DOTALL)


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
    web_reviews: list[tuple[str, str, str]] = field(default_factory=list)  # (call, criterion, tag) answered ok
    server_log: str = ""
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


# ---------------------------------------------------------------------------------------------
# the web client: `callqa serve` in its own process, an HTTP client beside the batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: Path, cfg: Path, work: Path, env: dict[str, str]) -> Iterator[tuple[str, str, Path]]:
    """`callqa serve` on db with a reviewer added by `callqa users add`: (base URL, password, log file)."""
    import httpx

    cli = callqa_cmd()
    password = secrets.token_urlsafe(18)
    pw_file = work / "web-password"
    pw_file.write_text(password + "\n")
    pw_file.chmod(0o600)
    add = [*cli, "users", "add", WEB_USER, "--role", "reviewer", "--password-file", str(pw_file), "--db", str(db)]
    p = subprocess.run(add, capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"callqa users add failed: {p.stdout}{p.stderr}")
    port = _free_port()
    log = work / f"serve-{db.stem}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*cli, "serve", "--db", str(db), "--config", str(cfg), "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"callqa serve exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"callqa serve did not answer within 90 s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield base, password, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _page_error(status: int, text: str) -> str:
    """'' when the response answered (2xx/3xx, no lock message in it), else what went wrong."""
    m = re.search(r'<p class="error">(.*?)</p>', text, re.DOTALL)
    message = html.unescape(m.group(1)).strip() if m else text[:300].strip()
    if status >= 400:
        return f"HTTP {status}: {message}"
    lock = LOCK_TEXT.search(text)
    return f"HTTP {status} with a lock message: {text[max(0, lock.start() - 80) : lock.end() + 80]}" if lock else ""


def _http(client: httpx.Client, kind: str, method: str, url: str, **kw) -> tuple[Request, httpx.Response | None]:
    import httpx

    t = time.perf_counter()
    try:
        r = client.request(method, url, **kw)
    except httpx.HTTPError as e:  # a timeout or a dropped connection: the request did not answer
        return Request(kind, time.perf_counter() - t, False, f"{type(e).__name__}: {e}"), None
    err = _page_error(r.status_code, r.text)
    return Request(kind, time.perf_counter() - t, not err, err), r


def _review_forms(page: str) -> list[tuple[str, str]]:
    """(criterion_id, scorecard_id) of each review form on a call page."""
    out = []
    for body in REVIEW_FORM.findall(page):
        crit = re.search(r'name="criterion_id" value="([^"]*)"', body)
        card = re.search(r'name="scorecard_id" value="([^"]*)"', body)
        if crit and card:
            out.append((html.unescape(crit.group(1)), html.unescape(card.group(1))))
    return out


def log_in(http: httpx.Client, password: str) -> list[Request]:
    """The login page's GET and the login POST (its CSRF token), as the web client's first requests."""
    req, r = _http(http, "login", "GET", "/login")
    token = CSRF.search(r.text) if r is not None else None
    form = {"username": WEB_USER, "password": password, "csrf_token": token.group(1) if token else ""}
    post, r = _http(http, "login", "POST", "/login", data=form)
    if r is not None and r.status_code != 303:
        post = Request("login", post.latency_s, False, post.error or f"HTTP {r.status_code}: login refused")
    return [req, post]


def _web_client(base: str, password: str, interval: float, stop: threading.Event, out: Scenario) -> None:
    import httpx

    # the server's lock wait is 30 s (database.lock_timeout_s): a client timeout above it sees its 503
    with httpx.Client(base_url=base, timeout=90, follow_redirects=False) as http:
        login = log_in(http, password)
        out.requests += login
        if not login[-1].ok:
            return
        known: list[str] = []  # calls seen in the queue, in the order first seen
        reviewed: set[tuple[str, str]] = set()  # (call, criterion) the client has posted a review of
        touched: set[str] = set()  # calls it has posted any review of
        exhausted: set[str] = set()  # calls whose every criterion it has reviewed
        n = turn = 0
        while not stop.is_set():
            t0 = time.monotonic()
            req, r = _http(http, "queue", "GET", "/queue")
            out.requests.append(req)
            if r is not None and req.ok:
                known += [c for c in dict.fromkeys(CALL_LINK.findall(r.text)) if c not in known]
            if known:
                # a call it has not reviewed yet, else the next call with a criterion left to review
                untouched = [c for c in known if c not in touched]
                pool = untouched[:1] or [c for c in known if c not in exhausted] or known
                cid = pool[turn % len(pool)]
                turn += 1
                req, r = _http(http, "call", "GET", f"/calls/{cid}")
                out.requests.append(req)
                token = CSRF.search(r.text) if r is not None and req.ok else None
                pending = [f for f in _review_forms(r.text) if (cid, f[0]) not in reviewed] if token else []
                if token and not pending:
                    exhausted.add(cid)
                if token and pending:
                    crit, card = pending[0]
                    n += 1
                    tag = f"{WEB_TAG} {n}"
                    form = {"criterion_id": crit, "scorecard_id": card, "action": "agree", "reason": tag}
                    req, r = _http(http, "post", "POST", f"/calls/{cid}/review", data={**form, "csrf_token": token[1]})
                    if req.ok and r is not None and "recorded" not in r.headers.get("location", ""):
                        req = Request("post", req.latency_s, False, f"HTTP {r.status_code}: no review recorded")
                    out.requests.append(req)
                    reviewed.add((cid, crit))  # tried once: never again, so a retry cannot double it
                    touched.add(cid)
                    if req.ok:
                        out.web_reviews.append((cid, crit, tag))
                        out.reviews_sent.append(tag)
            stop.wait(max(0.0, interval - (time.monotonic() - t0)))


MODES = ("cli", "web", "both")


def run_scenario(
    calls: Path,
    db: Path,
    cfg: Path,
    work: Path,
    *,
    client: bool = True,
    interval: float = 0.5,
    workers: int = 1,
    mode: str = "cli",
) -> Scenario:
    """`callqa run` in a subprocess, with the clients of `mode` alongside it until the batch ends."""
    from callqa.pipeline import store

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    env = batch_env(work)
    store.connect(db).close()  # an empty, migrated database: the client has something to read from the start
    out = Scenario()
    log = work / f"batch-{db.stem}.log"
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        threads = []
        if client and mode in ("cli", "both"):
            threads.append(threading.Thread(target=_client, args=(db, cfg, env, interval, stop, out), daemon=True))
        if client and mode in ("web", "both"):
            # the server starts (and migrates its users table) before the batch, as a workspace left running
            base, password, server_log = stack.enter_context(serving(db, cfg, work, env))
            stack.callback(lambda: setattr(out, "server_log", server_log.read_text(errors="replace")))
            threads.append(
                threading.Thread(target=_web_client, args=(base, password, interval, stop, out), daemon=True)
            )
        t = time.perf_counter()
        with open(log, "w") as fh:
            proc = subprocess.Popen(
                [*callqa_cmd(), "run", str(calls), "--db", str(db), "--config", str(cfg), "--workers", str(workers)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
            for th in threads:
                th.start()
            try:
                out.batch_rc = proc.wait(timeout=1800)
            finally:
                if proc.poll() is None:
                    proc.kill()
                out.batch_wall_s = time.perf_counter() - t
                stop.set()
                for th in threads:
                    th.join(timeout=180)
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


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def stored_reviews(db: Path) -> list[tuple[int, str, str, str, str]]:
    """(seq, call_id, criterion_id, reviewer, comment) of every stored review, in chain order."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        q = "SELECT seq, call_id, criterion_id, reviewer, comment FROM reviews ORDER BY seq"
        return [tuple(r) for r in con.execute(q).fetchall()]
    finally:
        con.close()


def problems(db: Path, sc: Scenario, expected: dict[str, str], cfg: Path, work: Path, audit: bool = True) -> list[str]:
    """What the final checks found wrong: calls not stored exactly once, reviews lost or doubled, failed
    requests, a broken audit chain (`callqa audit`, unless audit=False); [] when the scenario held."""
    import duckdb

    found = []
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT call_id FROM calls").fetchall()]
    finally:
        con.close()
    doubled = [c for c, k in collections.Counter(ids).items() if k > 1]
    if doubled or sorted(ids) != sorted(expected.values()):
        found.append(f"calls: {len(ids)} rows, {len(set(ids))} distinct, {len(expected)} expected, doubled {doubled}")
    reviews = stored_reviews(db)
    stored, sent = collections.Counter(r[4] for r in reviews), collections.Counter(sc.reviews_sent)
    if stored != sent or any(k > 1 for k in sent.values()):
        lost, extra = sent - stored, stored - sent
        found.append(f"reviews: {sum(lost.values())} answered ok but not stored once, {sum(extra.values())} extra")
    by_tag = {r[4]: r for r in reviews}
    wrong = [t for c, k, t in sc.web_reviews if t in by_tag and by_tag[t][1:4] != (c, k, WEB_USER)]
    if wrong:
        found.append(f"web reviews stored on another call, criterion or reviewer: {wrong[:3]}")
    if [r[0] for r in reviews] != list(range(1, len(reviews) + 1)):
        found.append("the review chain's seq has a gap or a repeat")
    failed = [r for r in sc.requests if not r.ok]
    if failed:
        found.append(
            f"{len(failed)} requests failed, {sum(r.lock_error for r in failed)} with a lock error: {failed[:2]}"
        )
    if audit:
        p = subprocess.run(
            [*callqa_cmd(), "audit", "--db", str(db), "--config", str(cfg)],
            capture_output=True,
            text=True,
            env=batch_env(work),
        )
        if p.returncode != 0:
            found.append(f"callqa audit: {p.stdout}{p.stderr}")
    return found


def report(sc: Scenario) -> list[str]:
    lines = [f"{'request':<8} {'n':>4} {'failed':>6} {'lock':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
    for kind in ("sql", "flagged", "review", "inproc", "login", "queue", "call", "post"):
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
    ap.add_argument("--mode", choices=MODES, default="cli", help="cli, web, or both clients at once")
    ap.add_argument("--open-cost", type=int, metavar="N", help="only measure open+write+close on N calls")
    ap.add_argument("--work", type=Path, help="keep the calls and databases here")
    a = ap.parse_args()
    if a.open_cost:
        open_cost(a.open_cost)
        return
    work = a.work or Path(tempfile.mkdtemp(prefix="callqa-concurrent-"))
    work.mkdir(parents=True, exist_ok=True)
    calls = work / "calls"
    t = time.perf_counter()
    expected = make_calls(calls, a.calls)
    print(f"{a.calls} calls synthesised in {time.perf_counter() - t:.1f} s under {work}")
    cfg = work / "settings.yaml"
    cfg.write_text("{}\n")
    db = work / "with_client.duckdb"
    print(f"load average before: {_loadavg()}")
    sc = run_scenario(calls, db, cfg, work, interval=a.interval, workers=a.workers, mode=a.mode)
    if sc.batch_rc != 0:
        sys.exit(f"the batch failed ({sc.batch_rc}):\n{sc.batch_log[-2000:]}")
    stats = run_stats(db)
    print(f"load average after:  {_loadavg()} (mode {a.mode})")
    print("\n".join(report(sc)))
    for r in [r for r in sc.requests if not r.ok][:5]:
        print(f"  failed {r.kind} after {r.latency_s * 1000:.0f} ms: {r.error[:300]}")
    web = collections.Counter(t.startswith(WEB_TAG) for t in sc.reviews_sent)
    print(
        f"reviews answered ok: {web[False]} by the CLI, {web[True]} by the web client; "
        f"snapshots read: {len(sc.snapshots)}"
    )
    found = problems(db, sc, expected, cfg, work)
    print(
        "final checks: "
        + (
            "every call stored once, every review stored exactly once, audit intact"
            if not found
            else "FAILED\n  " + "\n  ".join(found)
        )
    )
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
    if found:
        sys.exit(1)


if __name__ == "__main__":
    main()
