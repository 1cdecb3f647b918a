"""QA reviewer commands: show, review, audit, calibration, sample, rescore."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from callqa.cli.common import DB_OPTION, _fail, _table, console
from callqa.pipeline.types import CallQAError


def _ts(s: float | None) -> str:
    if s is None:
        return "--:--"
    m, sec = divmod(float(s), 60)
    return f"{int(m):02d}:{sec:04.1f}"


_RESULT_STYLE = {"pass": "[green]pass[/]", "fail": "[red]fail[/]", "na": "[dim]n/a[/]"}


def show(
    call: str = typer.Argument(..., help="call_id, a unique id prefix, or the file name"),
    db: Path = DB_OPTION,
    scorecard: str | None = typer.Option(None, "--scorecard", help="only this scorecard id"),
) -> None:
    """A call's transcript with speakers, roles and events inline, then every criterion with its evidence."""
    from callqa.pipeline import store
    from callqa.workspace.qa import call_view

    try:
        con = store.connect(db, read_only=True)
        try:
            v = call_view(con, call)
        finally:
            con.close()
    except CallQAError as e:
        _fail(e)
    c = v.call
    console.print(
        f"[bold]{escape(c['file_name'])}[/]  call {c['call_id'][:16]}  "
        f"agent {c['agent_id'] or '-'}  queue {c['queue'] or '-'}"
    )
    console.print(
        f"{c['duration_s']:.1f} s, {c['channels']} ch @ {c['sample_rate']} Hz, language {c['language']}, "
        f"roles by {c['role_method']} (confidence {c['role_confidence'] or 0:.2f})"
    )
    events_by_time = list(v.events)
    ev_by_id = {e["event_id"]: e for e in v.events}
    console.rule("transcript")
    shown: set[str] = set()
    for u in v.utterances:
        # events that happened before this turn and were not attached to an earlier one (holds, dead air)
        for e in events_by_time:
            if e["event_id"] not in shown and e["start_s"] < u["start_s"] and not (e["start_s"] >= u["start_s"]):
                console.print(
                    f"        [magenta]⟶ {e['type']}[/] {_ts(e['start_s'])}–{_ts(e['end_s'])}  {escape(e['evidence'])}"
                )
                shown.add(e["event_id"])
        role = u["role"]
        colour = {"agent": "cyan", "customer": "yellow"}.get(role, "white")
        emo = (
            f"  [dim]({u['emotion']} {u['emotion_score']:.2f})[/]"
            if u.get("emotion") and u.get("emotion_score") is not None
            else ""
        )
        console.print(
            f"[dim]{_ts(u['start_s'])}[/] [{colour}]{role:>8}[/] [dim]{u['speaker']}[/]  {escape(u['text'])}{emo}"
        )
        for e in events_by_time:
            if (
                e["event_id"] not in shown
                and u["start_s"] <= e["start_s"] <= u["end_s"]
                and e["speaker"] in (u["speaker"], None)
            ):
                console.print(f"        [magenta]⟶ {e['type']}[/] ({e['confidence'] or 0:.2f})")
                shown.add(e["event_id"])
    for e in events_by_time:
        if e["event_id"] not in shown:
            console.print(
                f"        [magenta]⟶ {e['type']}[/] {_ts(e['start_s'])}–{_ts(e['end_s'])}  {escape(e['evidence'])}"
            )
    reviews = {(r["scorecard_id"], r["scorecard_version"], r["criterion_id"]): r for r in v.reviews}
    for s in v.scores:
        if scorecard and s["scorecard_id"] != scorecard:
            continue
        pct = "n/a" if s["percent"] is None else f"{s['percent']:.0f}%"
        console.rule(
            f"{s['scorecard_id']} v{s['scorecard_version']}: {pct} {s['grade']}"
            + ("  [red]AUTO-FAIL[/]" if s["auto_fail"] else "")
        )
        if s["flagged"]:
            console.print(f"[red]flagged:[/] {escape('; '.join(s['flag_reasons']))}")
        t = Table(show_header=True, header_style="bold", box=None)
        for col in ("criterion", "result", "points", "rationale / evidence", "human"):
            t.add_column(col, overflow="fold")
        for r in v.criteria:
            if (r["scorecard_id"], r["scorecard_version"]) != (s["scorecard_id"], s["scorecard_version"]):
                continue
            ev_lines = [
                f"  {_ts(ev_by_id[i]['start_s'])} {ev_by_id[i]['type']}: “{escape(ev_by_id[i]['evidence'][:100])}”"
                for i in (r["evidence_event_ids"] or [])
                if i in ev_by_id
            ]
            h = reviews.get((r["scorecard_id"], r["scorecard_version"], r["criterion_id"]))
            human = f"{h['verdict']} ({h['reviewer']})" if h else ""
            t.add_row(
                r["criterion_id"] + (" [red]*[/]" if r["auto_fail"] else ""),
                _RESULT_STYLE[r["result"]],
                f"{r['points']:g}/{r['max_points']:g}",
                "\n".join([escape(r["rationale"])] + ev_lines),
                human,
            )
        console.print(t)
    if v.metrics:
        console.rule("metrics")
        console.print("  ".join(f"{k}={val:.3g}" for k, val in v.metrics.items() if val is not None))


