"""QA reviewer commands: show, review, audit, forget, calibration, sample, rescore."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, _table, console, err
from callqa.pipeline.types import CallQAError


def _ts(s: float | None) -> str:
    if s is None:
        return "--:--"
    m, sec = divmod(float(s), 60)
    return f"{int(m):02d}:{sec:04.1f}"


_RESULT_STYLE = {"pass": "[green]pass[/]", "fail": "[red]fail[/]", "na": "[dim]n/a[/]"}


def _e(v: object, missing: str = "-") -> str:
    """A stored value as literal text in Rich markup: names, comments and transcripts are user-supplied."""
    return missing if v is None or v == "" else escape(str(v))


def _event_line(e: dict) -> str:
    return f"        [magenta]⟶ {_e(e['type'])}[/] {_ts(e['start_s'])}–{_ts(e['end_s'])}  {_e(e['evidence'], '')}"


def show(
    call: str = typer.Argument(..., help="call_id, a unique id prefix, or the file name"),
    db: Path = DB_OPTION,
    scorecard: str | None = typer.Option(None, "--scorecard", help="only this scorecard id"),
) -> None:
    """A call's transcript with speakers, roles and events inline, then every criterion with its evidence."""
    from callqa.workspace.qa import call_view, open_db

    try:
        with open_db(db, read_only=True) as con:
            v = call_view(con, call)
    except CallQAError as e:
        _fail(e)
    c = v.call
    console.print(
        f"[bold]{_e(c['file_name'])}[/]  call {_e(c['call_id'][:16])}  "
        f"agent {_e(c['agent_id'])}  queue {_e(c['queue'])}"
    )
    console.print(
        f"{c['duration_s']:.1f} s, {c['channels']} ch @ {c['sample_rate']} Hz, language {_e(c['language'])}, "
        f"roles by {_e(c['role_method'])} (confidence {c['role_confidence'] or 0:.2f})"
    )
    events_by_time = list(v.events)
    ev_by_id = {e["event_id"]: e for e in v.events}
    console.rule("transcript")
    shown: set[str] = set()
    for u in v.utterances:
        # events that happened before this turn and were not attached to an earlier one (holds, dead air)
        for e in events_by_time:
            if e["event_id"] not in shown and e["start_s"] < u["start_s"] and not (e["start_s"] >= u["start_s"]):
                console.print(_event_line(e))
                shown.add(e["event_id"])
        role = u["role"]
        colour = {"agent": "cyan", "customer": "yellow"}.get(role, "white")
        emo = (
            f"  [dim]({_e(u['emotion'])} {u['emotion_score']:.2f})[/]"
            if u.get("emotion") and u.get("emotion_score") is not None
            else ""
        )
        label = _e(f"{role or '-':>8}")
        console.print(
            f"[dim]{_ts(u['start_s'])}[/] [{colour}]{label}[/] [dim]{_e(u['speaker'])}[/]  {_e(u['text'], '')}{emo}"
        )
        for e in events_by_time:
            if (
                e["event_id"] not in shown
                and u["start_s"] <= e["start_s"] <= u["end_s"]
                and e["speaker"] in (u["speaker"], None)
            ):
                console.print(f"        [magenta]⟶ {_e(e['type'])}[/] ({e['confidence'] or 0:.2f})")
                shown.add(e["event_id"])
    for e in events_by_time:
        if e["event_id"] not in shown:
            console.print(_event_line(e))
    reviews = {(r["scorecard_id"], r["scorecard_version"], r["criterion_id"]): r for r in v.reviews}
    for s in v.scores:
        if scorecard and s["scorecard_id"] != scorecard:
            continue
        pct = "n/a" if s["percent"] is None else f"{s['percent']:.0f}%"
        console.rule(
            f"{_e(s['scorecard_id'])} v{s['scorecard_version']}: {pct} {_e(s['grade'])}"
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
                f"  {_ts(ev_by_id[i]['start_s'])} {_e(ev_by_id[i]['type'])}: "
                f"“{_e((ev_by_id[i]['evidence'] or '')[:100], '')}”"
                for i in (r["evidence_event_ids"] or [])
                if i in ev_by_id
            ]
            h = reviews.get((r["scorecard_id"], r["scorecard_version"], r["criterion_id"]))
            human = f"{_e(h['verdict'])} ({_e(h['reviewer'])})" if h else ""
            t.add_row(
                _e(r["criterion_id"]) + (" [red]*[/]" if r["auto_fail"] else ""),
                _RESULT_STYLE.get(r["result"], _e(r["result"])),
                f"{r['points']:g}/{r['max_points']:g}",
                "\n".join([_e(r["rationale"], "")] + ev_lines),
                human,
            )
        console.print(t)
    if v.metrics:
        console.rule("metrics")
        console.print("  ".join(f"{_e(k)}={val:.3g}" for k, val in v.metrics.items() if val is not None))


