"""Read-side commands: the flagged queue, the HTML report, exports and read-only SQL."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, _fmt, _parse_day, _table, console
from callqa.pipeline.types import CallQAError


def _print_flagged(db: Path, limit: int | None, filters: Any = None, fmt: str = "table") -> int:
    from callqa.workspace.queue import QueueFilter, flagged_count, flagged_page

    f = filters or QueueFilter(limit=limit)
    res, total = _read_page(db, f, flagged_page, flagged_count)
    if fmt in ("json", "csv"):
        _print_machine(res, fmt)
        return len(res.rows)
    if not res.rows:
        console.print("no flagged calls" + (" match these filters" if filters else ""))
    else:
        cols = ["file_name", "agent_id", "queue", "started_at", "duration_s", "percent", "grade", "flag_reasons"]
        cols.append("call_id")
        idx = [res.columns.index(c) for c in cols]
        status = res.columns.index("scorable_status")
        rows = [tuple(_queue_cell(c, r[i], r[status]) for i, c in zip(idx, cols)) for r in res.rows]
        shown = f"{len(res.rows)} of {total}" if total > len(res.rows) else f"{total}"
        console.print(_table(cols, rows, title=f"flagged calls ({shown}, sorted: {f.sort})"))
    _print_recordings(db, f, fmt, only=False)
    return len(res.rows)


def _read_page(db: Path, f: Any, page: Any, count: Any) -> tuple[Any, Any]:
    """One page of a queue listing and its count, read in one read-only connection."""
    from callqa.pipeline import store

    # waits (bounded) while a batch commits, and frees the file for it straight after
    with store.open_db(db, read_only=True) as con:
        return page(con, f), count(con, f)


def _print_machine(res: Any, fmt: str) -> None:
    """A listing as JSON or CSV on stdout, for scripts; list cells joined in CSV."""
    if fmt == "json":
        console.print_json(json.dumps([dict(zip(res.columns, r)) for r in res.rows], default=str))
        return
    import csv

    w = csv.writer(sys.stdout)
    w.writerow(res.columns)
    w.writerows([_fmt(v) if isinstance(v, (list, tuple)) else v for v in r] for r in res.rows)


def _queue_cell(column: str, value: Any, status: str | None) -> Any:
    if column == "call_id":
        return value[:12]
    if column == "grade" and status == "partial":
        return f"{value} (agent side)"  # a one-sided recording, graded on the agent's side only
    return value


def _print_recordings(db: Path, f: Any, fmt: str = "table", only: bool = True) -> int:
    """The recordings to check: not graded (unscorable) or graded on the agent's side only (partial), with
    the reasons; never in the flagged queue. `only`: the listing asked for (else shown below the queue
    when there are any)."""
    from callqa.workspace.queue import recordings_count, recordings_to_check

    res, counts = _read_page(db, f, recordings_to_check, recordings_count)
    if only and fmt in ("json", "csv"):
        _print_machine(res, fmt)
        return len(res.rows)
    if fmt != "table" or (not res.rows and not only):
        return len(res.rows)
    if not res.rows:
        filtered = f.since or f.until or f.agents or f.queues
        console.print("no recordings to check" + (" match these filters" if filtered else ""))
        return 0
    cols = ["file_name", "agent_id", "queue", "started_at", "duration_s", "scorable_status", "scorable_reasons"]
    cols.append("call_id")
    idx = [res.columns.index(c) for c in cols]
    rows = [tuple((r[i][:12] if c == "call_id" else r[i]) for i, c in zip(idx, cols)) for r in res.rows]
    total = sum(counts.values())
    shown = f"{len(res.rows)} of {total}" if total > len(res.rows) else f"{total}"
    parts = [f"{counts[k]} {label}" for k, label in (("unscorable", "not graded"), ("partial", "agent side only"))]
    title = f"recordings to check ({shown}: {', '.join(p for p in parts if not p.startswith('0 '))})"
    console.print(_table(cols, rows, title=title))
    return len(res.rows)


def flagged(
    db: Path = DB_OPTION,
    limit: int | None = typer.Option(50, "--limit", help="rows to show"),
    offset: int = typer.Option(0, "--offset", help="skip this many rows (next page)"),
    since: str | None = typer.Option(None, "--since", help="calls on or after: YYYY-MM-DD, today, yesterday, 7d"),
    until: str | None = typer.Option(None, "--until", help="calls on or before (same forms as --since)"),
    agent: list[str] = typer.Option([], "--agent", help="agent id (repeat for several)"),
    queue: list[str] = typer.Option([], "--queue", help="queue (repeat for several)"),
    reason: list[str] = typer.Option(
        [], "--reason", help="text in a flag reason, e.g. auto-fail, greeting, hold (repeat: all must match)"
    ),
    grade: list[str] = typer.Option([], "--grade", help="excellent | good | fair | poor | na (repeat for several)"),
    scorecard: str | None = typer.Option(None, "--scorecard", help="only this scorecard id"),
    unreviewed: bool = typer.Option(False, "--unreviewed", help="only calls no reviewer has given a verdict on"),
    sort: str = typer.Option("worst", "--sort", help="worst | score | best | newest | oldest | longest | agent"),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    unscorable: bool = typer.Option(
        False,
        "--unscorable",
        help="list the recordings to check instead: not graded (truncated, too short, no speech, one party only, "
        "no service call) or graded on the agent's side only; --since/--until/--agent/--queue apply",
    ),
) -> None:
    """The queue of auto-flagged calls with the reasons, worst first; filter and sort it. Recordings that
    could not be graded are never in it: they are listed below it as recordings to check (--unscorable)."""
    from callqa.workspace.queue import QueueFilter

    filters = QueueFilter(
        since=_parse_day(since, "--since"),
        until=_parse_day(until, "--until"),
        agents=tuple(agent),
        queues=tuple(queue),
        reasons=tuple(reason),
        grades=tuple(grade),
        scorecard=scorecard,
        unreviewed=unreviewed,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    try:
        if unscorable:
            _print_recordings(db, filters, fmt)
        else:
            _print_flagged(db, limit, filters, fmt)
    except CallQAError as e:
        _fail(e)


def report(
    db: Path = DB_OPTION,
    out: Path = typer.Option(Path("callqa-report"), "--out", "-o", help="folder for the site (index.html inside)"),
    since: str | None = typer.Option(None, "--since", help="calls on or after: YYYY-MM-DD, today, yesterday, 7d"),
    until: str | None = typer.Option(None, "--until", help="calls on or before"),
    audio: str = typer.Option("link", "--audio", help="link | copy | none: how call pages reach the recordings"),
    max_call_pages: int = typer.Option(
        5000, "--max-call-pages", help="call pages to write (flagged first, then newest)"
    ),
    scorecard: str | None = typer.Option(None, "--scorecard", help="scorecard for the dashboard (default: most used)"),
    force: bool = typer.Option(False, "--force", help="overwrite files in --out that callqa did not write"),
    kpi_period: str = typer.Option("week", "--kpi-period", help="week | month: the KPI panels' periods"),
    lang: str = typer.Option("en", "--lang", help="en | zh: language of the KPI panels"),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Write the static HTML report: dashboard and one page per call (opens the database read-only)."""
    from callqa.config.settings import load_settings
    from callqa.workspace.report import build_report

    try:
        settings = load_settings(config)
        s = build_report(
            db,
            out,
            since=_parse_day(since, "--since"),
            until=_parse_day(until, "--until"),
            audio=audio,  # type: ignore[arg-type]
            max_call_pages=max_call_pages,
            scorecard=scorecard,
            force=force,
            kpi=settings.kpi,
            kpi_period=kpi_period,
            lang=lang,
        )
    except CallQAError as e:
        _fail(e)
    console.print(
        f"report: {s.calls_total} calls, {s.flagged} flagged, {s.call_pages} call pages, "
        f"{s.bytes_written / 1e6:.1f} MB in {s.seconds:.1f} s"
    )
    console.print(f"open {s.index.resolve().as_uri()}")


