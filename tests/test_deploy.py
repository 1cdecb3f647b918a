"""`callqa deploy`: the cron schedule, the Prefect deployment it serves, and the local scheduler loop
used when no Prefect server is configured (driven here by a simulated clock, not by waiting)."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.flows import deploy as dep
from callqa.pipeline.types import ConfigError

UTC = dt.UTC


def test_next_times_follow_the_cron_in_its_time_zone_across_dst():
    s = dep.make_schedule("0 2 * * *", "Europe/London")
    # London moves to BST on 2026-03-29: 02:00 local is 01:00 UTC from then on
    times = s.next_times(3, after=dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC))
    assert [t.astimezone(UTC).strftime("%m-%d %H:%M") for t in times] == ["03-28 02:00", "03-29 01:00", "03-30 01:00"]
    assert all(t.hour == 2 and t.minute == 0 for t in times)
    # strictly after: a tick exactly at `after` is not repeated
    nxt = s.next_times(1, after=times[0])[0]
    assert nxt == times[1]


@pytest.mark.parametrize(
    "cron, tz, fragment",
    [
        ("0 25 * * *", "UTC", "Invalid cron"),
        ("every night", "UTC", "Invalid cron"),
        ("0 2 * * *", "Mars/Olympus", "Invalid timezone"),
    ],
)
def test_bad_schedules_are_refused_up_front(cron, tz, fragment):
    with pytest.raises(ConfigError) as e:
        dep.make_schedule(cron, tz)
    assert fragment in str(e.value) and cron in str(e.value)


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.t = start
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, s: float) -> None:
        assert 0 < s <= 60.0  # wakes at least every minute to re-check the clock
        self.slept.append(s)
        self.t += dt.timedelta(seconds=s)


def test_local_scheduler_runs_the_job_at_each_tick_and_survives_a_failed_night():
    clock = FakeClock(dt.datetime(2026, 5, 1, 1, 58, 30, tzinfo=UTC))
    ran: list[dt.datetime] = []
    events: list[str] = []

    def job():
        ran.append(clock.now())
        clock.t += dt.timedelta(minutes=40)  # the batch takes a while
        if len(ran) == 2:
            raise RuntimeError("disk full")
        return {"processed": 3}

    n = dep.serve_locally(
        dep.make_schedule("0 2 * * *", "UTC"),
        job,
        now=clock.now,
        sleep=clock.sleep,
        max_runs=3,
        on_event=lambda e, info: events.append(e),
    )
    assert n == 3
    assert [t.strftime("%d %H:%M:%S") for t in ran] == ["01 02:00:00", "02 02:00:00", "03 02:00:00"]
    assert events.count("error") == 1 and events.count("done") == 2  # the failed night did not stop the schedule


def test_a_run_longer_than_the_interval_is_not_doubled():
    clock = FakeClock(dt.datetime(2026, 5, 1, 0, 59, 0, tzinfo=UTC))
    ran: list[dt.datetime] = []

    def job():
        ran.append(clock.now())
        clock.t += dt.timedelta(minutes=90)  # an hourly schedule, a 90-minute batch

    dep.serve_locally(dep.make_schedule("0 * * * *", "UTC"), job, now=clock.now, sleep=clock.sleep, max_runs=2)
    assert [t.strftime("%H:%M") for t in ran] == ["01:00", "03:00"]  # 02:00 fell inside the first run


def test_prefect_deployment_carries_the_schedule_and_parameters(tmp_path):
    params = {
        "input_dir": str(tmp_path),
        "db_path": str(tmp_path / "qa.duckdb"),
        "config_path": None,
        "workers": 2,
        "dask_address": "tcp://10.0.0.5:8786",
        "parquet_dir": None,
    }
    d = dep.build_deployment(dep.make_schedule("30 1 * * 1-5", "America/New_York"), params, name="weeknights")
    assert d.name == "weeknights" and d.flow_name == "callqa-nightly"
    assert d.parameters == params
    (sched,) = d.schedules
    assert sched.schedule.cron == "30 1 * * 1-5" and sched.schedule.timezone == "America/New_York"
    assert d.entrypoint == "callqa.flows.deploy.scheduled_nightly"


def test_cli_dry_run_checks_everything_and_prints_the_plan(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "deploy",
            "--cron",
            "0 2 * * *",
            "--input",
            str(tmp_path),
            "--db",
            str(tmp_path / "qa.duckdb"),
            "--timezone",
            "UTC",
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "0 2 * * *" in res.output and "02:00 UTC" in res.output and "local scheduler" in res.output

    res = runner.invoke(app, ["deploy", "--cron", "0 2 * * *", "--input", str(tmp_path / "missing"), "--dry-run"])
    assert res.exit_code != 0 and "does not exist" in res.output
    res = runner.invoke(app, ["deploy", "--cron", "0 2 * *", "--input", str(tmp_path), "--dry-run"])
    assert res.exit_code != 0 and "Invalid cron" in res.output
    res = runner.invoke(
        app, ["deploy", "--cron", "0 2 * * *", "--input", str(tmp_path), "--mode", "prefect", "--dry-run"]
    )
    assert res.exit_code != 0 and "PREFECT_API_URL" in res.output
