"""What every group of subcommands shares: the consoles, the --db/--config options, error and table output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Piped output (CI logs, `| less`, tests) has no terminal width; 80 columns would wrap every cell.
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
    # cells are stored values (file names, agent ids, reviewers, SQL results): literal text, never markup
    for c in columns:
        t.add_column(escape(c), overflow="fold")
    for r in rows:
        t.add_row(*(escape(_fmt(v)) for v in r))
    return t


def _parse_day(value: str | None, option: str) -> Any:
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
    except ValueError as e:
        raise typer.BadParameter(
            f"{value!r}: give YYYY-MM-DD, today, yesterday or a number of days like 7d", param_hint=option
        ) from e
