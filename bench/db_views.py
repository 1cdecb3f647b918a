"""How fast do the QA views answer on a large centre's database, and how fast is the HTML report?

Generates a DuckDB of synthetic calls with DuckDB SQL (range() x random(), no Python loops), in the
proportions a real nightly batch leaves behind per call: ~24 utterances, ~7 events (greeting,
closing, holds with their announcements, dead air, overtalk, negative emotion, ...), 22 call
metrics, 8 criterion results and one score; 1 % of calls carry human reviews. Calls are inserted in
the order they were processed (chronological), as the nightly writer does. `words` (~10 per
utterance) are generated only for the report database: no view reads them.

Then times, each as the median of warm runs (plus the first, cold, run):
  - `flagged_queue` first page        (target <= 200 ms)
  - `agent_daily` over the last 30 days (target <= 200 ms)
  - `call_summary` for one day, `hold_stats` and `agent_daily_kpis` over 30 days (target <= 200 ms)
  - each KPI macro of migration 0011 per agent and day over 30 days (target <= 500 ms)
  - the other views, for information
then the workspace's own server-side handlers (`callqa serve`: the app of
callqa.workspace.web.app.create_app over the same database, called in-process through starlette's
TestClient, so the time is the server's: session check, per-request open of the file, queries and
the rendered page, without a network), each as the median of warm requests plus the cold one:
  - GET /queue, first page, and filtered pages (agent, date range, flag reason, unreviewed, reviewed)
  - GET /calls/<id> for calls from the oldest, the middle and the newest day  (target <= 300 ms)
  - GET /workflow/call/<id> (the call's workflow panel), for information
and builds the HTML report (`callqa report`) for a 1,000-call database (target <= 60 s).

    .venv/bin/python bench/db_views.py                       # 1,000,000 calls, ~/.cache/callqa-bench
    .venv/bin/python bench/db_views.py --calls 200000 --keep --db /tmp/bench.duckdb

The machine's load average is printed with the figures: on a shared machine timings are inflated.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from callqa.pipeline import store
from callqa.pipeline.detectors import METRIC_DESCRIPTIONS

TARGET_VIEW_MS = 200.0
TARGET_KPI_MS = 500.0  # each KPI macro of migration 0011 over 30 days
TARGET_REPORT_S = 60.0
TARGET_WEB_MS = 300.0  # a workspace page's server time (issue 17)
WEB_USER, WEB_PASSWORD = "bench-reviewer", "bench password 0123456789"

PHRASES_AGENT = [
    "Thank you for calling Acme Energy, my name is Sarah, how can I help you today?",
    "Can I take your account number please?",
    "Could you confirm the first line of your address and your date of birth?",
    "I can see the bill went up because the fixed tariff ended in March.",
    "Let me just check that for you, please hold for a moment.",
    "Thank you for waiting, I have that information now.",
    "I am sorry to hear that, I understand how frustrating that is.",
    "So just to confirm, you would like to move to the monthly plan?",
    "Is there anything else I can help you with today?",
    "Thank you for calling, have a lovely day.",
    "您好，这里是星河银行客服中心，我是小王，请问有什么可以帮您？",
    "请您稍等，我帮您查询一下。",
]
PHRASES_CUSTOMER = [
    "Hi, I would like to check the balance on my account please.",
    "It is [DIGITS].",
    "Why has my bill doubled this month?",
    "Yes, that is right.",
    "I have been waiting for two weeks and nobody called me back.",
    "This is ridiculous, I want to speak to a manager.",
    "Okay, thank you, that makes sense.",
    "No, that is everything, thanks.",
    "我的信用卡被扣了两次年费。",
    "好的，谢谢。",
]
METRICS = list(METRIC_DESCRIPTIONS)
# (type, probability per call, role, typical offset share of the call, typical length s)
EVENTS = [
    ("greeting", 0.88, "agent", 0.01, 4.0),
    ("identity_verification", 0.70, "agent", 0.08, 5.0),
    ("need_discovery", 0.80, "agent", 0.05, 3.0),
    ("solution_explained", 0.60, "agent", 0.45, 8.0),
    ("further_help_offered", 0.65, "agent", 0.9, 3.0),
    ("closing", 0.80, "agent", 0.97, 3.0),
    ("hold_announced", 0.28, "agent", 0.3, 2.5),
    ("hold", 0.30, None, 0.32, 55.0),
    ("hold_thanked", 0.24, "agent", 0.45, 2.5),
    ("hold_unannounced", 0.04, None, 0.32, 40.0),
    ("dead_air", 0.35, None, 0.5, 9.0),
    ("overtalk", 0.55, "customer", 0.4, 1.2),
    ("interruption", 0.25, "agent", 0.4, 1.0),
    ("empathy", 0.30, "agent", 0.2, 3.0),
    ("negative_emotion", 0.18, "customer", 0.3, 4.0),
    ("complaint", 0.08, "customer", 0.25, 4.0),
    ("escalation_request", 0.02, "customer", 0.5, 3.0),
    ("forbidden_phrase", 0.01, "agent", 0.5, 2.0),
    ("transfer", 0.06, "agent", 0.6, 2.0),
    ("repeat_contact_mention", 0.05, "customer", 0.1, 3.0),
]
# (section, criterion, points, auto_fail, event that decides it, pass probability when scored)
CRITERIA = [
    ("opening", "greeting", 10, False, 0.88),
    ("opening", "identity_verified", 10, False, 0.70),
    ("discovery", "need_asked", 10, False, 0.80),
    ("resolution", "solution_explained", 15, False, 0.60),
    ("conduct", "hold_etiquette", 10, False, 0.80),
    ("conduct", "no_forbidden_language", 0, True, 0.99),
    ("closing", "further_help", 10, False, 0.65),
    ("closing", "closing", 10, False, 0.80),
]


def _sql_list(items) -> str:
    return "[" + ", ".join("'" + str(x).replace("'", "''") + "'" for x in items) + "]"


def generate(
    db_path: Path,
    n_calls: int,
    *,
    days: int = 200,
    agents: int = 250,
    seed: float = 0.42,
    words: bool = False,
    log=print,
) -> dict[str, int]:
    """Create (or replace) a callqa database of `n_calls` synthetic calls; returns row counts."""
    db_path = Path(db_path)
    for p in (db_path, Path(str(db_path) + ".wal")):
        if p.exists():
            p.unlink()
    con = store.connect(db_path)  # real schema and migrations
    try:
        con.execute(f"SELECT setseed({seed})")
        con.execute("SET preserve_insertion_order = true")
        t = time.perf_counter()
        # one row per call with everything the child tables derive from; processing order = time order
        con.execute(f"""
            CREATE TEMP TABLE g AS
            SELECT i,
                   sha256('bench-call-' || i) AS call_id,
                   1 + (hash(i, 'agent') % {agents}) AS agent_n,
                   TIMESTAMP '2026-01-01 08:00:00'
                     + to_days(CAST(floor(i * {days}::DOUBLE / {n_calls}) AS INTEGER))
                     + to_seconds(CAST(random() * 36000 AS BIGINT)) AS started_at,
                   greatest(30.0, 60 + 420 * random() * random() + 120 * random()) AS duration_s,
                   CASE WHEN random() < 0.8 THEN 2 ELSE 1 END AS channels,
                   CASE WHEN random() < 0.85 THEN 'en' ELSE 'zh' END AS language,
                   10 + CAST(random() * 28 AS INTEGER) AS n_utt
            FROM range({n_calls}) r(i)
        """)
        con.execute("""
            INSERT INTO calls (call_id, source_path, file_name, size_bytes, agent_id, queue, customer_id, direction,
                               started_at, duration_s, channels, sample_rate, codec, language, language_probability,
                               role_method, role_confidence, roles, processed_at, pipeline_version, models, timings,
                               metadata, warnings, status, run_id)
            SELECT call_id, '/recordings/' || strftime(started_at, '%Y-%m-%d') || '/' || call_id[:12] || '.wav',
                   call_id[:12] || '.wav', CAST(duration_s * 16000 * channels AS BIGINT),
                   'A' || lpad(CAST(agent_n AS VARCHAR), 4, '0'),
                   ['billing', 'tech-support', 'sales', 'retention', 'cards'][CAST(1 + hash(i, 'q') % 5 AS BIGINT)],
                   'C' || (hash(i, 'cust') % 5000000), CASE WHEN random() < 0.9 THEN 'inbound' ELSE 'outbound' END,
                   started_at, duration_s, channels, 8000, 'pcm_mulaw', language, 0.9 + random() / 10,
                   CASE WHEN channels = 2 THEN 'channel_map' ELSE 'evidence:greeting' END, 0.9,
                   '{"ch0": "agent", "ch1": "customer"}', started_at + INTERVAL 14 HOUR, '0.1.0',
                   '{"asr": "faster-whisper base int8"}', '{"transcribe": 20.0}', '{}', '[]', 'processed',
                   'run-' || strftime(started_at, '%Y%m%d')
            FROM g ORDER BY i
        """)
        # sidecar fields of migration 0011: a team per 10 agents, a tier on escalated queues, a survey on 1 in 5
        con.execute("""
            UPDATE calls
            SET team = 'team-' || lpad(CAST(CAST(substr(agent_id, 2) AS INTEGER) // 10 AS VARCHAR), 2, '0'),
                tier = CASE WHEN hash(call_id, 'tier') % 10 < 3 THEN 1 + hash(call_id, 't') % 3 END,
                csat = CASE WHEN hash(call_id, 'survey') % 5 = 0 THEN 1 + hash(call_id, 'csat') % 5 END,
                nps = CASE WHEN hash(call_id, 'survey') % 5 = 0 THEN hash(call_id, 'nps') % 11 END
        """)
        log(f"  calls            {time.perf_counter() - t:6.1f} s")
        t = time.perf_counter()
        pa, pc = _sql_list(PHRASES_AGENT), _sql_list(PHRASES_CUSTOMER)
        con.execute(f"""
            INSERT INTO utterances (call_id, seq, speaker, role, role_confidence, channel, start_s, end_s, text,
                                    asr_confidence, emotion, emotion_score, emotion_method, sentiment)
            SELECT call_id, k, CASE WHEN k % 2 = 0 THEN 'ch0' ELSE 'ch1' END,
                   CASE WHEN k % 2 = 0 THEN 'agent' ELSE 'customer' END, 0.95,
                   CAST(k % 2 AS INTEGER),
                   duration_s * k / n_utt, duration_s * k / n_utt + least(duration_s / n_utt * 0.85, 12),
                   CASE WHEN k % 2 = 0 THEN {pa}[CAST(1 + hash(i, k) % {len(PHRASES_AGENT)} AS BIGINT)]
                        ELSE {pc}[CAST(1 + hash(i, k) % {len(PHRASES_CUSTOMER)} AS BIGINT)] END,
                   0.8 + random() / 5,
                   CASE WHEN random() < 0.12 THEN 'negative' WHEN random() < 0.5 THEN 'neutral' ELSE 'positive' END,
                   random(), 'bench', 2 * random() - 1
            FROM g, range(n_utt) t(k)
            ORDER BY i, k
        """)
        log(f"  utterances       {time.perf_counter() - t:6.1f} s")
        if words:
            t = time.perf_counter()
            con.execute("""
                INSERT INTO words (call_id, utt_seq, seq, start_s, end_s, word, probability, speaker, channel)
                SELECT u.call_id, u.seq, w.j, u.start_s + (u.end_s - u.start_s) * w.j / w.n,
                       u.start_s + (u.end_s - u.start_s) * (w.j + 0.8) / w.n,
                       w.tok, 0.9, u.speaker, u.channel
                FROM utterances u,
                     LATERAL (SELECT j - 1 AS j, tok, len(string_split(u.text, ' ')) AS n
                              FROM unnest(string_split(u.text, ' ')) WITH ORDINALITY AS x(tok, j)) w
            """)
            log(f"  words            {time.perf_counter() - t:6.1f} s")
        t = time.perf_counter()
        ev_values = ", ".join(
            f"('{ty}', {p}, {('NULL' if role is None else repr(role))}, {off}, {length})"
            for ty, p, role, off, length in EVENTS
        )
        con.execute(f"""
            INSERT INTO events (event_id, call_id, type, start_s, end_s, speaker, role, evidence, confidence,
                                detector_version, data)
            SELECT substr(sha256(g.call_id || t.type), 1, 16), g.call_id, t.type,
                   least(g.duration_s - 1,
                         g.duration_s * t.off * (0.7 + 0.6 * (hash(g.i, t.type, 's') % 1000) / 1000.0)) AS s,
                   least(g.duration_s, s + t.len * (0.5 + (hash(g.i, t.type, 'e') % 1000) / 1000.0)),
                   CASE t.role WHEN 'agent' THEN 'ch0' WHEN 'customer' THEN 'ch1' ELSE NULL END, t.role,
                   CASE WHEN t.role IS NULL THEN t.type || ' measured from audio'
                        ELSE 'quoted utterance for ' || t.type END,
                   0.6 + random() * 0.4, 'bench/1',
                   CASE WHEN t.type = 'hold' THEN
                       '{{"announced": ' || (random() < 0.9) || ', "thanked": ' || (random() < 0.8)
                       || ', "kind": "music"}}'
                        ELSE '{{}}' END
            FROM g, (VALUES {ev_values}) t(type, p, role, off, len)
            -- hash, not random(): DuckDB may evaluate a filter on random() once per VALUES row
            WHERE hash(g.i, t.type) % 10000 < t.p * 10000
            ORDER BY g.i
        """)
        log(f"  events           {time.perf_counter() - t:6.1f} s")
        t = time.perf_counter()
        con.execute(f"""
            INSERT INTO call_metrics (call_id, name, value)
            SELECT g.call_id, m.name,
                   CASE m.name
                     WHEN 'duration_s' THEN g.duration_s
                     WHEN 'hold_total_s' THEN CASE WHEN hash(g.i, 'hold') % 10 < 3 THEN 20 + 100 * random() ELSE 0 END
                     WHEN 'hold_max_s' THEN CASE WHEN hash(g.i, 'hold') % 10 < 3 THEN 20 + 60 * random() ELSE 0 END
                     WHEN 'hold_count' THEN
                       CASE WHEN hash(g.i, 'hold') % 10 < 3 THEN 1 + (random() < 0.2)::INT ELSE 0 END
                     WHEN 'dead_air_total_s' THEN CASE WHEN random() < 0.35 THEN 5 + 25 * random() ELSE 0 END
                     WHEN 'talk_ratio_agent' THEN 0.35 + 0.35 * random()
                     WHEN 'customer_emotion_start' THEN 2 * random() - 1
                     WHEN 'customer_emotion_end' THEN 2 * random() - 0.8
                     ELSE 100 * random() END
            FROM g, (SELECT unnest({_sql_list(METRICS)}) AS name) m
            ORDER BY g.i
        """)
        log(f"  call_metrics     {time.perf_counter() - t:6.1f} s")
        t = time.perf_counter()
        crit_values = ", ".join(f"('{s}', '{c}', {pts}, {str(af).lower()}, {p})" for s, c, pts, af, p in CRITERIA)
        con.execute(f"""
            INSERT INTO criterion_results (call_id, scorecard_id, scorecard_version, section_id, criterion_id, result,
                                           points, max_points, auto_fail, evidence_event_ids, rationale, scored_at)
            SELECT g.call_id, 'inbound_basic', 1, k.section, k.crit,
                   CASE WHEN k.crit = 'hold_etiquette' AND hash(g.i, 'hold') % 10 >= 3 THEN 'na'
                        WHEN random() < k.p * (0.85 + 0.3 * ((hash(g.agent_n) % 100) / 100.0)) THEN 'pass'
                        ELSE 'fail' END AS res,
                   0, k.pts, k.af, [substr(sha256(g.call_id || k.crit), 1, 16)],
                   'bench: ' || k.crit, g.started_at + INTERVAL 14 HOUR
            FROM g, (VALUES {crit_values}) k(section, crit, pts, af, p)
            ORDER BY g.i
        """)
        con.execute("UPDATE criterion_results SET points = CASE WHEN result = 'pass' THEN max_points ELSE 0 END")
        con.execute("""
            INSERT INTO call_scores (call_id, scorecard_id, scorecard_version, score, max_score, percent, grade,
                                     auto_fail, flagged, flag_reasons, scored_at)
            WITH agg AS (
                SELECT call_id, scorecard_id, scorecard_version,
                       sum(points) FILTER (WHERE result <> 'na') AS score,
                       sum(max_points) FILTER (WHERE result <> 'na') AS max_score,
                       bool_or(auto_fail AND result = 'fail') AS af,
                       list(criterion_id ORDER BY criterion_id) FILTER (WHERE result = 'fail') AS failed,
                       max(scored_at) AS scored_at
                FROM criterion_results GROUP BY ALL
            ), p AS (
                SELECT *, CASE WHEN af THEN 0.0 ELSE round(100.0 * score / max_score, 2) END AS pct FROM agg
            ), gr AS (
                SELECT *, CASE WHEN pct >= 90 THEN 'excellent' WHEN pct >= 80 THEN 'good'
                               WHEN pct >= 60 THEN 'fair' ELSE 'poor' END AS grade FROM p
            )
            SELECT call_id, scorecard_id, scorecard_version, CASE WHEN af THEN 0 ELSE score END, max_score, pct, grade,
                   af, af OR grade = 'poor',
                   [x FOR x IN [CASE WHEN af THEN 'auto-fail: no_forbidden_language' END,
                                CASE WHEN grade = 'poor' THEN 'grade poor (' || CAST(round(pct) AS INTEGER)
                                     || '%) below fair; failed: ' || array_to_string(failed, ', ') END]
                    IF x IS NOT NULL],
                   scored_at
            FROM gr
        """)
        log(f"  scores           {time.perf_counter() - t:6.1f} s")
        con.execute("""
            INSERT INTO reviews (review_id, call_id, scorecard_id, scorecard_version, criterion_id, reviewer, verdict,
                                 comment, created_at)
            SELECT substr(sha256(r.call_id || r.criterion_id), 1, 16), r.call_id, r.scorecard_id, r.scorecard_version,
                   r.criterion_id, 'qa' || (hash(r.call_id) % 8),
                   CASE WHEN random() < 0.9 THEN r.result WHEN r.result = 'pass' THEN 'fail' ELSE 'pass' END,
                   NULL, r.scored_at + INTERVAL 1 DAY
            FROM criterion_results r
            WHERE hash(r.call_id) % 100 = 0 AND r.result <> 'na'
        """)
        t = time.perf_counter()
        # the per-call rows the writer stores with each call (migration 0012), for the calls inserted above
        store.refresh_call_facts(con)
        log(f"  call_facts       {time.perf_counter() - t:6.1f} s")
        con.execute("CHECKPOINT")
        return store.table_counts(con)
    finally:
        con.close()


def _time(con: duckdb.DuckDBPyConnection, sql: str, repeat: int = 7) -> tuple[float, float, float, int]:
    """(cold ms, median warm ms, median warm CPU ms of this process, rows), fetching every row.

    CPU time is printed beside wall time because on a shared machine the wall time mostly measures
    the other processes; CPU time / threads is what the query costs on a quiet one.
    """
    times, cpu = [], []
    rows = 0
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        rows = len(con.execute(sql).fetchall())
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return times[0], statistics.median(times[1:]), statistics.median(cpu[1:]), rows


def refresh_views(db_path: Path) -> None:
    """Re-apply every migration, in order, to a kept database, so the current view definitions are timed
    (re-creating 0004 alone would time its views, not the later migrations' redefinitions). The migrations
    are idempotent (IF NOT EXISTS, CREATE OR REPLACE, ON CONFLICT DO NOTHING)."""
    from callqa.pipeline.database import _migrations

    con = duckdb.connect(str(db_path))
    try:
        for _version, _name, sql in _migrations():
            con.execute(sql)
    finally:
        con.close()


def time_views(db_path: Path, threads: int | None = None, log=print) -> dict[str, float]:
    con = store.connect(db_path, read_only=True)
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        n_threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        last_day = con.execute("SELECT max(CAST(coalesce(started_at, processed_at) AS DATE)) FROM calls").fetchone()[0]
        since = f"DATE '{last_day}' - 29"
        queries: dict[str, tuple[str, bool | str]] = {
            "flagged_queue first page (50)": ("SELECT * FROM flagged_queue LIMIT 50", True),
            "flagged_page(50) (callqa flagged)": ("SELECT * FROM flagged_page(50)", True),
            "flagged_page(50, start := 5000)": ("SELECT * FROM flagged_page(50, start := 5000)", False),
            "agent_daily, last 30 days": (
                f"SELECT * FROM agent_daily WHERE day >= {since} ORDER BY day, agent_id",
                True,
            ),
            "flagged_queue, one agent": ("SELECT * FROM flagged_queue WHERE agent_id = 'A0007' LIMIT 50", False),
            "call_summary, one day": (f"SELECT * FROM call_summary WHERE day = DATE '{last_day}'", False),
            "criterion_pass_rates": ("SELECT * FROM criterion_pass_rates", False),
            "hold_stats, last 30 days (agg)": (
                f"SELECT agent_id, sum(hold_count), avg(hold_total_s) FROM hold_stats WHERE day >= {since} GROUP BY 1",
                False,
            ),
            "review_agreement": ("SELECT * FROM review_agreement", False),
            "agent_daily_kpis, last 30 days": (f"SELECT * FROM agent_daily_kpis WHERE day >= {since}", True),
        }
        for name in ("call_summary, one day", "hold_stats, last 30 days (agg)"):
            queries[name] = (queries[name][0], True)
        # the KPI macros (migration 0011), per agent and day over the last 30 days
        kpi_range = f"DATE '{last_day}' - 29, DATE '{last_day}', grain := 'agent', period := 'day'"
        for kpi in ("repeat_contacts", "complaints", "escalations", "effort", "times", "satisfaction"):
            queries[f"kpi_{kpi}, 30 days"] = (f"SELECT * FROM kpi_{kpi}({kpi_range})", "kpi")
        out = {}
        log(f"duckdb threads: {n_threads}; load average now {os.getloadavg()[0]:.2f}")
        log(f"{'query':36s} {'cold ms':>9s} {'warm ms':>9s} {'cpu ms':>9s} {'rows':>7s}  target (warm wall)")
        for name, (sql, targeted) in queries.items():
            cold, warm, cpu, rows = _time(con, sql)
            out[name] = warm
            verdict = ""
            if targeted:
                target = TARGET_KPI_MS if targeted == "kpi" else TARGET_VIEW_MS
                verdict = f"<= {target:.0f} ms: " + ("PASS" if warm <= target else "FAIL")
            log(f"{name:36s} {cold:9.1f} {warm:9.1f} {cpu:9.1f} {rows:7d}  {verdict}")
        return out
    finally:
        con.close()


def _web_client(db_path: Path, work: Path):
    """A logged-in reviewer's TestClient on the workspace app over db_path (the user is created or its
    password reset, so a kept database works with a new secret)."""
    import re

    from fastapi.testclient import TestClient

    from callqa.config.settings import load_settings
    from callqa.workspace.web.app import WebOptions, create_app
    from callqa.workspace.web.keys import Passwords, load_secret
    from callqa.workspace.web.users import add_user, get_user, set_password

    secret_file = work / "web.key"  # created 0600 by load_secret
    passwords = Passwords(load_secret(secret_file))
    with store.open_db(db_path) as con:
        pw = passwords.hash(WEB_PASSWORD)
        if get_user(con, WEB_USER) is None:
            add_user(con, WEB_USER, "reviewer", pw, actor="bench")
        else:
            set_password(con, WEB_USER, pw, actor="bench")
    client = TestClient(create_app(load_settings(), db_path, WebOptions(secret_file=secret_file)))
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    if m is None:
        raise RuntimeError("the login page has no CSRF field")
    r = client.post(
        "/login",
        data={"username": WEB_USER, "password": WEB_PASSWORD, "csrf_token": m.group(1)},
        follow_redirects=False,
    )
    if r.status_code != 303:
        raise RuntimeError(f"bench login failed: HTTP {r.status_code}")
    return client


def time_web(db_path: Path, work: Path, repeat: int = 5, log=print) -> dict[str, float]:
    """Server time of the workspace's queue and call pages (issue 17), in-process."""
    repeat = max(2, repeat)  # the first request is the cold one
    client = _web_client(db_path, work)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        first, last = con.execute(
            "SELECT min(CAST(coalesce(started_at, processed_at) AS DATE)), "
            "max(CAST(coalesce(started_at, processed_at) AS DATE)) FROM calls"
        ).fetchone()
        middle = first + (last - first) / 2
        # a flagged call of the oldest, the middle and the newest day (the call page's usual entry is the queue)
        picks = {}
        for label, day in (("old", first), ("middle", middle), ("new", last)):
            row = con.execute(
                "SELECT call_id FROM flagged_queue WHERE day = ? ORDER BY call_id LIMIT 1", [day]
            ).fetchone()
            if row:
                picks[label] = row[0]
    finally:
        con.close()
    since = (last - (last - first) / 7).isoformat()  # about the last month of a 200-day database
    pages: dict[str, tuple[str, bool]] = {
        "web /queue first page": ("/queue", True),
        "web /queue agent": ("/queue?agent=A0007", True),
        "web /queue date range": (f"/queue?since={since}&until={last.isoformat()}", True),
        "web /queue reason": ("/queue?reason=auto-fail", True),
        "web /queue agent+date+unreviewed": (f"/queue?agent=A0007&since={since}&unreviewed=true", True),
        "web /queue reviewed only": ("/queue?reviewed=true", True),
        "web /queue page 20": ("/queue?page=20", True),
    }
    for label, cid in picks.items():
        pages[f"web /calls/<id> ({label} day)"] = (f"/calls/{cid}", True)
    for label, cid in picks.items():
        pages[f"web /workflow/call/<id> ({label})"] = (f"/workflow/call/{cid}", False)
    out = {}
    log(f"workspace pages (in-process, server time); load average now {os.getloadavg()[0]:.2f}")
    log(f"{'page':36s} {'cold ms':>9s} {'warm ms':>9s} {'cpu ms':>9s} {'KB':>7s}  target (warm wall)")
    for name, (path, targeted) in pages.items():
        times, cpu = [], []
        size = 0
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            try:
                r = client.get(path, follow_redirects=False)
            except Exception as e:  # a page that fails is reported as such; the other pages are still timed
                r = None
                error = f"{type(e).__name__}: {e}"
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            if r is not None and r.status_code != 200:
                error = f"HTTP {r.status_code}: {r.text[:200]}"
            if r is None or r.status_code != 200:
                log(f"{name:36s} FAILED: GET {path}: {error}")
                break
            size = len(r.content)
        else:
            error = ""
        if error:
            continue
        warm = statistics.median(times[1:])
        out[name] = warm
        verdict = f"<= {TARGET_WEB_MS:.0f} ms: " + ("PASS" if warm <= TARGET_WEB_MS else "FAIL") if targeted else ""
        log(f"{name:36s} {times[0]:9.1f} {warm:9.1f} {statistics.median(cpu[1:]):9.1f} {size / 1024:7.1f}  {verdict}")
    return out


def _bench_result(i: int):
    """A stored call of the bench's proportions (24 utterances of 10 words, 7 events, 22 metrics, one score)."""
    from callqa.pipeline.scoring import ScoringContext, load_scorecard, score_call
    from callqa.pipeline.types import CallResult, CallSource, Event, RoleDecision, Utterance, Word

    cid = hashlib.sha256(f"bench-writer-{i}-{time.time_ns()}".encode()).hexdigest()
    utts = []
    for k in range(24):
        ch = k % 2
        words = [Word(k * 10 + j * 0.5, k * 10 + j * 0.5 + 0.4, f"w{j}", 0.9, ch) for j in range(10)]
        utts.append(
            Utterance(
                k,
                f"ch{ch}",
                k * 10.0,
                k * 10.0 + 5,
                " ".join(w.text for w in words),
                words,
                channel=ch,
                role="agent" if ch == 0 else "customer",
            )  # fmt: skip
        )
    events = [
        Event(ty, 5.0 * n, 5.0 * n + 3, "ch0", "agent", "bench", 0.9, "bench/1", {}, event_id=f"{cid[:8]}{n:02d}")
        for n, (ty, *_rest) in enumerate(EVENTS[:7])
    ]
    score = score_call(load_scorecard("inbound_service_en"), ScoringContext(events, 240.0, True))
    return CallResult(
        source=CallSource(f"/recordings/bench/{cid[:12]}.wav", cid, 1000, {"agent_id": "A0001"}),
        duration_s=240.0, channels=2, sample_rate=8000, codec="pcm_mulaw", language="en", language_probability=0.99,
        utterances=utts, events=events, metrics={m: 1.0 for m in METRICS}, scores=[score], models={"asr": "bench"},
        roles=RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map"), timings={"decode": 0.0},
    )  # fmt: skip


def time_writer(db_path: Path, n: int = 20, log=print) -> float:
    """The nightly writer's cost per call on this database: open (migrated), write_call, close with the
    batch's WAL checkpoint threshold, as flows/nightly.py commits each call. Adds n calls to the database."""
    from callqa.config.settings import load_settings

    wal_bytes = int(load_settings().database.checkpoint_wal_mb * 2**20)
    results = [_bench_result(i) for i in range(n)]
    times = []
    for r in results:
        t = time.perf_counter()
        with store.open_db(db_path, checkpoint_wal_bytes=wal_bytes) as con:
            store.write_call(con, r, None, "bench")
        times.append((time.perf_counter() - t) * 1000)
    with store.open_db(db_path) as con:  # leave the database as it was, checkpointed
        ids = [r.source.call_id for r in results]
        for table in (
            "call_facts",
            "call_scores",
            "criterion_results",
            "call_metrics",
            "events",
            "words",
            "utterances",
        ):
            con.execute(f"DELETE FROM {table} WHERE call_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        con.execute("DELETE FROM calls WHERE call_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    med = statistics.median(times[1:])
    log(
        f"writer: open + write_call + close per call, {n} calls: first {times[0]:.0f} ms, median {med:.0f} ms, "
        f"max {max(times):.0f} ms; load average {os.getloadavg()[0]:.2f}"
    )
    return med


def time_report(work: Path, n_calls: int = 1000, log=print) -> float:
    from callqa.workspace.report import build_report

    db = work / f"report_{n_calls}.duckdb"
    generate(db, n_calls, days=30, agents=25, words=True, log=lambda *_: None)
    out = work / "report"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    summary = build_report(db, out)
    dt = time.perf_counter() - t
    log(
        f"report for {n_calls} calls: {dt:.1f} s "
        f"({summary.call_pages} call pages, {summary.bytes_written / 1e6:.1f} MB) "
        f"target <= {TARGET_REPORT_S:.0f} s: {'PASS' if dt <= TARGET_REPORT_S else 'FAIL'}"
    )
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=200, help="days the calls span (5,000 calls a day at 1M calls)")
    ap.add_argument("--agents", type=int, default=250)
    ap.add_argument("--db", type=Path, default=None, help="where the big database goes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated database (and reuse it when present)")
    ap.add_argument("--report-calls", type=int, default=1000)
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--skip-web", action="store_true", help="do not time the workspace pages")
    ap.add_argument("--only-web", action="store_true", help="time only the workspace pages")
    ap.add_argument("--writer", type=int, default=0, metavar="N", help="also time the nightly writer on N calls")
    ap.add_argument("--web-repeat", type=int, default=5, help="requests per page (the first is the cold one)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: one per core)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="callqa-bench-"))
    db = args.db or work / "bench.duckdb"
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores; "
        f"duckdb {duckdb.__version__}"
    )
    try:
        if args.keep and db.exists():
            print(f"reusing {db} (every migration re-applied, so the current view definitions are timed)")
            refresh_views(db)
        else:
            print(f"generating {args.calls:,} calls into {db}")
            t = time.perf_counter()
            counts = generate(db, args.calls, days=args.days, agents=args.agents)
            print(
                f"generated in {time.perf_counter() - t:.0f} s, {db.stat().st_size / 1e9:.2f} GB: "
                + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            )
        if not args.only_web:
            time_views(db, args.threads)
        if not args.skip_web:
            time_web(db, work, repeat=args.web_repeat)
        if args.writer:
            time_writer(db, args.writer)
        if not args.skip_report and not args.only_web:
            time_report(work, args.report_calls)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