def review(
    call: str = typer.Argument(..., help="call_id, a unique id prefix, or the file name"),
    criterion: str = typer.Option(..., "--criterion", help="criterion id, e.g. greeting"),
    verdict: str = typer.Option(..., "--verdict", help="pass | fail | na"),
    reviewer: str = typer.Option(..., "--reviewer", help="your name"),
    comment: str | None = typer.Option(None, "--comment", help="free text; PII in it is redacted as in transcripts"),
    scorecard: str | None = typer.Option(None, "--scorecard", help="scorecard id when several scored the call"),
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Record a human verdict on one criterion of one call (appended; history is never changed)."""
    from callqa.config.settings import load_settings
    from callqa.pipeline.redact import options_from_settings
    from callqa.workspace.qa import add_review, open_db

    try:
        settings = load_settings(config)
        red = settings.redaction
        with open_db(db) as con:
            row = add_review(
                con,
                call,
                criterion,
                verdict,
                reviewer,
                comment,
                scorecard,
                key_file=settings.audit.key_file,
                redaction=options_from_settings(red) if red.enabled else None,
            )
    except CallQAError as e:
        _fail(e)
    console.print(
        f"review #{row['seq']} recorded: {_e(row['criterion_id'])} = {_e(row['verdict'])} by {_e(row['reviewer'])} "
        f"(machine said {_e(row['auto_result'])}; {_e(row['scorecard_id'])} v{row['scorecard_version']}); "
        f"chain head {row['seq']}:{row['mac'][:16]}"
    )


def audit(
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
    expect_head: str | None = typer.Option(
        None,
        "--expect-head",
        help="SEQ:MAC published elsewhere (a run artifact, a review receipt) that the chain must still hold",
    ),
    seal: bool = typer.Option(
        False,
        "--seal",
        help="after a full check: seal reviews written before the keyed chain, or rewrite a missing or lagging "
        "head file (refused when anything else is wrong)",
    ),
) -> None:
    """Check the review history: every entry's HMAC with the audit key (reviews, workflow transitions,
    calibration verdicts, erasures), the links, no gaps, the head file, and each note's HMAC."""
    from callqa.config.settings import load_settings
    from callqa.workspace import audited, chain
    from callqa.workspace.ledger import database_path, head_path, load_key, os_user
    from callqa.workspace.qa import open_db

    try:
        settings = load_settings(config)
        expect = chain.parse_expected(expect_head) if expect_head else None
        with open_db(db, read_only=not seal) as con:
            head_file = head_path(database_path(con))
            if seal:
                key = chain.writer_key(con, settings.audit.key_file, head_file)
                chain.reseal(con, key, head_file, os_user(), expect)
            key_file = settings.audit.key_file
            key = load_key(key_file)
            rep = chain.verify(con, key, head_file, expect, key_file)
            # workflow transitions and calibration verdicts are chain entries (verified above, named
            # "workflow entry #N"); their free text lives apart in audit_notes, checked against the HMAC
            # the entry recorded
            has_notes = bool(con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'audit_notes'").fetchone())
            note_issues = audited.note_problems(con, key_file) if has_notes and key is not None else []
            kinds = dict(con.execute("SELECT kind, count(*) FROM audit_log GROUP BY kind").fetchall())
            n_notes = int(con.execute("SELECT count(*) FROM audit_notes").fetchone()[0]) if has_notes else 0
            last = chain.tail(con)
    except CallQAError as e:
        _fail(e)
    for note in rep.notes:
        console.print(f"[dim]·[/] {_e(note)}")
    if rep.problems or note_issues:
        for text in [p.text for p in rep.problems] + note_issues:
            console.print(f"[red]✗[/] {_e(text)}")
        raise typer.Exit(1)
    head = f"; head {last[0]}:{(last[1] or '')[:16]}" if last else ""
    erasures = f", {rep.erasures} erasures" if rep.erasures else ""
    also = [
        f"{kinds[k]} {label}"
        for k, label in (("workflow", "workflow transitions"), ("calibration", "calibration entries"))
        if kinds.get(k)
    ] + ([f"{n_notes} notes"] if n_notes else [])
    checked = f"; also checked: {', '.join(also)}" if also else ""
    console.print(f"[green]✓[/] review history intact ({rep.reviews} reviews{erasures}{head}{checked})")


def forget(
    call_id: list[str] = typer.Option([], "--call-id", help="call_id, unique id prefix or file name (repeatable)"),
    customer_id: str | None = typer.Option(None, "--customer-id", help="every stored call of this customer"),
    reason: str = typer.Option(..., "--reason", help="why, e.g. the request's reference (kept in the tombstone)"),
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would be removed; remove nothing"),
    compact: bool = typer.Option(
        True,
        "--compact/--no-compact",
        help="rewrite the database file afterwards, so the removed rows' bytes do not linger in its free space",
    ),
) -> None:
    """Erase calls everywhere callqa keeps them (rows, reviews, redacted audio, report pages); leaves a tombstone."""
    import duckdb

    from callqa.config.settings import load_settings
    from callqa.pipeline.redact import options_from_settings
    from callqa.pipeline.store import StoreError, batch_lock
    from callqa.workspace import chain
    from callqa.workspace.forget import compact_database, customer_calls, erase_calls, forgotten_call_ids
    from callqa.workspace.ledger import database_path, head_path
    from callqa.workspace.qa import open_db, resolve_call

    if bool(call_id) == (customer_id is not None):
        _fail(CallQAError(None, "give --call-id (one or more) or --customer-id, not both"))
    try:
        settings = load_settings(config)
        with open_db(db) as con:
            if customer_id is not None:
                ids = customer_calls(con, customer_id, settings.redaction)
                if not ids:
                    raise StoreError(db, f"no stored call has customer_id {customer_id!r}; nothing was removed")
            else:
                gone = forgotten_call_ids(con)
                ids = []
                for ref in call_id:
                    if ref in gone or (len(ref) >= 6 and any(g.startswith(ref) for g in gone)):
                        raise StoreError(db, f"{ref!r} was forgotten already (see the tombstones view)")
                    ids.append(resolve_call(con, ref))
            red = settings.redaction
            key = None if dry_run else chain.writer_key(con, settings.audit.key_file, head_path(database_path(con)))
            res = erase_calls(
                con,
                ids,
                reason,
                key,
                selector="customer_id" if customer_id is not None else "call_id",
                audio_dir=red.audio_dir,
                report_dir=settings.report.out_dir,
                staging_dir=settings.batch.parquet_dir,
                redaction=options_from_settings(red) if red.enabled else None,
                dry_run=dry_run,
            )
    except CallQAError as e:
        _fail(e)
    rows = ", ".join(f"{n} {t}" for t, n in res.rows.items()) or "no rows"
    verb = "would remove" if dry_run else "removed"
    console.print(f"{len(res.call_ids)} call(s): {verb} {rows}; {len(res.reviews)} review(s); {len(res.files)} file(s)")
    for f in res.files:
        console.print(f"  [dim]{verb}[/] {_e(f)}")
    for k in res.kept:
        err.print(f"[yellow]left in place:[/] {_e(k)}")
    if dry_run:
        return
    console.print(f"tombstone #{res.seq} recorded in the review chain ({len(res.call_ids)} call id(s), no content)")
    if compact:
        try:
            # the batch reopens the file per commit: a commit between the copy and the swap would be lost
            with batch_lock(db):
                before, after = compact_database(db)
        except (OSError, duckdb.Error, StoreError) as e:
            err.print(
                f"[yellow]not compacted ({_e(e)}):[/] the removed rows' bytes may remain in the file's free space"
            )
        else:
            console.print(f"database rewritten without the removed rows: {before / 1e6:.1f} → {after / 1e6:.1f} MB")
    else:
        err.print("[yellow]not compacted:[/] the removed rows' bytes may remain in the file's free space until reused")
    _rebuild_report(db, settings)


def _rebuild_report(db: Path, settings) -> None:
    """The report's listings name the forgotten calls until rebuilt: rebuild a configured report that exists."""
    out = settings.report.out_dir
    if out is None or not (Path(out) / "index.html").exists():
        return
    from callqa.workspace.report import build_report

    try:
        build_report(db, out, audio=settings.report.audio, max_call_pages=settings.report.max_call_pages)
        console.print(f"report rebuilt: {_e(out)}")
    except CallQAError as e:
        err.print(f"[yellow]the report in {_e(out)} still lists the forgotten calls:[/] {_e(e)}; rebuild it")


def calibration_cmd(db: Path = DB_OPTION) -> None:
    """Agreement between automatic and human verdicts per criterion (accuracy, Cohen's kappa), worst first."""
    from callqa.workspace.qa import calibration, open_db

    try:
        with open_db(db, read_only=True) as con:
            rows = calibration(con)
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
            "the machine disagrees most on: " + ", ".join(f"{_e(r.criterion_id)} ({r.accuracy:.0%})" for r in worst)
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
    from callqa.workspace.qa import draw_sample, open_db

    try:
        with open_db(db) as con:
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
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Re-apply a scorecard version to every stored call from stored events and metrics (no audio, no ASR)."""
    from callqa.flows.rescore import rescore as rescore_flow
    from callqa.pipeline.scoring import load_scorecard

    if not db.exists():
        _fail(CallQAError(db, "database file does not exist"))
    try:
        load_scorecard(scorecard)  # reject a broken scorecard before starting a flow or opening the database
        summary = rescore_flow(
            db_path=str(db),
            scorecard=scorecard,
            all_languages=all_languages,
            config_path=str(config) if config else None,
        )
    except CallQAError as e:
        _fail(e)
    console.print(
        f"{summary['scorecard_id']} v{summary['version']}: scored {summary['calls_scored']} of "
        f"{summary['calls_stored']} calls in {summary['wall_s']:.1f} s (load {summary['load_s']:.1f}, "
        f"score {summary['score_s']:.1f}, write {summary['write_s']:.1f}; {summary['commits']} commits); "
        f"flagged {summary['flagged']}; grades {summary['grades']}"
    )
