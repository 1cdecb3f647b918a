"""Calibration sessions: a supervisor's set of calls, scored blind by a set of reviewers, then compared.

Each reviewer scores every criterion of each call in one submission. Until they have submitted a call
they see neither the other reviewers' verdicts on it nor (when the session hides it, the default
`workflow.calibration_hide_machine`) the machine's; a submission is final. Results (agreement between
reviewers: mean pairwise agreement, Fleiss' kappa and pairwise Cohen's kappa; each reviewer against the
machine: agreement and Cohen's kappa, per criterion) are open to supervisors and admins outside the
session, and to a participant once they have submitted every call.

Calibration verdicts are not the calls' reviews: they are chain entries of kind 'calibration' (view
`calibration_scores`), audited like reviews but never in `reviews`, latest_reviews or review_agreement.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from callqa.pipeline.pii import RedactionOptions
from callqa.workspace import audited
from callqa.workspace.agreement import Kappa, cohen, fleiss, mean_pairwise_agreement, percent_agreement
from callqa.workspace.ledger import now
from callqa.workspace.qa import resolve_call
from callqa.workspace.workflow import Actor, WorkflowError

VERDICTS = ("pass", "fail", "na")
OVERSEERS = frozenset({"supervisor", "admin"})  # may create sessions and read any session's results


@dataclass(frozen=True)
class SessionCall:
    call_id: str
    file_name: str
    scorecard_id: str
    scorecard_version: int
    position: int


@dataclass(frozen=True)
class Session:
    session_id: str
    name: str
    created_at: datetime
    created_by: str
    hide_machine: bool
    calls: tuple[SessionCall, ...]
    reviewers: tuple[str, ...]

    def call(self, call_id: str) -> SessionCall:
        for c in self.calls:
            if c.call_id == call_id:
                return c
        raise WorkflowError(None, f"call {call_id[:12]} is not in calibration session {self.session_id}")


@dataclass(frozen=True)
class CriterionView:
    """One criterion of one call as a given reviewer may see it now (None: hidden, or none given)."""

    criterion_id: str
    section_id: str
    machine: str | None
    rationale: str | None
    mine: str | None
    others: dict[str, str] | None  # reviewer -> verdict; None while blind


@dataclass(frozen=True)
class CallView:
    session_id: str
    call: SessionCall
    submitted: bool
    machine_hidden: bool
    others_hidden: bool
    criteria: tuple[CriterionView, ...]


@dataclass(frozen=True)
class PairKappa:
    a: str
    b: str
    agreement: float | None
    kappa: Kappa


@dataclass(frozen=True)
class CriterionAgreement:
    criterion_id: str
    n_calls: int  # calls with at least two reviewers' verdicts
    reviewer_agreement: float | None  # mean share of agreeing reviewer pairs per call
    fleiss: Kappa  # over the calls every reviewer scored
    pairwise: tuple[PairKappa, ...]
    mean_pairwise_kappa: float | None  # mean of the defined pairwise kappas
    machine_n: int  # (reviewer, call) verdicts compared with the machine's
    machine_agreement: float | None
    machine_kappa: Kappa
    per_reviewer_machine: dict[str, Kappa] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionResults:
    session: Session
    submitted: dict[str, int]  # reviewer -> calls submitted
    criteria: tuple[CriterionAgreement, ...]


# ---------------------------------------------------------------------------------------------
# creating and reading sessions


def _current_card(con: duckdb.DuckDBPyConnection, call_id: str, scorecard_id: str | None) -> tuple[str, int]:
    rows = con.execute(
        "SELECT scorecard_id, max(scorecard_version) FROM call_scores WHERE call_id = ? GROUP BY 1 ORDER BY 1",
        [call_id],
    ).fetchall()
    if scorecard_id is not None:
        rows = [r for r in rows if r[0] == scorecard_id]
    if len(rows) != 1:
        why = "has no score" if not rows else f"was scored with {', '.join(r[0] for r in rows)}: give the scorecard"
        raise WorkflowError(None, f"call {call_id[:12]} {why}")
    return str(rows[0][0]), int(rows[0][1])


def create_session(
    con: duckdb.DuckDBPyConnection,
    name: str,
    call_refs: Sequence[str],
    reviewers: Sequence[str],
    creator: Actor,
    *,
    hide_machine: bool = True,
    scorecard_id: str | None = None,
    key_file: Path | str | None = None,
) -> Session:
    """A new session (recorded in the chain, kind 'calibration', action 'create'); supervisors and admins."""
    if creator.role not in OVERSEERS:
        raise WorkflowError(None, f"a {creator.role} may not create calibration sessions: that is for supervisors")
    if not name.strip():
        raise WorkflowError(None, "a calibration session needs a name")
    names = list(dict.fromkeys(r.strip() for r in reviewers if r.strip()))
    if len(names) < 2:
        raise WorkflowError(None, "a calibration session needs at least two reviewers (agreement is between people)")
    if not call_refs:
        raise WorkflowError(None, "a calibration session needs at least one call")
    ids = list(dict.fromkeys(resolve_call(con, ref) for ref in call_refs))
    cards = [_current_card(con, cid, scorecard_id) for cid in ids]
    session_id = uuid.uuid4().hex[:12]

    def build(con: duckdb.DuckDBPyConnection) -> list[audited.Pending]:
        con.execute(
            "INSERT INTO calibration_sessions VALUES (?, ?, ?, ?, ?, NULL)",
            [session_id, name.strip(), now(), creator.name, hide_machine],
        )
        for i, (cid, (card, version)) in enumerate(zip(ids, cards)):
            con.execute(
                "INSERT INTO calibration_session_calls VALUES (?, ?, ?, ?, ?)", [session_id, cid, card, version, i]
            )
        for r in names:
            con.execute("INSERT INTO calibration_session_reviewers VALUES (?, ?)", [session_id, r])
        detail = {
            "action": "create",
            "session_id": session_id,
            "reviewers": names,
            "hide_machine": hide_machine,
            "role": creator.role,
        }
        return [audited.Pending("calibration", creator.name, "calibration session", tuple(ids), detail)]

    ((seq, _),) = audited.append(con, build, key_file)
    con.execute("UPDATE calibration_sessions SET seq = ? WHERE session_id = ?", [seq, session_id])
    return get_session(con, session_id)


def get_session(con: duckdb.DuckDBPyConnection, session_id: str) -> Session:
    row = con.execute(
        "SELECT session_id, name, created_at, created_by, hide_machine FROM calibration_sessions WHERE session_id = ?",
        [session_id],
    ).fetchone()
    if row is None:
        raise WorkflowError(None, f"no calibration session {session_id!r}")
    calls = con.execute(
        """SELECT s.call_id, c.file_name, s.scorecard_id, s.scorecard_version, s.position
           FROM calibration_session_calls s JOIN calls c USING (call_id) WHERE s.session_id = ? ORDER BY s.position""",
        [session_id],
    ).fetchall()
    reviewers = con.execute(
        "SELECT reviewer FROM calibration_session_reviewers WHERE session_id = ? ORDER BY reviewer", [session_id]
    ).fetchall()
    return Session(
        row[0],
        row[1],
        row[2],
        row[3],
        bool(row[4]),
        tuple(SessionCall(*c) for c in calls),
        tuple(r[0] for r in reviewers),
    )


def list_sessions(con: duckdb.DuckDBPyConnection, reviewer: str | None = None) -> list[dict[str, Any]]:
    """Sessions, newest first (only those `reviewer` is in, when given), with their progress."""
    extra, params = "", []
    if reviewer is not None:
        extra, params = (
            "WHERE s.session_id IN (SELECT session_id FROM calibration_session_reviewers WHERE reviewer = ?)",
            [reviewer],
        )
    cur = con.execute(
        f"""SELECT s.session_id, s.name, s.created_at, s.created_by, s.hide_machine,
                   (SELECT count(*) FROM calibration_session_calls c WHERE c.session_id = s.session_id) AS calls,
                   (SELECT count(*) FROM calibration_session_reviewers r
                     WHERE r.session_id = s.session_id) AS reviewers,
                   (SELECT count(DISTINCT (k.reviewer, k.call_id)) FROM calibration_scores k
                     WHERE k.session_id = s.session_id) AS submissions
            FROM calibration_sessions s {extra} ORDER BY s.created_at DESC, s.session_id""",
        params,
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _criteria(con: duckdb.DuckDBPyConnection, c: SessionCall) -> list[tuple[str, str, str, str]]:
    """(criterion_id, section_id, machine result, rationale) of the call's scorecard version."""
    return [
        (r[0], r[1], r[2], r[3])
        for r in con.execute(
            """SELECT criterion_id, section_id, result, rationale FROM criterion_results
               WHERE call_id = ? AND scorecard_id = ? AND scorecard_version = ? ORDER BY section_id, criterion_id""",
            [c.call_id, c.scorecard_id, c.scorecard_version],
        ).fetchall()
    ]


