"""`callqa audit-report`: the periodic QA audit (callqa.workspace.audit) as printable HTML and Markdown."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, console
from callqa.pipeline.types import CallQAError


def audit_report(
    db: Path = DB_OPTION,
    out: Path = typer.Option(Path("callqa-audit"), "--out", "-o", help="folder for audit.html and audit.md"),
    since: str | None = typer.Option(None, "--from", help="first day audited, YYYY-MM-DD (default: 30 days to --to)"),
    until: str | None = typer.Option(
        None, "--to", help="last day audited, YYYY-MM-DD (default: the latest call's day)"
    ),
    compare: str = typer.Option("previous", "--compare", help="previous | none | YYYY-MM-DD..YYYY-MM-DD"),
    lang: str = typer.Option("en", "--lang", help="en | zh: language of headings and KPI names"),
    config: Path | None = CONFIG_OPTION,
    call_link: str = typer.Option(
        "calls/{call_id}.html", "--call-link", help="link of a call id ({call_id}); default: `callqa report` pages"
    ),
    force: bool = typer.Option(False, "--force", help="overwrite files in --out that callqa did not write"),
) -> None:
    """Write the audit report: overview, findings vs the previous period and targets, diagnosis, actions, appendices."""
    from callqa.config.settings import load_settings
    from callqa.workspace.audit import build_audit_report

    if "{call_id}" not in call_link:
        _fail(CallQAError(None, "--call-link must contain {call_id}"))
    try:
        settings = load_settings(config)
        s = build_audit_report(
            db,
            out,
            since=since,
            until=until,
            compare=compare,
            lang=lang,
            kpi=settings.kpi,
            call_link=call_link,
            force=force,
        )
    except CallQAError as e:
        _fail(e)
    vs = f" vs {s.compared}" if s.compared else ""
    console.print(f"audit {s.span}{vs}: {s.calls} calls in {s.seconds:.1f} s", markup=False)
    console.print(f"open {escape(s.html.resolve().as_uri())}  (e-mail: {escape(str(s.markdown))})")
