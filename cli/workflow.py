"""Workflow, calibration-session and assignment commands, for scripts and admins.

The CLI acts as an admin and records the OS user (as `callqa forget` does): the web workspace is where
reviewers, agents and supervisors act under their own logins.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, _table, console
from callqa.pipeline.types import CallQAError

workflow_app = typer.Typer(no_args_is_help=True, help="Move a call through review: start, share, ack, dispute, decide.")
calibrate_app = typer.Typer(no_args_is_help=True, help="Calibration sessions: calls scored blind by several reviewers.")

CALL_ARG = typer.Argument(..., help="call_id, a unique id prefix, or the file name")
SCORECARD_OPTION = typer.Option(None, "--scorecard", help="scorecard id when several scored the call")
COMMENT_OPTION = typer.Option(None, "--comment", help="why (required to dispute or decide); PII is redacted")


def _admin():
    from callqa.workspace.ledger import os_user
    from callqa.workspace.workflow import Actor

    return Actor(os_user(), "admin")


def _move(
    action: str,
    call: str,
    db: Path,
    config: Path | None,
    scorecard: str | None,
    comment: str | None,
    decision: str | None = None,
    changes: list[str] | None = None,
    window_days: int | None = None,
) -> None:
    from callqa.config.settings import load_settings
    from callqa.pipeline.redact import options_from_settings
    from callqa.workspace import workflow
    from callqa.workspace.qa import open_db

    try:
        settings = load_settings(config)
        red = settings.redaction
        with open_db(db) as con:
            t = workflow.transition(
                con,
                call,
                action,
                _admin(),
                comment=comment,
                decision=decision,
                changes=workflow.parse_changes(changes or []),
                scorecard_id=scorecard,
                window_days=window_days if window_days is not None else settings.workflow.dispute_window_days,
                key_file=settings.audit.key_file,
                redaction=options_from_settings(red) if red.enabled else None,
            )
    except CallQAError as e:
        _fail(e)
    due = f"; the agent may respond until {t.respond_by:%Y-%m-%d %H:%M} UTC" if t.respond_by else ""
    reviews = (
        f"; corrected verdicts recorded as reviews #{', #'.join(map(str, t.review_seqs))}" if t.review_seqs else ""
    )
    console.print(
        f"call {t.call_id[:12]} ({t.scorecard_id}): {t.from_state} → {t.to_state} by {t.actor} "
        f"(entry #{t.seq}{due}{reviews})",
        markup=False,
    )


def start(
    call: str = CALL_ARG,
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Start reviewing a machine-scored call."""
    _move("start_review", call, db, config, scorecard, None)