def _scores(con: duckdb.DuckDBPyConnection, session_id: str) -> dict[tuple[str, str], dict[str, str]]:
    """(reviewer, call_id) -> {criterion: verdict} for the session."""
    out: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for reviewer, cid, crit, verdict in con.execute(
        "SELECT reviewer, call_id, criterion_id, verdict FROM calibration_scores WHERE session_id = ? ORDER BY seq",
        [session_id],
    ).fetchall():
        out[(reviewer, cid)][crit] = verdict
    return out


def submitted_calls(con: duckdb.DuckDBPyConnection, session_id: str, reviewer: str) -> set[str]:
    return {cid for (r, cid) in _scores(con, session_id) if r == reviewer}


# ---------------------------------------------------------------------------------------------
# blind scoring


def _may_view(session: Session, viewer: Actor) -> bool:
    """True for a participant; an overseer outside the session sees everything; anyone else is refused."""
    if viewer.name in session.reviewers:
        return True
    if viewer.role in OVERSEERS:
        return False
    raise WorkflowError(None, f"{viewer.name} is not a reviewer in calibration session {session.session_id}")


def call_view(con: duckdb.DuckDBPyConnection, session_id: str, call_ref: str, viewer: Actor) -> CallView:
    """A call of the session as `viewer` may see it: blind until they submit it (see the module doc)."""
    session = get_session(con, session_id)
    c = session.call(resolve_call(con, call_ref))
    participant = _may_view(session, viewer)
    scores = _scores(con, session_id)
    mine = scores.get((viewer.name, c.call_id), {})
    submitted = bool(mine)
    others_hidden = participant and not submitted
    machine_hidden = participant and not submitted and session.hide_machine
    others_by = {r: v for (r, cid), v in scores.items() if cid == c.call_id and r != viewer.name}
    rows = tuple(
        CriterionView(
            crit,
            section,
            None if machine_hidden else machine,
            None if machine_hidden else rationale,
            mine.get(crit),
            None if others_hidden else {r: v[crit] for r, v in sorted(others_by.items()) if crit in v},
        )
        for crit, section, machine, rationale in _criteria(con, c)
    )
    return CallView(session_id, c, submitted, machine_hidden, others_hidden, rows)


