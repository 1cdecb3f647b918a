"""What QA reviewers do with stored calls: read one, give a verdict, check calibration, draw samples.

Reviews are append-only: callqa only INSERTs into `reviews` (erasure of a forgotten call aside), every
row is chained to the previous entry by an HMAC with a key kept outside the database and the newest entry
is anchored in a head file (callqa.workspace.chain), and `verify_reviews` finds any row changed or removed
outside callqa.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np

from callqa.pipeline import store
from callqa.pipeline.pii import RedactionOptions, redact_text
from callqa.pipeline.store import StoreError
from callqa.workspace import chain
from callqa.workspace.ledger import REVIEW_FIELDS, database_path, head_path, load_key, os_user, review_payload

Verdict = Literal["pass", "fail", "na"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def open_db(
    db_path: Path | str, read_only: bool = False, *, timeout_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """store.connect for commands that work on stored calls: a mistyped --db is refused, never created.

    Waits (bounded) while a batch commits. Use it as `with open_db(db) as con:` (a DuckDB connection
    closes at the end of a with block), so the file is free for the batch again straight after. A
    review's tail check, insert and head-file rewrite (add_review) run inside one open, so two reviewing
    processes serialise on the file lock and never chain two entries to the same predecessor; threads
    of one process (a web server) open through store.open_db, which serialises its writers too."""
    path = Path(db_path)
    if not path.is_file():
        raise StoreError(path, "no such database file (check --db; `callqa run` creates one)")
    return store.connect(path, read_only=read_only, timeout_s=timeout_s)


def resolve_call(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """A call by full id, unique id prefix (≥ 6 chars), file name or source path.

    A full id is looked up alone first: `call_id = ?` by itself is a lookup in the primary key's index, where
    the OR of the four ways reads every call (1 M calls: 1 ms against 130, on every workflow page). An
    exact id therefore wins over another call whose file name or path happens to be that id."""
    exact = con.execute("SELECT call_id FROM calls WHERE call_id = ?", [ref]).fetchone()
    if exact is not None:
        return str(exact[0])
    rows = con.execute(
        """SELECT call_id FROM calls WHERE call_id = ?1 OR file_name = ?1 OR source_path = ?1
           OR (length(?1) >= 6 AND starts_with(call_id, ?1))""",
        [ref],
    ).fetchall()
    if not rows:
        raise StoreError(None, f"no stored call matches {ref!r} (give a call_id, an id prefix or a file name)")
    if len(rows) > 1:
        raise StoreError(None, f"{ref!r} matches {len(rows)} calls; give more of the call_id")
    return rows[0][0]


# ---------------------------------------------------------------------------------------------
# one call, for `callqa show`


@dataclass
class CallView:
    call: dict[str, Any]
    utterances: list[dict[str, Any]]
    events: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    criteria: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    metrics: dict[str, float | None] = field(default_factory=dict)


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def call_view(con: duckdb.DuckDBPyConnection, ref: str) -> CallView:
    cid = resolve_call(con, ref)
    call = _dicts(con.execute("SELECT * FROM calls WHERE call_id = ?", [cid]))[0]
    utts = _dicts(con.execute("SELECT * FROM utterances WHERE call_id = ? ORDER BY start_s, seq", [cid]))
    events = _dicts(con.execute("SELECT * FROM events WHERE call_id = ? ORDER BY start_s", [cid]))
    scores = _dicts(
        con.execute("SELECT * FROM call_scores WHERE call_id = ? ORDER BY scorecard_id, scorecard_version", [cid])
    )
    crit = _dicts(
        con.execute("SELECT * FROM criterion_results WHERE call_id = ? ORDER BY scorecard_id, scorecard_version", [cid])
    )
    reviews = _dicts(con.execute("SELECT * FROM latest_reviews WHERE call_id = ?", [cid]))
    metrics = dict(
        con.execute("SELECT name, value FROM call_metrics WHERE call_id = ? ORDER BY name", [cid]).fetchall()
    )
    return CallView(call, utts, events, scores, crit, reviews, metrics)


# ---------------------------------------------------------------------------------------------
# reviews


def add_review(
    con: duckdb.DuckDBPyConnection,
    ref: str,
    criterion_id: str,
    verdict: Verdict,
    reviewer: str,
    comment: str | None = None,
    scorecard_id: str | None = None,
    *,
    key_file: Path | str | None = None,
    redaction: RedactionOptions | None = RedactionOptions(),
) -> dict[str, Any]:
    """Append a human verdict on one criterion of one call (the newest scorecard version that scored it).

    The comment is free text that can hold PII, so it is redacted like transcripts (`redaction` None: raw,
    for redaction.enabled = false). The row is chained with the audit key and the head file rewritten."""
    if verdict not in ("pass", "fail", "na"):
        raise StoreError(None, f"verdict must be pass, fail or na, not {verdict!r}")
    if not reviewer.strip():
        raise StoreError(None, "a review needs the reviewer's name")
    cid = resolve_call(con, ref)
    q = """SELECT scorecard_id, scorecard_version, result FROM criterion_results
           WHERE call_id = ? AND criterion_id = ? {extra} ORDER BY scorecard_version DESC, scorecard_id LIMIT 1"""
    params: list[Any] = [cid, criterion_id]
    extra = ""
    if scorecard_id:
        extra, params = "AND scorecard_id = ?", params + [scorecard_id]
    found = con.execute(q.format(extra=extra), params).fetchone()
    if not found:
        known = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT criterion_id FROM criterion_results WHERE call_id = ? ORDER BY 1", [cid]
            ).fetchall()
        ]
        raise StoreError(
            None, f"call {cid[:12]} has no criterion {criterion_id!r}; it has: {', '.join(known) or 'no scores'}"
        )
    card_id, version, auto = found
    if comment and redaction is not None:
        comment = redact_text(comment, redaction)[0]
    head_file = head_path(database_path(con))
    key = chain.writer_key(con, key_file, head_file)
    chain.seal_legacy(con, key, head_file, os_user())
    con.execute("BEGIN TRANSACTION")
    try:
        last_seq, prev = chain.check_tail(con, key, head_file)
        row = {
            "review_id": uuid.uuid4().hex,
            "seq": last_seq + 1,
            "call_id": cid,
            "scorecard_id": card_id,
            "scorecard_version": version,
            "criterion_id": criterion_id,
            "reviewer": reviewer.strip(),
            "verdict": verdict,
            "comment": comment,
            "auto_result": auto,
            "created_at": _now(),
        }
        mac = key.mac(prev, review_payload(row))
        con.execute(
            f"INSERT INTO reviews ({', '.join(REVIEW_FIELDS)}, prev_mac, mac) VALUES ({', '.join(['?'] * 13)})",
            [row[k] for k in REVIEW_FIELDS] + [prev, mac],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    chain.anchor(con, key, head_file, (row["seq"], mac))
    return {**row, "prev_mac": prev, "mac": mac}


def verify_reviews(con: duckdb.DuckDBPyConnection, key_file: Path | str | None = None) -> list[str]:
    """Problems in the review chain (empty when history is intact); see callqa.workspace.chain.verify."""
    head_file = head_path(database_path(con))
    return [p.text for p in chain.verify(con, load_key(key_file), head_file, key_file=key_file).problems]


# ---------------------------------------------------------------------------------------------
# calibration


@dataclass(frozen=True)
class CriterionAgreement:
    scorecard_id: str
    criterion_id: str
    n: int
    agree: int
    accuracy: float
    kappa: float | None  # None when undefined (a single verdict class on both sides)
    auto_pass_human_fail: int
    auto_fail_human_pass: int


def calibration(con: duckdb.DuckDBPyConnection) -> list[CriterionAgreement]:
    """Auto vs latest human verdict per criterion, worst agreement first."""
    from sklearn.metrics import cohen_kappa_score

    rows = con.execute(
        """SELECT r.scorecard_id, r.criterion_id, c.result AS auto, r.verdict AS human
           FROM latest_reviews r JOIN criterion_results c
             ON c.call_id = r.call_id AND c.scorecard_id = r.scorecard_id
            AND c.scorecard_version = r.scorecard_version AND c.criterion_id = r.criterion_id"""
    ).fetchall()
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for card, crit, auto, human in rows:
        groups[(card, crit)].append((auto, human))
    out = []
    for (card, crit), pairs in groups.items():
        auto = [a for a, _ in pairs]
        human = [h for _, h in pairs]
        agree = sum(a == h for a, h in pairs)
        kappa: float | None
        if len(set(auto) | set(human)) < 2:
            kappa = None
        else:
            k = float(cohen_kappa_score(auto, human, labels=sorted(set(auto) | set(human))))
            kappa = None if np.isnan(k) else round(k, 3)
        out.append(
            CriterionAgreement(
                card,
                crit,
                len(pairs),
                agree,
                round(agree / len(pairs), 3),
                kappa,
                sum(a == "pass" and h == "fail" for a, h in pairs),
                sum(a == "fail" and h == "pass" for a, h in pairs),
            )
        )
    return sorted(out, key=lambda c: (c.accuracy, c.kappa if c.kappa is not None else 1.0, -c.n))


# ---------------------------------------------------------------------------------------------
# stratified samples


def draw_sample(
    con: duckdb.DuckDBPyConnection,
    n: int,
    by: str = "agent",
    seed: int = 0,
    include_flagged: bool = False,
    since: str | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Draw n calls for human review, spread evenly over strata (agents or queues), and record it.

    Flagged calls are already in the queue, so they are excluded unless include_flagged. The draw
    depends only on the stored calls, the filters and the seed, so an auditor can reproduce it.
    """
    column = {"agent": "agent_id", "queue": "queue", "language": "language", "none": "'all'"}.get(by)
    if column is None:
        raise StoreError(None, f"--by must be agent, queue, language or none, not {by!r}")
    if n < 1:
        raise StoreError(None, "--n must be at least 1")
    filters = ["TRUE"]
    params: list[Any] = []
    if not include_flagged:
        filters.append("call_id NOT IN (SELECT call_id FROM call_scores WHERE flagged)")
    if since:
        filters.append("coalesce(started_at, processed_at) >= CAST(? AS TIMESTAMP)")
        params.append(since)
    rows = con.execute(
        f"SELECT call_id, coalesce(CAST({column} AS VARCHAR), '(none)') FROM calls "
        f"WHERE {' AND '.join(filters)} ORDER BY call_id",
        params,
    ).fetchall()
    strata: dict[str, list[str]] = defaultdict(list)
    for cid, s in rows:
        strata[s].append(cid)
    rng = np.random.default_rng(seed)
    names = sorted(strata)
    # even allocation: every agent gets the same share of the reviewers' time
    quota = {s: n // len(names) for s in names} if names else {}
    for s in rng.permutation(names)[: n - sum(quota.values())] if names else []:
        quota[str(s)] += 1
    picked: list[tuple[str, str]] = []
    spare: list[tuple[str, str]] = []
    for s in names:
        order = rng.permutation(len(strata[s]))
        chosen = [strata[s][i] for i in order]
        picked += [(cid, s) for cid in chosen[: quota[s]]]
        spare += [(cid, s) for cid in chosen[quota[s] :]]
    if len(picked) < n and spare:  # small strata: fill the rest at random from the others
        extra = rng.permutation(len(spare))[: n - len(picked)]
        picked += [spare[i] for i in sorted(extra)]
    sample_id = uuid.uuid4().hex[:12]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sample_id, _now(), created_by, by, n, len(picked), seed, include_flagged, json.dumps({"since": since})],
        )
        for i, (cid, s) in enumerate(picked):
            con.execute("INSERT INTO sample_calls VALUES (?, ?, ?, ?)", [sample_id, cid, s, i])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {"sample_id": sample_id, "n_drawn": len(picked), "strata": len(names), "calls": picked}
