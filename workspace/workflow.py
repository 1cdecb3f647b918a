"""The review workflow of a graded call: machine-scored → in review → shared with the agent → acknowledged
or disputed → final (the supervisor's decision).

State is per (call, scorecard). Every transition is an entry of the keyed review chain (audit_log, kind
'workflow', callqa.workspace.audited), so it is append-only and `callqa audit` verifies it; the current
state is the newest transition (views `workflow_latest`, `workflow_state`), 'machine_scored' before any.

Who may do what (RULES): a reviewer (or supervisor) starts a review and shares it; the agent whose call it
is acknowledges it or disputes it with a reason, within `workflow.dispute_window_days` of the share (the
deadline is fixed in the share's entry, so a later change of the setting moves no deadline); a supervisor
decides a dispute (upheld, or changed with the corrected verdicts recorded as reviews) or finalises an
acknowledged call, or a shared one whose window closed unanswered. Admins may do everything (the CLI acts
as an admin, recording the OS user); agents act on their own calls only. Anything else raises
WorkflowError saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import duckdb

from callqa.pipeline.pii import RedactionOptions
from callqa.pipeline.store import StoreError
from callqa.workspace import audited
from callqa.workspace.ledger import now
from callqa.workspace.qa import add_review, resolve_call

State = Literal["machine_scored", "in_review", "shared", "acknowledged", "disputed", "final"]
Action = Literal["start_review", "share", "acknowledge", "dispute", "decide", "finalise"]
Role = Literal["admin", "supervisor", "reviewer", "agent", "analyst"]
Decision = Literal["upheld", "changed"]
STATES: tuple[str, ...] = get_args(State)
ACTIONS: tuple[str, ...] = get_args(Action)
ROLES: tuple[str, ...] = get_args(Role)
WINDOW_DAYS_RANGE = (1, 90)  # as Contact Lens allows for agent review requests


class WorkflowError(StoreError):
    stage = "workflow"


@dataclass(frozen=True)
class Rule:
    from_states: tuple[str, ...]
    to_state: str
    roles: frozenset[str]
    needs_comment: bool = False
    label: str = ""


RULES: dict[str, Rule] = {
    "start_review": Rule(
        ("machine_scored",), "in_review", frozenset({"reviewer", "supervisor", "admin"}), False, "start review"
    ),
    "share": Rule(
        ("in_review",), "shared", frozenset({"reviewer", "supervisor", "admin"}), False, "share with the agent"
    ),
    "acknowledge": Rule(("shared",), "acknowledged", frozenset({"agent", "admin"}), False, "acknowledge"),
    "dispute": Rule(("shared",), "disputed", frozenset({"agent", "admin"}), True, "dispute"),
    "decide": Rule(("disputed",), "final", frozenset({"supervisor", "admin"}), True, "decide the dispute"),
    "finalise": Rule(("acknowledged", "shared"), "final", frozenset({"supervisor", "admin"}), False, "finalise"),
}


@dataclass(frozen=True)
class Actor:
    """Who acts: the logged-in user (web) or the OS user as admin (CLI). agent_id: the agent a user is."""

    name: str
    role: str
    agent_id: str | None = None


@dataclass(frozen=True)
class CallState:
    call_id: str
    scorecard_id: str
    scorecard_version: int
    agent_id: str | None
    state: str
    shared_at: datetime | None = None
    respond_by: datetime | None = None


@dataclass(frozen=True)
class Change:
    """A corrected verdict a supervisor's 'changed' decision records (as a review)."""

    criterion_id: str
    verdict: str


@dataclass(frozen=True)
class Transition:
    seq: int
    mac: str
    call_id: str
    scorecard_id: str
    action: str
    from_state: str
    to_state: str
    actor: str
    role: str
    decision: str | None
    respond_by: datetime | None
    comment: str | None
    review_seqs: tuple[int, ...] = ()


def check_window_days(days: int) -> int:
    lo, hi = WINDOW_DAYS_RANGE
    if not isinstance(days, int) or not lo <= days <= hi:
        raise WorkflowError(
            None, f"workflow.dispute_window_days must be a whole number from {lo} to {hi}, not {days!r}"
        )
    return days


def _window_closed(current: CallState, at: datetime) -> bool:
    return current.respond_by is not None and at > current.respond_by


