"""Splitting review work between reviewers: a drawn sample (callqa.workspace.qa.draw_sample) or a day's
flagged queue, round-robin or by queue, recorded as an assignment batch.

`plan` is pure: calls in their order (the sample's draw order, the queue's worst-first order) go to the
reviewers in turn (round_robin), or each to the reviewers who cover the call's queue, in turn among them
(by_queue; a call whose queue nobody covers stays unassigned and is reported). `assign` stores the plan;
a call assigned again later goes to its newest reviewer (view `current_assignments`), history stays.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import duckdb

from callqa.workspace.ledger import now
from callqa.workspace.workflow import Actor, WorkflowError

Method = Literal["round_robin", "by_queue"]
ASSIGNERS = frozenset({"supervisor", "admin"})

# The "assigned to me" filter for a queue query over calls `q` (one parameter: the reviewer's name).
ASSIGNED_TO_SQL = "EXISTS (SELECT 1 FROM current_assignments a WHERE a.call_id = q.call_id AND a.reviewer = ?)"


@dataclass(frozen=True)
class CallRef:
    call_id: str
    queue: str | None


@dataclass(frozen=True)
class Plan:
    assigned: tuple[tuple[str, str], ...]  # (call_id, reviewer), in the calls' order
    skipped: tuple[tuple[str, str], ...]  # (call_id, why)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for _, r in self.assigned:
            out[r] += 1
        return dict(out)


@dataclass(frozen=True)
class Batch:
    batch_id: str
    source: str
    method: str
    plan: Plan


def plan(
    calls: Sequence[CallRef],
    reviewers: Sequence[str],
    method: str = "round_robin",
    queues: Mapping[str, Sequence[str]] | None = None,
    already: Mapping[str, str] | None = None,
) -> Plan:
    """Who reviews which call. `queues`: reviewer -> queues they cover (by_queue); `already`: call ->
    reviewer of calls assigned before, which are skipped (reassigning is an explicit `already=None`)."""
    names = list(dict.fromkeys(r.strip() for r in reviewers if r.strip()))
    if not names:
        raise WorkflowError(None, "name at least one reviewer to assign calls to")
    if method not in ("round_robin", "by_queue"):
        raise WorkflowError(None, f"assignment method must be round_robin or by_queue, not {method!r}")
    assigned: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    todo = []
    for c in dict.fromkeys(calls):
        if already and c.call_id in already:
            skipped.append((c.call_id, f"already assigned to {already[c.call_id]}"))
        else:
            todo.append(c)
    if method == "round_robin":
        assigned = [(c.call_id, names[i % len(names)]) for i, c in enumerate(todo)]
        return Plan(tuple(assigned), tuple(skipped))
    if not queues:
        raise WorkflowError(None, "by_queue needs the queues each reviewer covers (reviewer=queue1,queue2)")
    unknown = sorted(set(queues) - set(names))
    if unknown:
        raise WorkflowError(None, f"queues were given for {', '.join(unknown)}, who are not among the reviewers")
    covering: dict[str, list[str]] = defaultdict(list)
    for r in names:
        for q in queues.get(r, ()):
            covering[q].append(r)
    turn: dict[str, int] = defaultdict(int)
    for c in todo:
        who = covering.get(c.queue or "")
        if not who:
            skipped.append((c.call_id, f"no reviewer covers queue {c.queue or '(none)'}"))
            continue
        assigned.append((c.call_id, who[turn[c.queue or ""] % len(who)]))
        turn[c.queue or ""] += 1
    return Plan(tuple(assigned), tuple(skipped))


def parse_queues(items: Sequence[str]) -> dict[str, list[str]]:
    """reviewer=queue1,queue2 pairs (the CLI's --covers, the assignment form's lines)."""
    out: dict[str, list[str]] = {}
    for item in items:
        who, sep, qs = item.partition("=")
        queues = [q.strip() for q in qs.split(",") if q.strip()]
        if not sep or not who.strip() or not queues:
            raise WorkflowError(None, f"give reviewer=queue1,queue2 (e.g. ana=billing,sales), not {item!r}")
        out.setdefault(who.strip(), []).extend(queues)
    return out


# ---------------------------------------------------------------------------------------------
# where the calls come from


def sample_calls(con: duckdb.DuckDBPyConnection, sample_id: str) -> list[CallRef]:
    """A drawn sample's calls in draw order."""
    if not con.execute("SELECT 1 FROM samples WHERE sample_id = ?", [sample_id]).fetchone():
        raise WorkflowError(None, f"no sample {sample_id!r} (draw one with `callqa sample`)")
    rows = con.execute(
        """SELECT s.call_id, c.queue FROM sample_calls s JOIN calls c USING (call_id)
           WHERE s.sample_id = ? ORDER BY s.draw""",
        [sample_id],
    ).fetchall()
    return [CallRef(r[0], r[1]) for r in rows]