def review(
    call: str = typer.Argument(..., help="call_id, a unique id prefix, or the file name"),
    criterion: str = typer.Option(..., "--criterion", help="criterion id, e.g. greeting"),
    verdict: str = typer.Option(..., "--verdict", help="pass | fail | na"),
    reviewer: str = typer.Option(..., "--reviewer", help="your name"),
    comment: str | None = typer.Option(None, "--comment"),
    scorecard: str | None = typer.Option(None, "--scorecard", help="scorecard id when several scored the call"),
    db: Path = DB_OPTION,
) -> None:
    """Record a human verdict on one criterion of one call (appended; history is never changed)."""
    from callqa.pipeline import store
    from callqa.workspace.qa import add_review

    try:
        con = store.connect(db)
        try:
            row = add_review(con, call, criterion, verdict, reviewer, comment, scorecard)
        finally:
            con.close()
    except CallQAError as e:
        _fail(e)
    console.print(
        f"review #{row['seq']} recorded: {row['criterion_id']} = {row['verdict']} by {row['reviewer']} "
        f"(machine said {row['auto_result']}; {row['scorecard_id']} v{row['scorecard_version']})"
    )


def audit(db: Path = DB_OPTION) -> None:
    """Check that the review history is intact (every row chained to the previous one by hash)."""
    from callqa.pipeline import store
    from callqa.workspace.qa import verify_reviews

    try:
        con = store.connect(db, read_only=True)
        try:
            problems = verify_reviews(con)
            n = con.execute("SELECT count(*) FROM reviews").fetchone()[0]
        finally:
            con.close()
    except CallQAError as e:
        _fail(e)
    if problems:
        for p in problems:
            console.print(f"[red]✗[/] {p}")
        raise typer.Exit(1)
    console.print(f"[green]✓[/] review history intact ({n} reviews)")


def calibration_cmd(db: Path = DB_OPTION) -> None:
    """Agreement between automatic and human verdicts per criterion (accuracy, Cohen's kappa), worst first."""
    from callqa.pipeline import store
    from callqa.workspace.qa import calibration

    try:
        con = store.connect(db, read_only=True)
        try:
            rows = calibration(con)
        finally:
            con.close()
    except CallQAError as e:
        _fail(e)
    if not rows:
        console.print("no human reviews yet (record some with `callqa review`)")
        return
    console.print(
        _table(
            [
                "scorecard",
                "criterion",
                "reviewed",
                "agree",
                "accuracy",
                "kappa",
                "auto pass / human fail",
                "auto fail / human pass",
            ],
            [
                (
                    r.scorecard_id,
                    r.criterion_id,
                    r.n,
                    r.agree,
                    r.accuracy,
                    "n/a" if r.kappa is None else r.kappa,
                    r.auto_pass_human_fail,
                    r.auto_fail_human_pass,
                )
                for r in rows
            ],
            title="calibration: machine vs human (worst first)",
        )
    )
    worst = [r for r in rows if r.accuracy < 1.0][:3]
    if worst:
        console.print(
            "the machine disagrees most on: " + ", ".join(f"{r.criterion_id} ({r.accuracy:.0%})" for r in worst)
        )


def sample(
    n: int = typer.Option(..., "--n", help="calls to draw"),
    by: str = typer.Option("agent", "--by", help="agent | queue | language | none"),
    seed: int = typer.Option(0, "--seed", help="random seed (recorded, so the draw can be reproduced)"),
    include_flagged: bool = typer.Option(
        False, "--include-flagged", help="also draw calls already in the flagged queue"
    ),
    since: str | None = typer.Option(None, "--since", help="only calls started on or after this date"),
    reviewer: str | None = typer.Option(None, "--by-reviewer", help="who asked for the sample"),
    db: Path = DB_OPTION,
) -> None:
    """Draw a stratified random sample of calls for human review, beyond the flagged ones, and record it."""
    from callqa.pipeline import store
    from callqa.workspace.qa import draw_sample

    try:
        con = store.connect(db)
        try:
            res = draw_sample(con, n, by, seed, include_flagged, since, reviewer)
            names = (
                dict(
                    con.execute(
                        "SELECT call_id, file_name FROM calls WHERE call_id IN (SELECT unnest(?))",
                        [[c for c, _ in res["calls"]]],
                    ).fetchall()
                )
                if res["calls"]
                else {}
            )
        finally:
            con.close()
    except CallQAError as e:
        _fail(e)
    console.print(
        _table(
            ["stratum", "file_name", "call_id"],
            [(s, names.get(c, ""), c[:12]) for c, s in res["calls"]],
            title=f"sample {res['sample_id']}: {res['n_drawn']} calls from {res['strata']} strata (seed {seed})",
        )
    )


def rescore(
    scorecard: str = typer.Option(..., "--scorecard", help="scorecard YAML path or bundled name"),
    db: Path = DB_OPTION,
    all_languages: bool = typer.Option(
        False, "--all-languages", help="also score calls in languages the scorecard is not written for"
    ),
) -> None:
    """Re-apply a scorecard version to every stored call from stored events and metrics (no audio, no ASR)."""
    from callqa.flows.rescore import rescore as rescore_flow
    from callqa.pipeline.scoring import load_scorecard

    if not db.exists():
        _fail(CallQAError(db, "database file does not exist"))
    try:
        load_scorecard(scorecard)  # reject a broken scorecard before starting a flow or opening the database
        summary = rescore_flow(db_path=str(db), scorecard=scorecard, all_languages=all_languages)
    except CallQAError as e:
        _fail(e)
    console.print(
        f"{summary['scorecard_id']} v{summary['version']}: scored {summary['calls_scored']} of "
        f"{summary['calls_stored']} calls in {summary['wall_s']:.1f} s (load {summary['load_s']:.1f}, "
        f"score {summary['score_s']:.1f}, write {summary['write_s']:.1f}); "
        f"flagged {summary['flagged']}; grades {summary['grades']}"
    )