def check(
    action: str,
    current: CallState,
    actor: Actor,
    at: datetime,
    comment: str | None = None,
    decision: str | None = None,
    changes: Sequence[Change] = (),
) -> str:
    """The state `action` leads to from `current`, or WorkflowError saying why it is not allowed now."""
    rule = RULES.get(action)
    if rule is None:
        raise WorkflowError(None, f"unknown workflow action {action!r}; the actions are: {', '.join(ACTIONS)}")
    if actor.role not in rule.roles:
        who = ", ".join(sorted(rule.roles))
        raise WorkflowError(None, f"a {actor.role} may not {rule.label}: that is for {who}")
    if current.state not in rule.from_states:
        raise WorkflowError(
            None,
            f"cannot {rule.label} call {current.call_id[:12]} ({current.scorecard_id}): it is {current.state}, "
            f"and {action} applies only to a call that is {' or '.join(rule.from_states)}",
        )
    if actor.role == "agent" and (actor.agent_id is None or actor.agent_id != current.agent_id):
        raise WorkflowError(
            None, f"an agent may {rule.label} only their own calls; call {current.call_id[:12]} is not yours"
        )
    if rule.needs_comment and not (comment and comment.strip()):
        raise WorkflowError(None, f"to {rule.label}, give a comment saying why")
    if action in ("acknowledge", "dispute") and _window_closed(current, at):
        raise WorkflowError(
            None,
            f"the window to acknowledge or dispute call {current.call_id[:12]} closed at "
            f"{current.respond_by:%Y-%m-%d %H:%M} UTC",
        )
    if action == "finalise" and current.state == "shared" and not _window_closed(current, at):
        raise WorkflowError(
            None,
            f"the agent may still acknowledge or dispute call {current.call_id[:12]} until "
            f"{current.respond_by:%Y-%m-%d %H:%M} UTC; finalise it after that, or once they acknowledge",
        )
    if action == "decide":
        if decision not in ("upheld", "changed"):
            raise WorkflowError(None, f"a decision is upheld or changed, not {decision!r}")
        if decision == "changed" and not changes:
            raise WorkflowError(None, "a 'changed' decision names the corrected verdicts (criterion=verdict)")
        if decision == "upheld" and changes:
            raise WorkflowError(None, "an 'upheld' decision keeps the verdicts: give no changes, or decide 'changed'")
    elif decision is not None or changes:
        raise WorkflowError(None, "only a supervisor's decide takes a decision and changes")
    return rule.to_state


def allowed_actions(current: CallState, actor: Actor, at: datetime | None = None) -> list[str]:
    """The actions `actor` could take on the call now (the buttons a page shows), in RULES order."""
    at = at or now()
    out = []
    for action, rule in RULES.items():
        try:
            check(
                action,
                current,
                actor,
                at,
                comment="x" if rule.needs_comment else None,
                decision="upheld" if action == "decide" else None,
            )
        except WorkflowError:
            continue
        out.append(action)
    return out


# ---------------------------------------------------------------------------------------------
# reading


def _scorecard(con: duckdb.DuckDBPyConnection, call_id: str, scorecard_id: str | None) -> tuple[str, int]:
    rows = con.execute(
        "SELECT scorecard_id, max(scorecard_version) FROM call_scores WHERE call_id = ? GROUP BY 1 ORDER BY 1",
        [call_id],
    ).fetchall()
    if scorecard_id is not None:
        rows = [r for r in rows if r[0] == scorecard_id]
    if not rows:
        which = f" with scorecard {scorecard_id!r}" if scorecard_id else ""
        raise WorkflowError(None, f"call {call_id[:12]} has no score{which} (unscorable calls have no workflow)")
    if len(rows) > 1:
        raise WorkflowError(
            None, f"call {call_id[:12]} was scored with {', '.join(r[0] for r in rows)}: say which scorecard"
        )
    return str(rows[0][0]), int(rows[0][1])


def state_of(con: duckdb.DuckDBPyConnection, ref: str, scorecard_id: str | None = None) -> CallState:
    cid = resolve_call(con, ref)
    card, version = _scorecard(con, cid, scorecard_id)
    agent = con.execute("SELECT agent_id FROM calls WHERE call_id = ?", [cid]).fetchone()
    row = con.execute(
        "SELECT state, shared_at, respond_by FROM workflow_latest WHERE call_id = ? AND scorecard_id = ?", [cid, card]
    ).fetchone()
    state, shared_at, respond_by = row if row else ("machine_scored", None, None)
    return CallState(cid, card, version, agent[0] if agent else None, state, shared_at, respond_by)


