"""The audit report on a schedule (`callqa deploy --audit-report monthly`), published as a Prefect artifact.

A monthly audit runs on the 1st at 06:00 over the previous calendar month (compared with the month before);
a weekly one on Mondays over the previous ISO week. The report files go to `out_dir`; the Markdown (the
e-mail version) is the artifact `callqa-audit-report`, so the Prefect UI shows the findings of every run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow

from callqa.pipeline.types import ConfigError

CRONS = {"monthly": "0 6 1 * *", "weekly": "0 6 * * 1"}


def audit_cron(every: str) -> str:
    if every not in CRONS:
        raise ConfigError(None, f"--audit-report must be monthly or weekly, not {every!r}")
    return CRONS[every]


def previous_period(every: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last complete month (or ISO week) before `today`."""
    if every == "weekly":
        monday = today - dt.timedelta(days=today.weekday())
        return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def run_audit(
    db_path: str,
    out_dir: str,
    every: str = "monthly",
    lang: str = "en",
    config_path: str | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Write the audit of the previous period into out_dir; returns its paths, span and Markdown."""
    from callqa.config.settings import load_settings
    from callqa.workspace.audit import build_audit_report

    since, until = previous_period(every, today or dt.date.today())
    settings = load_settings(Path(config_path) if config_path else None)
    s = build_audit_report(
        db_path,
        out_dir,
        since=since.isoformat(),
        until=until.isoformat(),
        compare="previous",
        lang=lang,
        kpi=settings.kpi,
    )
    return {"html": str(s.html), "markdown": s.markdown.read_text("utf-8"), "span": str(s.span), "calls": s.calls}


@flow(name="callqa-audit-report", log_prints=False, validate_parameters=False)
def scheduled_audit(
    db_path: str, out_dir: str, every: str = "monthly", lang: str = "en", config_path: str | None = None
) -> dict[str, Any]:
    from prefect.artifacts import create_markdown_artifact

    res = run_audit(db_path, out_dir, every, lang, config_path)
    create_markdown_artifact(
        key="callqa-audit-report", markdown=res["markdown"], description=f"callqa audit report {res['span']}"
    )
    return res


def build_audit_deployment(every: str, timezone: str, parameters: dict[str, Any], name: str = "audit"):
    """The Prefect deployment of the scheduled audit (served beside the nightly one)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    return scheduled_audit.to_deployment(
        name=name,
        schedule=Cron(audit_cron(every), timezone=timezone),
        parameters={**parameters, "every": every},
        description=f"callqa {every} QA audit report",
        tags=["callqa"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