def submit(
    con: duckdb.DuckDBPyConnection,
    session_id: str,
    call_ref: str,
    reviewer: Actor,
    verdicts: Mapping[str, str],
    comments: Mapping[str, str] | None = None,
    *,
    key_file: Path | str | None = None,
    redaction: RedactionOptions | None = RedactionOptions(),
    entered_by: str | None = None,
) -> list[int]:
    """Record `reviewer`'s verdict on every criterion of one call; returns the chain positions.

    All criteria at once, once: a partial or repeated submission is refused, so what a reviewer gave
    before seeing the others is what counts. `entered_by`: who typed it when not the reviewer (CLI)."""
    session = get_session(con, session_id)
    if reviewer.name not in session.reviewers:
        raise WorkflowError(None, f"{reviewer.name} is not a reviewer in calibration session {session_id}")
    c = session.call(resolve_call(con, call_ref))
    criteria = {crit: section for crit, section, _, _ in _criteria(con, c)}
    given = {k.strip(): str(v).strip().lower() for k, v in verdicts.items()}
    unknown = sorted(set(given) - set(criteria))
    missing = sorted(set(criteria) - set(given))
    if unknown:
        raise WorkflowError(
            None, f"no criterion {', '.join(map(repr, unknown))} on this call; it has: {', '.join(sorted(criteria))}"
        )
    if missing:
        raise WorkflowError(None, f"score every criterion of the call; missing: {', '.join(missing)}")
    bad = {k: v for k, v in given.items() if v not in VERDICTS}
    if bad:
        k, v = next(iter(bad.items()))
        raise WorkflowError(None, f"verdict for {k!r} must be pass, fail or na, not {v!r}")
    notes = {k: audited.clean_note(v, redaction) for k, v in (comments or {}).items() if k in criteria}

    def build(con: duckdb.DuckDBPyConnection) -> list[audited.Pending]:
        if (reviewer.name, c.call_id) in _scores(con, session_id):
            raise WorkflowError(
                None,
                f"{reviewer.name} has already submitted call {c.call_id[:12]} in this session; "
                "calibration scores are final",
            )
        out = []
        for crit in sorted(criteria):
            detail: dict[str, Any] = {
                "action": "score",
                "session_id": session_id,
                "scorecard_id": c.scorecard_id,
                "scorecard_version": c.scorecard_version,
                "criterion_id": crit,
                "verdict": given[crit],
            }
            if entered_by and entered_by != reviewer.name:
                detail["entered_by"] = entered_by
            out.append(
                audited.Pending(
                    "calibration", reviewer.name, "calibration score", (c.call_id,), detail, notes.get(crit)
                )
            )
        return out

    return [seq for seq, _ in audited.append(con, build, key_file)]