def history(con: duckdb.DuckDBPyConnection, call_id: str) -> list[dict[str, Any]]:
    """Every transition of the call, oldest first (with comments, unless erased)."""
    cur = con.execute(
        """SELECT seq, created_at, actor, actor_role, scorecard_id, action, from_state, to_state, decision,
                  respond_by, comment FROM workflow_transitions WHERE call_id = ? ORDER BY seq""",
        [call_id],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def calls_in_state(
    con: duckdb.DuckDBPyConnection, state: str, agent_id: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Calls now in `state` (oldest first: the longest waiting is dealt with first), optionally one agent's,
    with the comment of the transition that put them there (a dispute's reason)."""
    if state not in STATES:
        raise WorkflowError(None, f"unknown state {state!r}; the states are: {', '.join(STATES)}")
    if state == "machine_scored":
        raise WorkflowError(None, "machine_scored is every graded call no one has touched: use the queue")
    params: list[Any] = [state]
    extra = ""
    if agent_id is not None:
        extra, params = "AND c.agent_id = ?", [state, agent_id]
    cur = con.execute(
        f"""SELECT w.call_id, w.scorecard_id, c.file_name, c.agent_id, c.queue, w.state, w.since, w.actor,
                   w.shared_at, w.respond_by, t.comment
            FROM workflow_latest w JOIN calls c ON c.call_id = w.call_id
            LEFT JOIN workflow_transitions t ON t.seq = w.seq
            WHERE w.state = ? {extra} ORDER BY w.since, w.call_id LIMIT {int(limit)}""",
        params,
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


# ---------------------------------------------------------------------------------------------
# writing


def transition(
    con: duckdb.DuckDBPyConnection,
    ref: str,
    action: str,
    actor: Actor,
    *,
    comment: str | None = None,
    decision: str | None = None,
    changes: Sequence[Change] = (),
    scorecard_id: str | None = None,
    window_days: int = 7,
    at: datetime | None = None,
    key_file: Path | str | None = None,
    redaction: RedactionOptions | None = RedactionOptions(),
) -> Transition:
    """Apply `action` to the call as `actor` and append it to the chain; WorkflowError when not allowed.

    `at` is the time the rules are judged at (tests move it; entries are stamped with the real time).
    A 'changed' decision first records each corrected verdict as a review by the supervisor. The caller's
    connection is held open for writing throughout, so no other writer can move the state in between."""
    if not actor.name.strip():
        raise WorkflowError(None, "a workflow action needs the name of who takes it")
    if actor.role not in ROLES:
        raise WorkflowError(None, f"unknown role {actor.role!r}; the roles are: {', '.join(ROLES)}")
    at = at or now()
    window_days = check_window_days(window_days)
    note = audited.clean_note(comment, redaction)
    current = state_of(con, ref, scorecard_id)
    to_state = check(action, current, actor, at, note, decision, changes)
    review_seqs = []
    for ch in changes:  # checked before any is written: a bad criterion must not leave half a decision
        if ch.verdict not in ("pass", "fail", "na"):
            raise WorkflowError(None, f"verdict for {ch.criterion_id!r} must be pass, fail or na, not {ch.verdict!r}")
    known = {
        r[0]
        for r in con.execute(
            """SELECT criterion_id FROM criterion_results
               WHERE call_id = ? AND scorecard_id = ? AND scorecard_version = ?""",
            [current.call_id, current.scorecard_id, current.scorecard_version],
        ).fetchall()
    }
    unknown = [ch.criterion_id for ch in changes if ch.criterion_id not in known]
    if unknown:
        raise WorkflowError(
            None, f"no criterion {', '.join(map(repr, unknown))} on this call; it has: {', '.join(sorted(known))}"
        )
    for ch in changes:
        row = add_review(
            con,
            current.call_id,
            ch.criterion_id,
            ch.verdict,
            actor.name,
            note,
            current.scorecard_id,
            key_file=key_file,
            redaction=None,  # the note is redacted already
        )
        review_seqs.append(int(row["seq"]))
    respond_by = at + timedelta(days=window_days) if action == "share" else None

    def build(con: duckdb.DuckDBPyConnection) -> list[audited.Pending]:
        again = state_of(con, current.call_id, current.scorecard_id)
        if again.state != current.state:  # cannot happen while this connection writes; checked anyway
            raise WorkflowError(
                None, f"call {current.call_id[:12]} moved to {again.state} meanwhile; nothing was written"
            )
        detail: dict[str, Any] = {
            "action": action,
            "role": actor.role,
            "scorecard_id": current.scorecard_id,
            "scorecard_version": current.scorecard_version,
            "from_state": current.state,
            "to_state": to_state,
        }
        if decision is not None:
            detail["decision"] = decision
            detail["changes"] = [[ch.criterion_id, ch.verdict] for ch in changes]
            detail["review_seqs"] = review_seqs
        if respond_by is not None:
            detail["respond_by"] = respond_by.isoformat(timespec="seconds")
            detail["window_days"] = window_days
        if actor.agent_id is not None:
            detail["agent_id"] = actor.agent_id
        return [audited.Pending("workflow", actor.name.strip(), f"workflow {action}", (current.call_id,), detail, note)]

    (seq, mac), *_ = audited.append(con, build, key_file)
    return Transition(
        seq,
        mac,
        current.call_id,
        current.scorecard_id,
        action,
        current.state,
        to_state,
        actor.name.strip(),
        actor.role,
        decision,
        respond_by.replace(microsecond=0) if respond_by else None,
        note,
        tuple(review_seqs),
    )


def parse_changes(items: Sequence[str]) -> list[Change]:
    """criterion=verdict pairs (the CLI's --change, the decision form's lines)."""
    out = []
    for item in items:
        crit, sep, verdict = item.partition("=")
        if not sep or not crit.strip() or not verdict.strip():
            raise WorkflowError(None, f"a change is criterion=verdict (e.g. greeting=pass), not {item!r}")
        out.append(Change(crit.strip(), verdict.strip().lower()))
    return out
