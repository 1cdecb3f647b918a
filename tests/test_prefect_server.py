"""The Prefect server path for real: `prefect server start` on localhost, `callqa deploy` registering and
serving the nightly deployment, Prefect's own CLI listing it, a run started with `prefect deployment run`
and the run's artifact read back through the client (issue 19 item 6: fastapi 0.151+ broke the listing)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from batch_helpers import write_calls

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent
DEPLOYMENT = "callqa-nightly/nightly"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # own session: the finaliser ends the whole group (prefect server start runs uvicorn and services below it)
    out = log.open("wb")
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with_group = [signal.SIGTERM, signal.SIGKILL]
    for sig in with_group:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    procs: list[subprocess.Popen] = []
    try:
        # SQLite under PREFECT_HOME is the server's default database
        procs.append(_start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                            home / "server.log"))  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            assert procs[0].poll() is None, (home / "server.log").read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prefect server did not become healthy in 120 s"
            time.sleep(0.5)
        yield {"api": api, "env": {**env, "PREFECT_API_URL": api}, "home": home, "procs": procs}
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture(scope="module")
def served(server, tmp_path_factory, asr_model_settings) -> dict:
    root = tmp_path_factory.mktemp("served")
    write_calls(root / "calls", ["billing"], corrupt=False)
    cfg = root / "settings.yaml"
    cfg.write_text(
        yaml.safe_dump({"models": {"cache_dir": str(asr_model_settings.cache_dir)}, "scorecards": ["inbound_basic"]})
    )
    db = root / "qa.duckdb"
    args = [str(BIN / "callqa"), "deploy", "--cron", "0 2 * * *", "--timezone", "UTC", "--mode", "prefect"]
    args += ["--input", str(root / "calls"), "--db", str(db), "--config", str(cfg)]
    server["procs"].append(_start(args, server["env"], root / "serve.log"))  # stopped by the server fixture
    return {"db": db, "log": root / "serve.log", "proc": server["procs"][-1]}


def _client_call(api: str, fn):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as client:
            return await fn(client)

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(go())


def test_deploy_registers_lists_runs_and_publishes_the_artifact(server, served):
    api, env = server["api"], server["env"]
    deadline = time.monotonic() + 120
    while True:
        deps = _client_call(api, lambda c: c.read_deployments())
        names = [d.name for d in deps]
        if "nightly" in names:
            break
        assert served["proc"].poll() is None, served["log"].read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"deployment not registered in 120 s: {names}"
        time.sleep(1)
    dep = next(d for d in deps if d.name == "nightly")
    assert dep.parameters["input_dir"].endswith("calls") and dep.parameters["db_path"] == str(served["db"])

    # Prefect's own CLI against the server: the 422 of fastapi 0.151+ (explicit null `limit`) fails here
    ls = subprocess.run([str(BIN / "prefect"), "deployment", "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0, ls.stdout + ls.stderr
    assert DEPLOYMENT in ls.stdout

    run = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", DEPLOYMENT, "--watch", "--watch-interval", "2"]
        + ["--watch-timeout", "400"],
        env=env,
        capture_output=True,
        text=True,
        timeout=450,
    )
    assert run.returncode == 0, run.stdout + run.stderr + served["log"].read_text(errors="replace")[-3000:]

    runs = _client_call(api, lambda c: c.read_flow_runs())
    mine = [r for r in runs if r.deployment_id == dep.id]
    assert len(mine) == 1 and mine[0].state.is_completed(), [(r.name, r.state) for r in runs]
    fr = subprocess.run([str(BIN / "prefect"), "flow-run", "ls"], env=env, capture_output=True, text=True, timeout=60)
    assert fr.returncode == 0 and mine[0].name in fr.stdout, fr.stdout + fr.stderr

    # the artifact of the run the deployment started: the nightly flow runs as a subflow, so look by key
    arts = _client_call(api, lambda c: c.read_artifacts())
    nightly = [a for a in arts if a.key == "callqa-nightly-run"]
    assert len(nightly) == 1, [a.key for a in arts]
    md = nightly[0].data
    con = duckdb.connect(str(served["db"]), read_only=True)
    try:
        run_id, processed = con.execute("SELECT run_id, n_processed FROM runs").fetchone()
        n_calls = con.execute("SELECT count(*) FROM calls").fetchone()[0]
    finally:
        con.close()
    assert n_calls == 1 and processed == 1
    assert f"callqa nightly run `{run_id}`" in md
    assert "| 1 | 0 | 1 | 0 |" in md  # discovered, skipped, processed, failed

    # the UI is served by the same server and its data calls answer
    assert httpx.get(api.removesuffix("/api") + "/", timeout=10).status_code == 200
    body = {"limit": None, "offset": 0, "sort": None}
    assert httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).status_code == 200