# ---------------------------------------------------------------------------------------------
# results


def agreement(
    criteria: Sequence[str],
    reviewers: Sequence[str],
    scores: Mapping[tuple[str, str], Mapping[str, str]],
    machine: Mapping[tuple[str, str], str],
) -> list[CriterionAgreement]:
    """Per criterion: reviewer-vs-reviewer and reviewer-vs-machine agreement and kappa.

    scores: (reviewer, call) -> {criterion: verdict}; machine: (call, criterion) -> verdict. Pure."""
    out = []
    for crit in criteria:
        by_call: dict[str, dict[str, str]] = defaultdict(dict)
        for (r, cid), v in scores.items():
            if crit in v:
                by_call[cid][r] = v[crit]
        multi = [v for v in by_call.values() if len(v) >= 2]
        full = [[v[r] for r in reviewers] for v in by_call.values() if all(r in v for r in reviewers)]
        pairs = []
        for i, a in enumerate(reviewers):
            for b in reviewers[i + 1 :]:
                both = [cid for cid, v in sorted(by_call.items()) if a in v and b in v]
                va, vb = [by_call[c][a] for c in both], [by_call[c][b] for c in both]
                pairs.append(PairKappa(a, b, percent_agreement(va, vb), cohen(va, vb)))
        defined = [p.kappa.value for p in pairs if p.kappa.value is not None]
        human, auto = [], []
        per_reviewer: dict[str, tuple[list[str], list[str]]] = {r: ([], []) for r in reviewers}
        for (r, cid), v in sorted(scores.items()):
            m = machine.get((cid, crit))
            if crit in v and m is not None:
                human.append(v[crit])
                auto.append(m)
                if r in per_reviewer:
                    per_reviewer[r][0].append(v[crit])
                    per_reviewer[r][1].append(m)
        out.append(
            CriterionAgreement(
                crit,
                len(multi),
                mean_pairwise_agreement([list(v.values()) for v in multi]),
                fleiss(full),
                tuple(pairs),
                round(sum(defined) / len(defined), 4) if defined else None,
                len(human),
                percent_agreement(human, auto),
                cohen(human, auto),
                {r: cohen(h, a) for r, (h, a) in per_reviewer.items()},
            )
        )
    return out


def results(con: duckdb.DuckDBPyConnection, session_id: str, viewer: Actor) -> SessionResults:
    """The session's agreement table; a participant sees it only once they have submitted every call."""
    session = get_session(con, session_id)
    scores = _scores(con, session_id)
    if _may_view(session, viewer):
        left = len(session.calls) - sum(1 for (r, _) in scores if r == viewer.name)
        if left:
            raise WorkflowError(
                None, f"results open once you have submitted every call of the session ({left} left): scoring is blind"
            )
    machine: dict[tuple[str, str], str] = {}
    criteria: list[str] = []
    for c in session.calls:
        for crit, _, result, _ in _criteria(con, c):
            machine[(c.call_id, crit)] = result
            criteria.append(crit)
    submitted = {r: sum(1 for (rv, _) in scores if rv == r) for r in session.reviewers}
    return SessionResults(
        session, submitted, tuple(agreement(list(dict.fromkeys(criteria)), session.reviewers, scores, machine))
    )
