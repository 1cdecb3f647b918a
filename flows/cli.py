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

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from callqa.pipeline.types import CallQAError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="callqa: speech analytics for contact-centre QA. Transcribe, detect, score and audit every call in DuckDB.",
)
# Piped output (CI logs, `| less`, tests) has no terminal width; 80 columns would wrap every cell.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

DB_OPTION = typer.Option(Path("callqa.duckdb"), "--db", help="DuckDB file")
CONFIG_OPTION = typer.Option(None, "--config", "-c", help="settings YAML layered over the bundled defaults")


def _fail(e: Exception, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {e}")
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


def _run_with_progress(input_dir: Path, db: Path, config: Optional[Path], workers: Optional[int], limit: Optional[int]) -> dict:
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
        summary = run_nightly(input_dir, db, config, workers=workers, limit=limit, progress=on_progress)
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


def _print_flagged(db: Path, limit: Optional[int]) -> int:
    from callqa.pipeline import store

    con = store.connect(db, read_only=True)
    try:
        res = store.flagged_calls(con, limit=limit)
    finally:
        con.close()
    if not res.rows:
        console.print("no flagged calls")
        return 0
    cols = ["file_name", "agent_id", "queue", "started_at", "duration_s", "percent", "grade", "flag_reasons", "call_id"]
    idx = [res.columns.index(c) for c in cols]
    rows = [tuple((r[i][:12] if c == "call_id" else r[i]) for i, c in zip(idx, cols)) for r in res.rows]
    console.print(_table(cols, rows, title=f"flagged calls ({len(res.rows)})"))
    return len(res.rows)


@app.command()
def run(
    input_dir: Path = typer.Argument(..., help="folder of recordings (searched recursively)"),
    db: Path = DB_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="calls processed concurrently"),
    limit: Optional[int] = typer.Option(None, "--limit", help="process at most N new calls"),
) -> None:
    """Run the nightly batch flow over a folder of recordings into DuckDB."""
    if not input_dir.is_dir():
        _fail(CallQAError(input_dir, "input folder does not exist or is not a folder"))
    try:
        summary = _run_with_progress(input_dir, db, config, workers, limit)
    except CallQAError as e:
        _fail(e)
    _print_summary(summary)


@app.command()
def flagged(db: Path = DB_OPTION, limit: Optional[int] = typer.Option(50, "--limit", help="rows to show")) -> None:
    """The queue of auto-flagged calls with the reasons, worst first."""
    try:
        _print_flagged(db, limit)
    except CallQAError as e:
        _fail(e)


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


def main() -> None:  # pragma: no cover - console script entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
