"""The nightly batch on a schedule: `callqa deploy --cron "0 2 * * *" --input DIR --db FILE`.

Two ways to run it, chosen by whether a Prefect server is configured (PREFECT_API_URL):

- **With a Prefect server** (`prefect server start`, or Prefect Cloud): the flow is registered as a
  deployment with a cron schedule and served by this process (`prefect.serve`). The server's
  scheduler creates a run at every tick; runs, logs, retries and each run's artifact show in the UI,
  and a run can also be started by hand there (`prefect deployment run callqa-nightly/...`).
- **Without a server**: Prefect's temporary (ephemeral) server has no scheduler, so `serve` would
  never fire. This process keeps the schedule itself instead: it computes the next tick with
  Prefect's own cron implementation (same cron syntax, same time zone and DST rules), sleeps until
  then and runs the same flow, ephemerally. Nothing else to install or keep running.

Either way one batch runs at a time: a night that is still running at the next tick is not doubled
(the next tick is computed after the run ends), and a killed batch is picked up by the next run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect import flow

from callqa.pipeline.types import ConfigError

Mode = Literal["auto", "prefect", "local"]
DEFAULT_NAME = "nightly"
# The loop wakes at least this often to re-check the clock (a suspended laptop, an NTP step).
_MAX_SLEEP_S = 60.0


@flow(name="callqa-nightly", log_prints=False, validate_parameters=False)
def scheduled_nightly(
    input_dir: str,
    db_path: str,
    config_path: str | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    parquet_dir: str | None = None,
) -> dict[str, Any]:
    """What the deployment runs: the nightly batch as a subflow, so that it gets its own task runner
    (thread pool or Dask) chosen at run time from the parameters and settings."""
    from callqa.flows.nightly import run_nightly

    summary = run_nightly(
        input_dir, db_path, config_path, workers=workers, dask_address=dask_address, parquet_dir=parquet_dir
    )
    return {k: v for k, v in summary.items() if isinstance(v, (str, int, float, type(None)))}


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str

    def next_times(self, n: int = 1, after: dt.datetime | None = None) -> list[dt.datetime]:
        """The next `n` ticks strictly after `after` (default: now), as aware datetimes."""
        from prefect.server.schemas.schedules import CronSchedule

        sched = CronSchedule(cron=self.cron, timezone=self.timezone)
        start = (after or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=1)
        dates = asyncio.run(sched.get_dates(n=n, start=start))
        return [dt.datetime.fromisoformat(d.isoformat()) for d in dates]


def local_timezone() -> str:
    """The machine's IANA time zone name (a nightly batch is scheduled in local time), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def make_schedule(cron: str, timezone: str | None = None) -> Schedule:
    """Validate the cron string and time zone now, with a clear error, not at 2 a.m."""
    from prefect.server.schemas.schedules import CronSchedule

    tz = timezone or local_timezone()
    try:
        CronSchedule(cron=cron, timezone=tz)
    except Exception as e:  # pydantic ValidationError: an invalid cron string or unknown time zone
        errors = e.errors() if hasattr(e, "errors") else []
        detail = "; ".join(str(x.get("msg", x)) for x in errors) or str(e)
        raise ConfigError(None, f"invalid schedule (cron {cron!r}, time zone {tz!r}): {detail}") from e
    return Schedule(cron, tz)


def prefect_server_configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def resolve_mode(mode: Mode) -> Literal["prefect", "local"]:
    if mode == "auto":
        return "prefect" if prefect_server_configured() else "local"
    if mode == "prefect" and not prefect_server_configured():
        raise ConfigError(
            None,
            "--mode prefect needs a Prefect server: set PREFECT_API_URL "
            "(e.g. `prefect server start`, then `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`)",
        )
    return mode


def build_deployment(schedule: Schedule, parameters: dict[str, Any], name: str = DEFAULT_NAME):
    """The Prefect deployment (flow + cron schedule + parameters) that `serve` registers."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    return scheduled_nightly.to_deployment(
        name=name,
        schedule=Cron(schedule.cron, timezone=schedule.timezone),
        parameters=parameters,
        description="callqa nightly batch: transcribe, detect, score and store every new recording",
        tags=["callqa"],
        # by module path, so the runner finds the flow in the installed package wherever it lives
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def serve_with_prefect(
    schedule: Schedule, parameters: dict[str, Any], name: str = DEFAULT_NAME, extra: tuple[Any, ...] = ()
) -> None:
    """Serve the nightly deployment and any `extra` ones (the scheduled audit report, flows/audit.py)."""
    from prefect import serve

    serve(build_deployment(schedule, parameters, name), *extra)


def serve_locally(
    schedule: Schedule,
    job: Callable[[], Any],
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
    on_event: Callable[[str, dict[str, Any]], None] = lambda event, info: None,
) -> int:
    """Run `job` at every tick of `schedule`, one run at a time, until `max_runs` (forever if None).

    A run that raises is reported through on_event("error") and the schedule goes on: tomorrow's
    batch must not depend on tonight's. Returns the number of runs started.
    """
    runs = 0
    while max_runs is None or runs < max_runs:
        due = schedule.next_times(1, after=now())[0]
        on_event("waiting", {"next": due})
        while (left := (due - now()).total_seconds()) > 0:
            sleep(min(left, _MAX_SLEEP_S))
        runs += 1
        on_event("start", {"scheduled": due, "run": runs})
        try:
            result = job()
        except Exception as e:  # noqa: BLE001 - log it and keep the schedule
            on_event("error", {"scheduled": due, "error": e})
        else:
            on_event("done", {"scheduled": due, "result": result})
    return runs
