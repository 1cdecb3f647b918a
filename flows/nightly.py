"""The nightly batch as a Prefect flow.

Workers (Prefect tasks on a thread pool) run calls through the stages and return results; only
the flow itself writes DuckDB, one transaction per call, as results arrive. A call is keyed by the
SHA-256 of its bytes, so a rerun over the same folder stores nothing twice, and a file that failed
permanently (corrupt audio) is recorded once and skipped afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from callqa import PIPELINE_VERSION
from callqa.config.settings import Settings, load_settings
from callqa.flows.process import Toolkit, load_toolkit, process_call
from callqa.pipeline import store
from callqa.pipeline.discover import discover
from callqa.pipeline.types import CallFailure, CallResult, CallSource

ProgressFn = Callable[[str, dict[str, Any]], None]


@task(name="process_call", cache_policy=NO_CACHE, task_run_name="{source.path}")
def process_call_task(source: CallSource, kit: Toolkit) -> CallResult | CallFailure:
    return process_call(source, kit)


def default_workers(settings: Settings) -> int:
    return max(1, settings.batch.workers)


@flow(name="nightly_batch", log_prints=False, validate_parameters=False)
def nightly_batch(
    input_dir: str,
    db_path: str,
    config_path: str | None = None,
    workers: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Process every new recording under input_dir into the DuckDB file at db_path."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    notify = progress or (lambda event, info: None)
    settings = load_settings(config_path)
    n_workers = workers or default_workers(settings)

    con = store.connect(db_path)
    try:
        run_id = store.start_run(con, "nightly_batch", str(input_dir), settings.model_dump(mode="json"), PIPELINE_VERSION)
        counts: dict[str, Any] = {"discovered": 0, "skipped": 0, "processed": 0, "failed": 0, "flagged": 0, "audio_s": 0.0}
        try:
            sources = discover(Path(input_dir), settings.batch.extensions, settings.batch.recursive)
            counts["discovered"] = len(sources)
            done = store.stored_call_ids(con) | store.permanent_failure_ids(con)
            todo = [s for s in sources if s.call_id not in done]
            counts["skipped"] = len(sources) - len(todo)
            if limit is not None:
                todo = todo[:limit]
            logger.info("run %s: %d recordings, %d already stored, %d to process", run_id, len(sources), counts["skipped"], len(todo))
            notify("start", {"run_id": run_id, "total": len(todo), **counts})
            if todo:
                kit = load_toolkit(settings, workers=n_workers)
                _run_calls(con, run_id, todo, kit, n_workers, counts, notify, logger)
            counts["wall_s"] = round(time.perf_counter() - t0, 3)
            store.finish_run(con, run_id, counts)
        except BaseException:
            counts["wall_s"] = round(time.perf_counter() - t0, 3)
            store.finish_run(con, run_id, counts, status="crashed")
            raise
    finally:
        con.close()
    summary = {"run_id": run_id, "db_path": str(db_path), **counts}
    notify("finish", summary)
    return summary


def _run_calls(con, run_id: str, todo: list[CallSource], kit: Toolkit, n_workers: int, counts: dict, notify: ProgressFn, logger) -> None:
    # A bounded window of calls in flight keeps memory flat on a folder of thousands of calls:
    # a worker's decoded audio is released as soon as its result is written.
    window = max(2, 2 * n_workers)
    pending = list(reversed(todo))
    in_flight = []
    while pending or in_flight:
        while pending and len(in_flight) < window:
            in_flight.append(process_call_task.submit(pending.pop(), quote(kit)))
        fut = next(iter(as_completed(in_flight)))
        in_flight.remove(fut)
        result = fut.result()
        if isinstance(result, CallResult):
            try:
                stored = store.write_call(con, result, run_id, PIPELINE_VERSION)
            except Exception as e:  # noqa: BLE001 - the transaction rolled back; record it and go on
                result = CallFailure(result.source.path, result.source.call_id, "store", f"{result.source.path}: {type(e).__name__}: {e}", False)
        if isinstance(result, CallResult):
            if stored:
                counts["processed"] += 1
                counts["audio_s"] += result.duration_s
                counts["flagged"] += int(any(s.flagged for s in result.scores))
            else:
                counts["skipped"] += 1  # same bytes under another name in this batch
            notify("call", {"path": result.source.path, "status": "stored" if stored else "duplicate", "result": result})
        else:
            store.write_failure(con, result, run_id)
            counts["failed"] += 1
            logger.warning("failed %s at %s: %s", result.path, result.stage, result.error)
            notify("call", {"path": result.path, "status": "failed", "failure": result})


def run_nightly(input_dir: str | Path, db_path: str | Path, config_path: str | Path | None = None,
                workers: int | None = None, limit: int | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run the flow with a thread pool sized to `workers` (ephemeral Prefect when no server is configured)."""
    settings = load_settings(config_path)
    n = workers or default_workers(settings)
    configured = nightly_batch.with_options(task_runner=ThreadPoolTaskRunner(max_workers=n))
    return configured(
        input_dir=str(input_dir), db_path=str(db_path), config_path=None if config_path is None else str(config_path),
        workers=n, limit=limit, progress=progress,
    )

