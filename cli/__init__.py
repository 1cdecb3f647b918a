"""The `callqa` command line: the Typer app, assembled from one module per group of subcommands.

The subcommand modules (run, workspace, qa, evaluate) define plain functions and never import this
module back; the app is built here, so every command is listed once, in the order `callqa --help` shows.
"""

from __future__ import annotations

import os

# Prefect's per-task INFO lines would drown the progress bar; this must be set before prefect is
# imported. Telemetry is off because these machines often have no internet at all.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral API server gets 20 s to start by default; a busy 2-core machine needs longer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import typer  # noqa: E402

from callqa.cli import qa, run, workspace  # noqa: E402
from callqa.cli.audit_report import audit_report  # noqa: E402
from callqa.cli.evaluate import eval_app  # noqa: E402
from callqa.cli.web import serve, users_app  # noqa: E402
from callqa.cli.workflow import assign, calibrate_app, workflow_app  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="callqa: speech analytics for contact-centre QA. Transcribe, detect, score and audit every call in DuckDB.",
)
app.add_typer(eval_app, name="eval")
app.add_typer(users_app, name="users")
app.add_typer(workflow_app, name="workflow")
app.add_typer(calibrate_app, name="calibrate")

app.command()(run.run)
app.command()(workspace.flagged)
app.command()(workspace.report)
app.command()(workspace.export)
app.command()(workspace.sql)
app.command()(run.models)
app.command()(run.demo)
app.command()(qa.show)
app.command()(qa.review)
app.command()(qa.audit)
app.command()(qa.forget)
app.command("calibration")(qa.calibration_cmd)
app.command()(qa.sample)
app.command()(assign)
app.command()(qa.rescore)
app.command()(run.deploy)
app.command()(serve)
app.command("audit-report")(audit_report)


def main() -> None:  # pragma: no cover - console script entry point
    app()
