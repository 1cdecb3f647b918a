"""The `callqa` command line: run the nightly flow, read the flagged queue, query DuckDB."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

# Prefect's per-task INFO lines would drown the progress bar; this must be set before prefect is
# imported. Telemetry is off because these machines often have no internet at all.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral API server gets 20 s to start by default; a busy 2-core machine needs longer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from callqa.pipeline.types import CallQAError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="callqa: speech analytics for contact-centre QA. Transcribe, detect, score and audit every call in DuckDB.",
)
# Piped output (CI logs, `| less`, tests) has no terminal width; 80 columns would wrap every cell.
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate callqa against labelled data (prints metrics).")
app.add_typer(eval_app, name="eval")

console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

DB_OPTION = typer.Option(Path("callqa.duckdb"), "--db", help="DuckDB file")
CONFIG_OPTION = typer.Option(None, "--config", "-c", help="settings YAML layered over the bundled defaults")


def _fail(e: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
    raise typer.Exit(code)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, (list, tuple)):
        return "; ".join(str(x) for x in v)
    return str(v)


def _table(columns: list[str], rows: list[tuple], title: str | None = None) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(_fmt(v) for v in r))
    return t


def _run_with_progress(input_dir: Path, db: Path, config: Optional[Path], workers: Optional[int], limit: Optional[int],
                       dask_address: Optional[str] = None, parquet_dir: Optional[Path] = None) -> dict:
    from callqa.flows.nightly import run_nightly

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[last]}"), console=console, transient=False,
    )
    task_id = None

    def on_progress(event: str, info: dict) -> None:
        nonlocal task_id
        if event == "start":
            task_id = progress.add_task("calls", total=info["total"], last="")
            if info["skipped"]:
                progress.console.print(f"{info['skipped']} of {info['discovered']} recordings already stored: skipped")
        elif event == "call" and task_id is not None:
            name = Path(info["path"]).name
            if info["status"] == "failed":
                progress.console.print(f"[red]failed[/] {info['failure'].error}")
            progress.update(task_id, advance=1, last=f"{info['status']}: {name}")

    with progress:
        summary = run_nightly(input_dir, db, config, workers=workers, limit=limit, progress=on_progress,
                              dask_address=dask_address, parquet_dir=parquet_dir)
    return summary


def _print_summary(summary: dict) -> None:
    t = Table(title="run summary", header_style="bold")
    for k in ("discovered", "skipped", "processed", "failed", "flagged"):
        t.add_column(k, justify="right")
    t.add_column("audio", justify="right")
    t.add_column("wall", justify="right")
    t.add_column("speed", justify="right")
    wall = summary.get("wall_s") or 0
    audio = summary.get("audio_s") or 0
    t.add_row(*(str(summary.get(k, 0)) for k in ("discovered", "skipped", "processed", "failed", "flagged")),
              f"{audio / 60:.1f} min", f"{wall:.1f} s", f"{audio / wall:.1f}× real time" if wall and audio else "")
    console.print(t)
    console.print(f"database: {summary['db_path']}  run: {summary['run_id']}")
    if summary.get("report"):
        console.print(f"report: {summary['report']}")


def _print_flagged(db: Path, limit: Optional[int], filters: Any = None, fmt: str = "table") -> int:
    from callqa.pipeline import store
    from callqa.pipeline.queue import QueueFilter, flagged_count, flagged_page

    f = filters or QueueFilter(limit=limit)
    con = store.connect(db, read_only=True)
    try:
        res = flagged_page(con, f)
        total = flagged_count(con, f)
    finally:
        con.close()
    if fmt == "json":
        console.print_json(json.dumps([dict(zip(res.columns, r)) for r in res.rows], default=str))
        return len(res.rows)
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(res.columns)
        w.writerows([_fmt(v) if isinstance(v, (list, tuple)) else v for v in r] for r in res.rows)
        return len(res.rows)
    if not res.rows:
        console.print("no flagged calls" + (" match these filters" if filters else ""))
        return 0
    cols = ["file_name", "agent_id", "queue", "started_at", "duration_s", "percent", "grade", "flag_reasons", "call_id"]
    idx = [res.columns.index(c) for c in cols]
    rows = [tuple((r[i][:12] if c == "call_id" else r[i]) for i, c in zip(idx, cols)) for r in res.rows]
    shown = f"{len(res.rows)} of {total}" if total > len(res.rows) else f"{total}"
    console.print(_table(cols, rows, title=f"flagged calls ({shown}, sorted: {f.sort})"))
    return len(res.rows)


def _parse_day(value: Optional[str], option: str) -> Any:
    """A date for --since/--until: YYYY-MM-DD, 'today', 'yesterday' or a day count like '7d'."""
    from datetime import date, timedelta

    if value is None:
        return None
    v = value.strip().lower()
    try:
        if v == "today":
            return date.today()
        if v == "yesterday":
            return date.today() - timedelta(days=1)
        if v.endswith("d") and v[:-1].isdigit():
            return date.today() - timedelta(days=int(v[:-1]))
        return date.fromisoformat(v)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give YYYY-MM-DD, today, yesterday or a number of days like 7d", param_hint=option)


@app.command()
def run(
    input_dir: Path = typer.Argument(..., help="folder of recordings (searched recursively)"),
    db: Path = DB_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="calls processed concurrently"),
    limit: Optional[int] = typer.Option(None, "--limit", help="process at most N new calls"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="run the calls on this Dask scheduler (tcp://host:8786); default: batch.dask_address"),
    parquet_dir: Optional[Path] = typer.Option(None, "--parquet-dir", help="very large runs: workers write one Parquet file per call here, bulk-loaded into the database"),
) -> None:
    """Run the nightly batch flow over a folder of recordings into DuckDB."""
    if not input_dir.is_dir():
        _fail(CallQAError(input_dir, "input folder does not exist or is not a folder"))
    try:
        summary = _run_with_progress(input_dir, db, config, workers, limit, dask_address, parquet_dir)
    except CallQAError as e:
        _fail(e)
    _print_summary(summary)


@app.command()
def flagged(
    db: Path = DB_OPTION,
    limit: Optional[int] = typer.Option(50, "--limit", help="rows to show"),
    offset: int = typer.Option(0, "--offset", help="skip this many rows (next page)"),
    since: Optional[str] = typer.Option(None, "--since", help="calls on or after: YYYY-MM-DD, today, yesterday, 7d"),
    until: Optional[str] = typer.Option(None, "--until", help="calls on or before (same forms as --since)"),
    agent: list[str] = typer.Option([], "--agent", help="agent id (repeat for several)"),
    queue: list[str] = typer.Option([], "--queue", help="queue (repeat for several)"),
    reason: list[str] = typer.Option([], "--reason", help="text in a flag reason, e.g. auto-fail, greeting, hold (repeat: all must match)"),
    grade: list[str] = typer.Option([], "--grade", help="excellent | good | fair | poor | na (repeat for several)"),
    scorecard: Optional[str] = typer.Option(None, "--scorecard", help="only this scorecard id"),
    unreviewed: bool = typer.Option(False, "--unreviewed", help="only calls no reviewer has given a verdict on"),
    sort: str = typer.Option("worst", "--sort", help="worst | score | best | newest | oldest | longest | agent"),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """The queue of auto-flagged calls with the reasons, worst first; filter and sort it."""
    from callqa.pipeline.queue import QueueFilter

    filters = QueueFilter(
        since=_parse_day(since, "--since"), until=_parse_day(until, "--until"), agents=tuple(agent), queues=tuple(queue),
        reasons=tuple(reason), grades=tuple(grade), scorecard=scorecard, unreviewed=unreviewed, sort=sort,
        limit=limit, offset=offset,
    )
    try:
        _print_flagged(db, limit, filters, fmt)
    except CallQAError as e:
        _fail(e)


@app.command()
def report(
    db: Path = DB_OPTION,
    out: Path = typer.Option(Path("callqa-report"), "--out", "-o", help="folder for the site (index.html inside)"),
    since: Optional[str] = typer.Option(None, "--since", help="calls on or after: YYYY-MM-DD, today, yesterday, 7d"),
    until: Optional[str] = typer.Option(None, "--until", help="calls on or before"),
    audio: str = typer.Option("link", "--audio", help="link | copy | none: how call pages reach the recordings"),
    max_call_pages: int = typer.Option(5000, "--max-call-pages", help="call pages to write (flagged first, then newest)"),
    scorecard: Optional[str] = typer.Option(None, "--scorecard", help="scorecard for the dashboard (default: most used)"),
) -> None:
    """Write the static HTML report: dashboard and one page per call (opens the database read-only)."""
    from callqa.flows.report import build_report

    try:
        s = build_report(db, out, since=_parse_day(since, "--since"), until=_parse_day(until, "--until"), audio=audio,  # type: ignore[arg-type]
                         max_call_pages=max_call_pages, scorecard=scorecard)
    except CallQAError as e:
        _fail(e)
    console.print(f"report: {s.calls_total} calls, {s.flagged} flagged, {s.call_pages} call pages, "
                  f"{s.bytes_written / 1e6:.1f} MB in {s.seconds:.1f} s")
    console.print(f"open {s.index.resolve().as_uri()}")


@app.command()
def export(
    name: str = typer.Argument(..., help="a table or view: flagged_queue, call_summary, agent_daily, utterances, ..."),
    db: Path = DB_OPTION,
    fmt: str = typer.Option("parquet", "--format", "-f", help="parquet | csv"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="file or folder (default: ./NAME.FORMAT)"),
    since: Optional[str] = typer.Option(None, "--since", help="rows whose day is on or after (relations with a day column)"),
    until: Optional[str] = typer.Option(None, "--until", help="rows whose day is on or before"),
) -> None:
    """Export any table or view to Parquet or CSV (read-only)."""
    from callqa.flows.export import export as do_export

    try:
        r = do_export(db, name, fmt, out, since=_parse_day(since, "--since"), until=_parse_day(until, "--until"))
    except CallQAError as e:
        _fail(e)
    console.print(f"{r.rows} rows of {r.name} written to {r.path} ({r.format})")


@app.command()
def sql(
    query: str = typer.Argument(..., help="a SELECT (or WITH/DESCRIBE/SHOW/SUMMARIZE/EXPLAIN) statement"),
    db: Path = DB_OPTION,
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """Run read-only SQL against the database; anything that writes is refused."""
    from callqa.pipeline import store

    try:
        res = store.query_read_only(db, query)
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


def _asr_layout(settings, device: str) -> str:
    """How the batch will run ASR: batch size and beam, and on a CPU the threads each worker gets."""
    asr = settings.models.asr
    how = f", batch {asr.batch_size}, beam {asr.beam_size}" if asr.batch_size else f", sequential, beam {asr.beam_size}"
    if device == "cpu":
        from callqa.flows.worker import Layout, available_cores

        workers = max(1, settings.batch.workers)
        threads = asr.cpu_threads or Layout(workers, workers, available_cores()).threads_per_call
        how += f", {workers} worker(s) x {threads} thread(s)"
        if settings.batch.dask_address:
            how += " locally (Dask workers share their host's cores alike)"
    return how


@app.command()
def models(config: Optional[Path] = CONFIG_OPTION) -> None:
    """Every model role: what it resolved to and from where, or why it is missing."""
    from callqa.config.settings import load_settings
    from callqa.models.resolver import describe_models

    try:
        settings = load_settings(config)
        statuses = describe_models(settings.models)
    except CallQAError as e:
        _fail(e)
    t = Table(title="models", header_style="bold")
    for c in ("role", "status", "model", "runs on", "source", "detail"):
        t.add_column(c, overflow="fold")
    for s in statuses:
        ok = "[green]ok[/]" if s.available else "[yellow]missing[/]"
        runs_on = " ".join(x for x in (s.device, s.compute_type) if x)
        if s.role == "asr" and s.device:
            runs_on += _asr_layout(settings, s.device)
        t.add_row(s.role, ok, s.name or "", runs_on, s.source or "", s.detail or "")
    console.print(t)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo_calls"), "--dir", help="where the synthesised recordings go"),
    db: Path = DB_OPTION,
    workers: Optional[int] = typer.Option(None, "--workers", "-w"),
) -> None:
    """Synthesise a few realistic English stereo calls, run the nightly flow on them, show the flagged ones."""
    from callqa.synth import write_demo_calls

    console.print(f"synthesising demo calls into {out_dir}/ (offline TTS: piper)")
    paths = write_demo_calls(out_dir)
    console.print(f"{len(paths)} recordings written; running the nightly flow into {db}")
    try:
        summary = _run_with_progress(out_dir, db, None, workers, None)
    except CallQAError as e:
        _fail(e)
    _print_summary(summary)
    _print_flagged(db, None)
    console.print(f"\nnext: [bold]callqa sql --db {db} \"SELECT file_name, grade, flag_reasons FROM flagged_queue\"[/]")


# QA reviewer commands live in their own module; importing it registers them on `app`.
from callqa.flows import cli_qa  # noqa: E402,F401


@eval_app.command("detectors")
def eval_detectors_cmd(
    n: int = typer.Option(30, "--n", help="labelled English calls to synthesise and run (any prefix covers every feature)"),
    out: Path = typer.Option(Path("eval_detectors"), "--out", help="where the calls, labels and JSON report go (calls are reused)"),
    real: Optional[Path] = typer.Option(None, "--real", help="also run the recordings under this folder and list what each detector found"),
    seed: int = typer.Option(0, "--seed"),
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Precision/recall per detector and language, hold duration error, detector time share of audio."""
    from callqa.flows.eval_detectors import main as eval_main

    try:
        eval_main(n=n, out=out, real=real, seed=seed, config=config, console=console)
    except CallQAError as e:
        _fail(e)


