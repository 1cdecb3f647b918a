"""Batch commands: run the nightly flow (now, as a demo, or on a schedule) and show the models it would use."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, console, err
from callqa.cli.workspace import _print_flagged
from callqa.pipeline.types import CallQAError


def _run_with_progress(
    input_dir: Path,
    db: Path,
    config: Path | None,
    workers: int | None,
    limit: int | None,
    dask_address: str | None = None,
    parquet_dir: Path | None = None,
) -> dict:
    from callqa.flows.nightly import run_nightly

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
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
                progress.console.print(f"[red]failed[/] {escape(info['failure'].error)}")
            progress.update(task_id, advance=1, last=escape(f"{info['status']}: {name}"))

    with progress:
        summary = run_nightly(
            input_dir,
            db,
            config,
            workers=workers,
            limit=limit,
            progress=on_progress,
            dask_address=dask_address,
            parquet_dir=parquet_dir,
        )
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
    t.add_row(
        *(str(summary.get(k, 0)) for k in ("discovered", "skipped", "processed", "failed", "flagged")),
        f"{audio / 60:.1f} min",
        f"{wall:.1f} s",
        f"{audio / wall:.1f}× real time" if wall and audio else "",
    )
    console.print(t)
    groups = summary.get("duplicate_groups") or []
    if groups:
        n = sum(len(g["same_audio"]) for g in groups)
        console.print(f"{n} duplicate file(s): the same audio as another file, processed once")
        for g in groups:
            console.print(f"  kept {g['kept']}; same audio: {', '.join(g['same_audio'])}", markup=False, soft_wrap=True)
    console.print(f"database: {summary['db_path']}  run: {summary['run_id']}", markup=False)
    if summary.get("report"):
        console.print(f"report: {summary['report']}", markup=False)


def run(
    input_dir: Path = typer.Argument(..., help="folder of recordings (searched recursively)"),
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
    workers: int | None = typer.Option(None, "--workers", "-w", help="calls processed concurrently"),
    limit: int | None = typer.Option(None, "--limit", help="process at most N new calls"),
    dask_address: str | None = typer.Option(
        None,
        "--dask-address",
        help="run the calls on this Dask scheduler (tcp://host:8786); default: batch.dask_address",
    ),
    parquet_dir: Path | None = typer.Option(
        None,
        "--parquet-dir",
        help="very large runs: workers write one Parquet file per call here, bulk-loaded into the database",
    ),
) -> None:
    """Run the nightly batch flow over a folder of recordings into DuckDB."""
    if not input_dir.is_dir():
        _fail(CallQAError(input_dir, "input folder does not exist or is not a folder"))
    try:
        summary = _run_with_progress(input_dir, db, config, workers, limit, dask_address, parquet_dir)
    except CallQAError as e:
        _fail(e)
    _print_summary(summary)


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


def models(config: Path | None = CONFIG_OPTION) -> None:
    """Every model role: what it resolved to and from where, or why it is missing."""
    from callqa.config.settings import load_settings
    from callqa.models.status import describe_models

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
        t.add_row(escape(s.role), ok, *(escape(v or "") for v in (s.name, runs_on, s.source, s.detail)))
    console.print(t)


def demo(
    out_dir: Path = typer.Option(Path("demo_calls"), "--dir", help="where the synthesised recordings go"),
    db: Path = DB_OPTION,
    workers: int | None = typer.Option(None, "--workers", "-w"),
) -> None:
    """Synthesise realistic English and Mandarin stereo calls, run the nightly flow on them, show the flagged ones."""
    from callqa.synth.demo import unavailable_demo_calls, write_demo_calls

    skipped = unavailable_demo_calls()
    tts = "piper" if skipped else "piper, and Kokoro-82M for Mandarin"
    console.print(f"synthesising demo calls into {out_dir}/ (offline TTS: {tts})", markup=False)
    for stem, why in skipped.items():
        console.print(f"skipped {stem}: {why}", markup=False)
    paths = write_demo_calls(out_dir)
    console.print(f"{len(paths)} recordings written; running the nightly flow into {db}", markup=False)
    try:
        summary = _run_with_progress(out_dir, db, None, workers, None)
    except CallQAError as e:
        _fail(e)
    _print_summary(summary)
    _print_flagged(db, None)
    query = '"SELECT file_name, grade, flag_reasons FROM flagged_queue"'
    console.print(f"\nnext: [bold]callqa sql --db {escape(str(db))} {query}[/]")
    console.print(
        f"workspace: [bold]callqa users add admin --role admin --db {escape(str(db))}[/] then "
        f"[bold]callqa serve --db {escape(str(db))}[/] and open http://127.0.0.1:8000/"
    )


def deploy(
    cron: str = typer.Option(..., "--cron", help='when to run, cron syntax, e.g. "0 2 * * *" for 02:00 every night'),
    input_dir: Path = typer.Option(..., "--input", help="folder of recordings the batch reads every night"),
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="calls processed concurrently (local thread pool)"
    ),
    dask_address: str | None = typer.Option(
        None, "--dask-address", help="run on this Dask scheduler instead (tcp://host:8786)"
    ),
    parquet_dir: Path | None = typer.Option(
        None, "--parquet-dir", help="stage one Parquet file per call here, bulk-loaded by the writer"
    ),
    timezone: str | None = typer.Option(
        None, "--timezone", help="IANA time zone of the cron schedule (default: this machine's)"
    ),
    name: str = typer.Option("nightly", "--name", help="deployment name (Prefect server mode)"),
    mode: str = typer.Option(
        "auto",
        "--mode",
        help="auto: Prefect deployment when PREFECT_API_URL is set, else a local scheduler | prefect | local",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the schedule and print the next runs, then exit"),
    audit_report: str | None = typer.Option(
        None, "--audit-report", help="monthly | weekly: also write the QA audit report (a Prefect artifact)"
    ),
    audit_out: Path = typer.Option(Path("callqa-audit"), "--audit-out", help="folder of the scheduled audit report"),
    audit_lang: str = typer.Option("en", "--audit-lang", help="en | zh: language of the scheduled audit report"),
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
        if audit_report is not None:
            from callqa.flows import audit as audit_flow

            audit_schedule = dep.make_schedule(audit_flow.audit_cron(audit_report), schedule.timezone)
    except CallQAError as e:
        _fail(e)
    audit_params = {
        "db_path": str(db.resolve()),
        "out_dir": str(audit_out.resolve()),
        "lang": audit_lang,
        "config_path": str(config.resolve()) if config else None,
    }
    params = {
        "input_dir": str(input_dir.resolve()),
        "db_path": str(db.resolve()),
        "config_path": str(config.resolve()) if config else None,
        "workers": workers,
        "dask_address": dask_address,
        "parquet_dir": str(parquet_dir.resolve()) if parquet_dir else None,
    }
    nxt = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in schedule.next_times(3))
    how = (
        "Prefect deployment served by this process (runs show in the Prefect UI)"
        if chosen == "prefect"
        else "local scheduler in this process (no Prefect server configured: runs are ephemeral)"
    )
    console.print(f"schedule: [bold]{cron}[/] ({schedule.timezone}); next runs: {nxt}")
    console.print(f"mode: {how}")
    console.print(
        f"batch: {params['input_dir']} -> {params['db_path']}" + (f" on Dask {dask_address}" if dask_address else ""),
        markup=False,
    )
    if audit_report is not None:
        when = ", ".join(t.strftime("%Y-%m-%d %H:%M %Z") for t in audit_schedule.next_times(2))
        console.print(f"audit report: {audit_report} -> {audit_params['out_dir']}; next: {when}", markup=False)
    if dry_run:
        return
    if chosen == "prefect":
        extra = ()
        if audit_report is not None:
            extra = (audit_flow.build_audit_deployment(audit_report, schedule.timezone, audit_params, f"{name}-audit"),)
        dep.serve_with_prefect(schedule, params, name=name, extra=extra)
        return

    import datetime as dt

    from callqa.flows.nightly import run_nightly

    last_run = {"at": dt.datetime.now(dt.UTC)}

    def job() -> dict:
        res = run_nightly(input_dir, db, config, workers=workers, dask_address=dask_address, parquet_dir=parquet_dir)
        # the local scheduler keeps one clock: the audit runs after the first batch past its tick
        now = dt.datetime.now(dt.UTC)
        if audit_report is not None and audit_schedule.next_times(1, after=last_run["at"])[0] <= now:
            try:
                a = audit_flow.run_audit(**audit_params, every=audit_report)
                console.print(f"audit report {a['span']}: {a['html']}", markup=False)
            except CallQAError as e:  # the night's calls are stored: a report problem is not a failed run
                err.print(f"[bold red]audit report failed:[/] {escape(str(e))}")
        last_run["at"] = now
        return res

    def on_event(event: str, info: dict) -> None:
        if event == "waiting":
            console.print(f"waiting for {info['next'].strftime('%Y-%m-%d %H:%M %Z')} (Ctrl-C stops)")
        elif event == "start":
            when = info["scheduled"].strftime("%Y-%m-%d %H:%M %Z")
            console.print(f"run {info['run']} started (scheduled {when})")
        elif event == "done":
            s = info["result"]
            console.print(
                f"run finished: {s.get('processed', 0)} processed, {s.get('failed', 0)} failed, "
                f"{s.get('skipped', 0)} skipped in {s.get('wall_s', 0):.0f} s"
            )
        elif event == "error":
            err.print(f"[bold red]run failed:[/] {escape(str(info['error']))} (the schedule goes on)")

    try:
        dep.serve_locally(schedule, job, on_event=on_event)
    except KeyboardInterrupt:
        console.print("stopped")
