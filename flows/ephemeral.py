"""Prefect's temporary API server for a batch run without a Prefect server, tied to the batch's life.

With no PREFECT_API_URL, Prefect 3.8 runs its API in a child process (`python -m uvicorn ...
prefect.server.api.server:create_app`, started by `SubprocessASGIServer`) on first use, and stops it
at interpreter exit (atexit). A batch killed with SIGKILL never gets there, so the child (~225 MB)
ran on for good. Prefect 3.8 has no in-process API for flow runs: get_client and the events and
logs clients all start `SubprocessASGIServer()` when no URL is set, and Prefect's own Popen takes
no hook. So the batch starts that server itself, before the flow, as Prefect's default instance
(as prefect.testing.utilities.prefect_test_harness does), and every Prefect part that wants a
server finds this one:

- on Linux the child is started with PR_SET_PDEATHSIG: the kernel sends it SIGTERM the moment the
  batch process dies, however it dies (measured: gone ~2.5 s after a SIGKILL of the batch);
- everywhere, the pair (server pid, batch pid) is recorded under PREFECT_HOME/callqa-servers, and
  each batch first ends the servers whose batch is gone (no PDEATHSIG on macOS; a server started
  from a thread other than the main one, as the death signal follows the thread that forked).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prefect
import psutil
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, get_current_settings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_SERVER_APP = "prefect.server.api.server:create_app"


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook that makes the child get SIGTERM when this process dies (Linux, main thread only)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the batch died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


class BatchServer(SubprocessASGIServer):
    """Prefect's temporary server, whose child dies with the batch and is recorded for the orphan sweep."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        # The command and environment of prefect 3.8.8's SubprocessASGIServer._run_uvicorn_command
        # (prefect is pinned), started with the death signal.
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        args = [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory"]
        args += [_SERVER_APP, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error"]
        proc = subprocess.Popen([*args, "--lifespan", "on"], env=env, preexec_fn=_die_with_parent())
        record_server(proc.pid)
        return proc

    def stop(self) -> None:
        proc = self.server_process
        super().stop()
        if proc is not None:
            _records_dir().joinpath(f"{proc.pid}.json").unlink(missing_ok=True)


def ensure_server() -> str | None:
    """End orphaned servers of dead batches; then, without PREFECT_API_URL, start this process's server.

    Returns the server's API URL (None when a Prefect server is configured). Call it from the main
    thread before the flow; safe to call again (the running server is reused)."""
    end_orphans()
    if PREFECT_API_URL.value():
        return None
    instances = SubprocessASGIServer._instances
    current = instances.get(None)
    if current is not None and not current.running:
        del instances[None]
    server = BatchServer()  # Prefect's default instance (port None) from now on, unless one already runs
    server.start()
    if not isinstance(server, BatchServer) and server.server_process is not None:
        record_server(server.server_process.pid)  # started by Prefect before callqa could: swept if orphaned
    return server.api_url


def _records_dir(folder: Path | None = None) -> Path:
    return folder or Path(PREFECT_HOME.value()) / "callqa-servers"


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def record_server(server_pid: int, folder: Path | None = None) -> None:
    """Record a temporary server started by this process, for `end_orphans` once this process is gone."""
    folder = _records_dir(folder)
    rec = {"server": server_pid, "server_started": _started(server_pid), "batch": os.getpid()}
    rec["batch_started"] = _started(os.getpid())
    with contextlib.suppress(OSError):  # no record: the death signal still applies
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{server_pid}.tmp"
        tmp.write_text(json.dumps(rec))
        tmp.replace(folder / f"{server_pid}.json")


def _alive(pid: int, started: float | None) -> bool:
    # the same process, not a later one that was given the same pid
    now = _started(pid)
    return now is not None and started is not None and abs(now - started) < 0.01


def _ends(proc: psutil.Process, timeout: float) -> bool:
    # not our child, so no wait(): gone, or a zombie left for an init that does not reap (containers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def end_orphans(folder: Path | None = None) -> list[int]:
    """End the temporary servers recorded under PREFECT_HOME whose batch process is gone; their pids."""
    ended = []
    for path in sorted(_records_dir(folder).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            server, batch = int(rec["server"]), int(rec["batch"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if _alive(batch, rec.get("batch_started")):
            continue  # another batch, still running
        if _alive(server, rec.get("server_started")):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(server)
                if any(_SERVER_APP in part for part in proc.cmdline()):
                    proc.terminate()
                    if not _ends(proc, 10.0):
                        proc.kill()
                    log.warning(
                        "ended Prefect's temporary API server (pid %d) left running by a killed batch (pid %d)",
                        server,
                        batch,
                    )
                    ended.append(server)
        path.unlink(missing_ok=True)
    return ended