def share(
    call: str = CALL_ARG,
    window_days: int | None = typer.Option(None, "--window-days", help="the agent's window (default: the setting)"),
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Share the review with the agent, who may acknowledge or dispute it within workflow.dispute_window_days."""
    _move("share", call, db, config, scorecard, None, window_days=window_days)


def ack(
    call: str = CALL_ARG,
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Acknowledge a shared review (on the agent's behalf)."""
    _move("acknowledge", call, db, config, scorecard, None)


def dispute(
    call: str = CALL_ARG,
    comment: str | None = COMMENT_OPTION,
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Dispute a shared review with a reason (on the agent's behalf)."""
    _move("dispute", call, db, config, scorecard, comment)


def decide(
    call: str = CALL_ARG,
    decision: str = typer.Option(..., "--decision", help="upheld | changed"),
    change: list[str] = typer.Option([], "--change", help="criterion=verdict, for a changed decision (repeatable)"),
    comment: str | None = COMMENT_OPTION,
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Decide a dispute: the score is upheld, or changed (the corrected verdicts are recorded as reviews)."""
    _move("decide", call, db, config, scorecard, comment, decision, change)


def finalise(
    call: str = CALL_ARG,
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Finalise an acknowledged review, or a shared one whose window closed unanswered."""
    _move("finalise", call, db, config, scorecard, None)


def show_state(call: str = CALL_ARG, db: Path = DB_OPTION) -> None:
    """A call's workflow state and every transition."""
    from callqa.workspace import workflow
    from callqa.workspace.qa import open_db, resolve_call

    try:
        with open_db(db, read_only=True) as con:
            cid = resolve_call(con, call)
            rows = workflow.history(con, cid)
            states = con.execute("SELECT scorecard_id, state FROM workflow_state WHERE call_id = ?", [cid]).fetchall()
    except CallQAError as e:
        _fail(e)
    console.print(_table(["scorecard", "state"], states, title=f"call {cid[:12]}"))
    cols = ["seq", "created_at", "actor", "actor_role", "action", "from_state", "to_state", "decision", "comment"]
    console.print(_table(cols, [tuple(r[c] for c in cols) for r in rows], title="transitions"))


def list_state(
    state: str = typer.Argument(..., help="in_review | shared | acknowledged | disputed | final"),
    agent: str | None = typer.Option(None, "--agent", help="one agent's calls"),
    db: Path = DB_OPTION,
) -> None:
    """The calls now in a state, longest waiting first (disputed: the supervisor's list)."""
    from callqa.workspace import workflow
    from callqa.workspace.qa import open_db

    try:
        with open_db(db, read_only=True) as con:
            rows = workflow.calls_in_state(con, state, agent)
    except CallQAError as e:
        _fail(e)
    cols = ["call_id", "file_name", "agent_id", "queue", "since", "actor", "respond_by", "comment"]
    console.print(_table(cols, [tuple(r[c] for c in cols) for r in rows], title=f"{len(rows)} call(s) {state}"))


for _name, _fn in (
    ("start", start),
    ("share", share),
    ("ack", ack),
    ("dispute", dispute),
    ("decide", decide),
    ("finalise", finalise),
    ("show", show_state),
    ("list", list_state),
):
    workflow_app.command(_name)(_fn)


# ---------------------------------------------------------------------------------------------
# calibration sessions


def calibrate_new(
    name: str = typer.Argument(..., help="what the session is, e.g. 'November greeting'"),
    call: list[str] = typer.Option(..., "--call", help="a call to score (repeatable)"),
    reviewer: list[str] = typer.Option(..., "--reviewer", help="a reviewer's user name (repeatable, two or more)"),
    show_machine: bool | None = typer.Option(None, "--show-machine/--hide-machine", help="default: the setting"),
    scorecard: str | None = SCORECARD_OPTION,
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create a calibration session."""
    from callqa.config.settings import load_settings
    from callqa.workspace import calibration_sessions as cs
    from callqa.workspace.qa import open_db

    try:
        settings = load_settings(config)
        hide = settings.workflow.calibration_hide_machine if show_machine is None else not show_machine
        with open_db(db) as con:
            s = cs.create_session(
                con,
                name,
                call,
                reviewer,
                _admin(),
                hide_machine=hide,
                scorecard_id=scorecard,
                key_file=settings.audit.key_file,
            )
    except CallQAError as e:
        _fail(e)
    console.print(
        f"calibration session {s.session_id}: {len(s.calls)} call(s), reviewers {', '.join(s.reviewers)}"
        f" (machine verdict {'hidden until submitted' if s.hide_machine else 'shown'})",
        markup=False,
    )


def calibrate_score(
    session: str = typer.Argument(..., help="session id"),
    call: str = CALL_ARG,
    verdict: list[str] = typer.Option(..., "--verdict", help="criterion=pass|fail|na, every criterion (repeatable)"),
    reviewer: str | None = typer.Option(None, "--as", help="the reviewer (default: the OS user)"),
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Submit one reviewer's verdicts on every criterion of a call (final)."""
    from callqa.config.settings import load_settings
    from callqa.pipeline.redact import options_from_settings
    from callqa.workspace import calibration_sessions as cs
    from callqa.workspace.ledger import os_user
    from callqa.workspace.qa import open_db
    from callqa.workspace.workflow import Actor, parse_changes

    try:
        settings = load_settings(config)
        red = settings.redaction
        verdicts = {c.criterion_id: c.verdict for c in parse_changes(verdict)}
        with open_db(db) as con:
            seqs = cs.submit(
                con,
                session,
                call,
                Actor(reviewer or os_user(), "reviewer"),
                verdicts,
                key_file=settings.audit.key_file,
                entered_by=os_user(),
                redaction=options_from_settings(red) if red.enabled else None,
            )
    except CallQAError as e:
        _fail(e)
    console.print(f"{len(seqs)} verdict(s) recorded (entries #{seqs[0]}–#{seqs[-1]})")


def calibrate_results(session: str = typer.Argument(..., help="session id"), db: Path = DB_OPTION) -> None:
    """Agreement per criterion: between reviewers (Fleiss' and pairwise Cohen's kappa) and with the machine."""
    from callqa.workspace import calibration_sessions as cs
    from callqa.workspace.qa import open_db

    try:
        with open_db(db, read_only=True) as con:
            res = cs.results(con, session, _admin())
    except CallQAError as e:
        _fail(e)

    def pct(v: float | None) -> str:
        return "" if v is None else f"{100 * v:.0f}%"

    rows = [
        (
            c.criterion_id,
            c.n_calls,
            pct(c.reviewer_agreement),
            c.fleiss.text(),
            "" if c.mean_pairwise_kappa is None else f"{c.mean_pairwise_kappa:.3f}",
            c.machine_n,
            pct(c.machine_agreement),
            c.machine_kappa.text(),
        )
        for c in res.criteria
    ]
    done = ", ".join(f"{r} {n}/{len(res.session.calls)}" for r, n in res.submitted.items())
    cols = ["criterion", "calls", "reviewers agree", "Fleiss κ", "mean pairwise κ", "vs machine n", "agree", "Cohen κ"]
    console.print(_table(cols, rows, title=f"{res.session.name} ({res.session.session_id}): submitted {done}"))


for _name, _fn in (("new", calibrate_new), ("score", calibrate_score), ("results", calibrate_results)):
    calibrate_app.command(_name)(_fn)


# ---------------------------------------------------------------------------------------------
# assignment


def assign(
    reviewer: list[str] = typer.Option(..., "--reviewer", help="a reviewer's user name (repeatable)"),
    sample: str | None = typer.Option(None, "--sample", help="a sample id from `callqa sample`"),
    day: str | None = typer.Option(None, "--day", help="a day's flagged queue: YYYY-MM-DD, today, yesterday"),
    by: str = typer.Option("round_robin", "--by", help="round_robin | by_queue"),
    covers: list[str] = typer.Option([], "--covers", help="by_queue: reviewer=queue1,queue2 (repeatable)"),
    reassign: bool = typer.Option(False, "--reassign", help="also reassign calls assigned before"),
    db: Path = DB_OPTION,
) -> None:
    """Split a sample or a day's flagged queue between reviewers."""
    from callqa.cli.common import _parse_day
    from callqa.workspace import assignment
    from callqa.workspace.qa import open_db

    if (sample is None) == (day is None):
        _fail(CallQAError(None, "give --sample or --day, not both"))
    try:
        with open_db(db) as con:
            if sample is not None:
                calls, source = assignment.sample_calls(con, sample), f"sample:{sample}"
            else:
                d: date = _parse_day(day, "--day")
                calls, source = assignment.queue_calls(con, d), f"queue:{d.isoformat()}"
            b = assignment.assign(con, calls, reviewer, _admin(), source, by, assignment.parse_queues(covers), reassign)
    except CallQAError as e:
        _fail(e)
    counts = b.plan.counts()
    console.print(
        _table(["reviewer", "calls"], sorted(counts.items()), title=f"assignment {b.batch_id} ({source}, {by})")
    )
    for cid, why in b.plan.skipped:
        console.print(f"not assigned: {cid[:12]} ({why})", markup=False)