def queue_calls(con: duckdb.DuckDBPyConnection, day: date) -> list[CallRef]:
    """A day's flagged calls, worst first (the queue's order), one per call."""
    rows = con.execute(
        """SELECT call_id, any_value(queue) FROM flagged_queue WHERE day = ? GROUP BY call_id
           ORDER BY bool_or(auto_fail) DESC, min(percent) ASC NULLS FIRST,
           max(scored_at) DESC, call_id""",
        [day],
    ).fetchall()
    return [CallRef(r[0], r[1]) for r in rows]


def current(con: duckdb.DuckDBPyConnection, call_ids: Sequence[str] | None = None) -> dict[str, str]:
    """call_id -> reviewer it is assigned to now (all calls, or those given)."""
    if call_ids is None:
        rows = con.execute("SELECT call_id, reviewer FROM current_assignments").fetchall()
    else:
        rows = con.execute(
            "SELECT call_id, reviewer FROM current_assignments WHERE call_id IN (SELECT unnest(?))", [list(call_ids)]
        ).fetchall()
    return dict(rows)


def assigned_to(con: duckdb.DuckDBPyConnection, reviewer: str, limit: int = 500) -> list[dict[str, Any]]:
    """The calls assigned to `reviewer` now, with their workflow state, oldest assignment first."""
    cur = con.execute(
        f"""SELECT a.call_id, c.file_name, c.agent_id, c.queue, a.assigned_at, a.assigned_by, a.source,
                   coalesce(w.state, 'machine_scored') AS state
            FROM current_assignments a JOIN calls c USING (call_id)
            LEFT JOIN (SELECT call_id, arg_max(state, seq) AS state FROM workflow_latest GROUP BY call_id) w
              USING (call_id)
            WHERE a.reviewer = ? ORDER BY a.assigned_at, a.call_id LIMIT {int(limit)}""",
        [reviewer],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def assign(
    con: duckdb.DuckDBPyConnection,
    calls: Sequence[CallRef],
    reviewers: Sequence[str],
    by: Actor,
    source: str,
    method: str = "round_robin",
    queues: Mapping[str, Sequence[str]] | None = None,
    reassign: bool = False,
) -> Batch:
    """Plan and store one assignment batch (supervisors and admins); calls already assigned are skipped
    unless `reassign`."""
    if by.role not in ASSIGNERS:
        raise WorkflowError(None, f"a {by.role} may not assign calls: that is for supervisors")
    if not calls:
        raise WorkflowError(None, f"{source}: no calls to assign")
    already = None if reassign else current(con, [c.call_id for c in calls])
    p = plan(calls, reviewers, method, queues, already)
    batch_id = uuid.uuid4().hex[:12]
    at = now()
    names = list(dict.fromkeys(r.strip() for r in reviewers if r.strip()))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO assignment_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [batch_id, at, by.name, source, method, names, len(p.assigned), len(p.skipped)],
        )
        for i, (cid, r) in enumerate(p.assigned):
            con.execute("INSERT INTO assignments VALUES (?, ?, ?, ?, ?)", [batch_id, cid, r, i, at])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return Batch(batch_id, source, method, p)