@eval_app.command("diarization")
def eval_diarization_cmd(
    audio: list[Path] = typer.Argument(None, help="recordings; each needs <stem>.rttm in --rttm-dir"),
    rttm_dir: Optional[Path] = typer.Option(None, "--rttm-dir", help="folder of reference RTTM files"),
    config: Optional[Path] = CONFIG_OPTION,
    roles: bool = typer.Option(True, "--roles/--no-roles", help="also run ASR + roles where RTTM labels are agent/customer"),
    synth: Optional[Path] = typer.Option(None, "--synth", help="first synthesise the labelled call set into this folder"),
    stereo: bool = typer.Option(False, "--stereo", help="with --synth: stereo calls instead of mono"),
    no_channel_map: bool = typer.Option(False, "--no-channel-map", help="stereo roles from evidence, not the channel map"),
) -> None:
    """DER (pyannote.metrics, collar 0.25 s, overlap scored) and role accuracy against RTTM references."""
    from callqa.flows.eval_diarization import run_cli

    try:
        run_cli(audio or [], rttm_dir, config, roles, console, synth_dir=synth, stereo=stereo, no_channel_map=no_channel_map)
    except CallQAError as e:
        _fail(e)


@app.command()
def deploy(
    cron: str = typer.Option(..., "--cron", help='when to run, cron syntax, e.g. "0 2 * * *" for 02:00 every night'),
    input_dir: Path = typer.Option(..., "--input", help="folder of recordings the batch reads every night"),
    db: Path = DB_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="calls processed concurrently (local thread pool)"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="run on this Dask scheduler instead (tcp://host:8786)"),
    parquet_dir: Optional[Path] = typer.Option(None, "--parquet-dir", help="stage one Parquet file per call here, bulk-loaded by the writer"),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="IANA time zone of the cron schedule (default: this machine's)"),
    name: str = typer.Option("nightly", "--name", help="deployment name (Prefect server mode)"),
    mode: str = typer.Option("auto", "--mode", help="auto: Prefect deployment when PREFECT_API_URL is set, else a local scheduler | prefect | local"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the schedule and print the next runs, then exit"),
) -> None:
    """Serve the nightly batch on a cron schedule (a Prefect deployment, or a local scheduler without a server)."""
    from callqa.config.settings import load_settings
    from callqa.flows import deploy as dep

    if mode not in ("auto", "prefect", "local"):
        _fail(CallQAError(None, f"--mode must be auto, prefect or local, not {mode!r}"))
    if not input_dir.is_dir():
        _fail(CallQAError(input_dir, "input folder does not exist or is not a folder"))
    try:
        load_settings(config)  # a bad config fails now, not at 2 a.m.
        schedule = dep.make_schedule(cron, timezone)
        chosen = dep.resolve_mode(mode)  # type: ignore[arg-type]
    except CallQAError as e:
        _fail(e)
    params = {"input_dir": str(input_dir.resolve()), "db_path": str(db.resolve()),
              "config_path": str(config.resolve()) if config else None, "workers": workers,
              "dask_address": dask_address, "parquet_dir": str(parquet_dir.resolve()) if parquet_dir else None}
    nxt = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in schedule.next_times(3))
    how = ("Prefect deployment served by this process (runs show in the Prefect UI)" if chosen == "prefect"
           else "local scheduler in this process (no Prefect server configured: runs are ephemeral)")
    console.print(f"schedule: [bold]{cron}[/] ({schedule.timezone}); next runs: {nxt}")
    console.print(f"mode: {how}")
    console.print(f"batch: {params['input_dir']} -> {params['db_path']}"
                  + (f" on Dask {dask_address}" if dask_address else ""))
    if dry_run:
        return
    if chosen == "prefect":
        dep.serve_with_prefect(schedule, params, name=name)
        return

    from callqa.flows.nightly import run_nightly

    def job() -> dict:
        return run_nightly(input_dir, db, config, workers=workers, dask_address=dask_address, parquet_dir=parquet_dir)

    def on_event(event: str, info: dict) -> None:
        if event == "waiting":
            console.print(f"waiting for {info['next'].strftime('%Y-%m-%d %H:%M %Z')} (Ctrl-C stops)")
        elif event == "start":
            console.print(f"run {info['run']} started (scheduled {info['scheduled'].strftime('%Y-%m-%d %H:%M %Z')})")
        elif event == "done":
            s = info["result"]
            console.print(f"run finished: {s.get('processed', 0)} processed, {s.get('failed', 0)} failed, "
                          f"{s.get('skipped', 0)} skipped in {s.get('wall_s', 0):.0f} s")
        elif event == "error":
            err.print(f"[bold red]run failed:[/] {info['error']} (the schedule goes on)")

    try:
        dep.serve_locally(schedule, job, on_event=on_event)
    except KeyboardInterrupt:
        console.print("stopped")


def main() -> None:  # pragma: no cover - console script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