def export(
    name: str = typer.Argument(..., help="a table or view: flagged_queue, call_summary, agent_daily, utterances, ..."),
    db: Path = DB_OPTION,
    fmt: str = typer.Option("parquet", "--format", "-f", help="parquet | csv"),
    out: Path | None = typer.Option(None, "--out", "-o", help="file or folder (default: ./NAME.FORMAT)"),
    since: str | None = typer.Option(
        None, "--since", help="rows whose day is on or after (relations with a day column)"
    ),
    until: str | None = typer.Option(None, "--until", help="rows whose day is on or before"),
    force: bool = typer.Option(False, "--force", help="overwrite a file at --out that callqa did not write"),
) -> None:
    """Export any table or view to Parquet or CSV (read-only)."""
    from callqa.workspace.export import export as do_export

    try:
        r = do_export(
            db, name, fmt, out, since=_parse_day(since, "--since"), until=_parse_day(until, "--until"), force=force
        )
    except CallQAError as e:
        _fail(e)
    console.print(f"{r.rows} rows of {r.name} written to {r.path} ({r.format})", markup=False)


def sql(
    query: str = typer.Argument(..., help="a SELECT (or WITH/DESCRIBE/SHOW/SUMMARIZE/EXPLAIN) statement"),
    db: Path = DB_OPTION,
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """Run read-only SQL against the database; anything that writes or reaches outside it is refused."""
    from callqa.workspace.sandbox import query_read_only

    try:
        res = query_read_only(db, query)
    except CallQAError as e:
        _fail(e)
    if fmt == "json":
        console.print_json(json.dumps([dict(zip(res.columns, r)) for r in res.rows], default=str))
    elif fmt == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(res.columns)
        w.writerows(res.rows)
    else:
        console.print(_table(res.columns, res.rows))
