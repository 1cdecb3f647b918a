"""The nightly batch as a Prefect flow.

Workers run calls through the stages and return results; only the flow itself writes DuckDB, one
transaction per call, as results arrive. It opens the file for each commit and closes it again
(`store.open_db`, waiting out a reader's or a reviewer's brief hold), never while a call is being
processed, so `callqa sql`, `callqa review` and the web workspace work while the batch runs; a lock
file beside the database (`store.batch_lock`) keeps a second batch out for the whole run. Workers
are Prefect tasks on a local thread pool, or on a Dask cluster through prefect-dask
(`batch.dask_address` / `--dask-address`); every worker process loads its models once
(flows/worker.py) and receives only the settings. For very large runs (`batch.parquet_dir`)
workers write one Parquet file per call and the writer bulk-loads them.

A call is keyed by the SHA-256 of its bytes, so a rerun over the same folder stores nothing twice,
and a file that failed permanently (corrupt audio) is recorded once and skipped afterwards. A batch
killed at any moment loses nothing already committed: the next run closes the dead run's row as
'crashed', loads any Parquet files it had staged, and processes only what is not stored.
Byte-identical recordings under several names are one call: the run summary and `runs.duplicates`
say which file was kept and which were the same audio. A full disk under the database stops the
batch with one line (pipeline/diskfull.py). Without a Prefect server, Prefect's temporary API
server is started so that it dies with the batch, even one killed with SIGKILL (flows/ephemeral.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from callqa import PIPELINE_VERSION
from callqa.config.phrases import SUPPORTED_LANGUAGES, load_phrasebook
from callqa.config.settings import Settings, load_settings
from callqa.flows.ephemeral import ensure_server
from callqa.flows.worker import toolkit_for
from callqa.pipeline import store
from callqa.pipeline.call import process_call
from callqa.pipeline.discover import scan
from callqa.pipeline.diskfull import disk_full_error, is_disk_full
from callqa.pipeline.redact import redact_sources
from callqa.pipeline.scoring import load_scorecard
from callqa.pipeline.staging import StagedCall, bulk_load, stage_call, staged_files
from callqa.pipeline.types import CallFailure, CallResult, CallSource, ConfigError, ModelUnavailable
from callqa.workspace.chain import published_head
from callqa.workspace.forget import forgotten_call_ids, retention_step

ProgressFn = Callable[[str, dict[str, Any]], None]


class TransientCallError(Exception):
    """Raised inside the task so that Prefect retries it; carries the failure for the last attempt."""

    def __init__(self, failure: CallFailure):
        super().__init__(failure)
        self.failure = failure

    def __str__(self) -> str:
        return self.failure.error


def _retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry I/O and memory trouble, never a bad file or a bug."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        with contextlib.suppress(Exception):
            exc = state.result(raise_on_failure=False)
    return isinstance(exc, TransientCallError)


@task(
    name="process_call",
    cache_policy=NO_CACHE,
    task_run_name="{source.path}",
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=_retry_transient,
)
def process_call_task(
    source: CallSource,
    settings: Settings,
    local_slots: int = 1,
    staging_dir: str | None = None,
    run_id: str | None = None,
) -> CallResult | CallFailure | StagedCall:
    kit = toolkit_for(settings, local_slots)  # loaded once per worker process, then reused
    result = process_call(source, kit)
    if isinstance(result, CallFailure) and result.transient:
        raise TransientCallError(result)
    if staging_dir is not None and isinstance(result, CallResult):
        try:
            return stage_call(result, staging_dir, run_id, PIPELINE_VERSION)
        except OSError as e:  # a full or briefly unreachable shared disk
            raise TransientCallError(
                CallFailure(source.path, source.call_id, "store", f"{source.path}: {e}", False, True)
            ) from e
    return result


def default_workers(settings: Settings) -> int:
    return max(1, settings.batch.workers)


def _cluster_slots() -> int | None:
    """Task slots of the Dask cluster this flow runs on (None on the local thread pool)."""
    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None) if ctx else None
    client = getattr(runner, "client", None) if type(runner).__name__ == "DaskTaskRunner" else None
    if client is None:
        return None
    return max(1, sum(client.nthreads().values()))


@flow(name="nightly_batch", log_prints=False, validate_parameters=False)
def nightly_batch(
    input_dir: str,
    db_path: str,
    config_path: str | None = None,
    workers: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    parquet_dir: str | None = None,
) -> dict[str, Any]:
    """Process every new recording under input_dir into the DuckDB file at db_path."""
    try:
        return _batch(input_dir, db_path, config_path, workers, limit, progress, parquet_dir)
    except Exception as e:
        if not is_disk_full(e):
            raise
        # A full disk stops the batch with one line: a Failed state carrying the error makes the flow
        # call raise it without Prefect logging a traceback. What was committed stays.
        full = disk_full_error(db_path)
        return Failed(message=str(full), data=full)  # type: ignore[return-value]


def _batch(
    input_dir: str,
    db_path: str,
    config_path: str | None,
    workers: int | None,
    limit: int | None,
    progress: ProgressFn | None,
    parquet_dir: str | None,
) -> dict[str, Any]:
    logger = get_run_logger()
    t0 = time.perf_counter()
    notify = progress or (lambda event, info: None)
    settings = load_settings(config_path)
    cluster_slots = _cluster_slots()
    n_workers = cluster_slots or workers or default_workers(settings)
    staging = parquet_dir or (str(settings.batch.parquet_dir) if settings.batch.parquet_dir else None)

    wait = settings.database.writer_lock_timeout_s
    wal_bytes = int(settings.database.checkpoint_wal_mb * 2**20)

    def db() -> contextlib.AbstractContextManager[Any]:
        # the file for one commit only: readers, reviewers and the web workspace use it in between
        return store.open_db(db_path, timeout_s=wait, checkpoint_wal_bytes=wal_bytes)

    counts: dict[str, Any] = {
        "discovered": 0,
        "skipped": 0,
        "processed": 0,
        "failed": 0,
        "flagged": 0,
        "audio_s": 0.0,
    }
    # one batch per database at a time (the file itself is released between commits)
    with store.batch_lock(db_path):
        with db() as con:
            if staging:
                # Calls a killed run had staged but not loaded: load them first (they keep that run's id),
                # so they are not processed again.
                leftovers = staged_files(staging)
                if leftovers:
                    counts["recovered"] = len(bulk_load(con, leftovers))
                    logger.info("loaded %d call(s) staged by an earlier run", counts["recovered"])
            stale = store.close_stale_runs(con)
            if stale:
                logger.warning(
                    "closed %d run(s) left 'running' by a killed batch as 'crashed': %s", len(stale), ", ".join(stale)
                )
            run_id = store.start_run(
                con, "nightly_batch", str(input_dir), settings.model_dump(mode="json"), PIPELINE_VERSION
            )
        try:
            with db() as con:
                purged = retention_step(con, settings, staging, logger)  # before discovery: none is stored again
            if purged:
                counts["purged"] = purged
            found = scan(
                Path(input_dir),
                settings.batch.extensions,
                settings.batch.recursive,
                filename_pattern=settings.metadata.filename_pattern,
            )
            # customer ids pseudonymised, free-text metadata redacted: raw values never reach a worker
            sources = redact_sources(found.sources, settings.redaction)
            counts["discovered"] = len(sources)
            counts["duplicates"] = len(found.duplicates)
            duplicates = found.duplicate_groups()
            with db() as con:
                if duplicates:
                    store.record_duplicates(con, run_id, duplicates)
                done = store.stored_call_ids(con) | store.permanent_failure_ids(con) | forgotten_call_ids(con)
            for g in duplicates:
                logger.info("same audio, one call: %s (kept) = %s", g["kept"], ", ".join(g["same_audio"]))
            todo = [s for s in sources if s.call_id not in done]
            counts["skipped"] = len(sources) - len(todo)
            if limit is not None:
                todo = todo[:limit]
            where = f"Dask cluster ({n_workers} worker threads)" if cluster_slots else f"{n_workers} local worker(s)"
            logger.info(
                "run %s: %d recordings, %d already stored, %d to process on %s",
                run_id,
                len(sources),
                counts["skipped"],
                len(todo),
                where,
            )
            notify("start", {"run_id": run_id, "total": len(todo), **counts})
            if todo:
                if cluster_slots:
                    # Workers load the models themselves; check scorecards and phrase lists here first,
                    # so a typo fails the run once instead of failing every call on every worker.
                    for card in settings.scorecards:
                        load_scorecard(card)
                    for lang in SUPPORTED_LANGUAGES:
                        load_phrasebook(lang)
                else:
                    toolkit_for(settings, n_workers)  # load the models before the first call is timed
                _run_calls(
                    db,
                    run_id,
                    todo,
                    settings,
                    n_workers,
                    staging,
                    counts,
                    notify,
                    logger,
                    local_slots=1 if cluster_slots else n_workers,
                )
            counts["wall_s"] = round(time.perf_counter() - t0, 3)
            with db() as con:
                store.finish_run(con, run_id, counts)
                audit_head = published_head(con)
        except BaseException:
            counts["wall_s"] = round(time.perf_counter() - t0, 3)
            # best effort, briefly: this write may fail as well (a full disk, a reader holding the file), and
            # the next run closes the row then
            with contextlib.suppress(Exception), store.open_db(db_path, timeout_s=min(wait, 5.0)) as con:
                store.finish_run(con, run_id, counts, status="crashed")
            raise
    summary = {"run_id": run_id, "db_path": str(db_path), **counts, "audit_head": audit_head}
    summary["duplicate_groups"] = duplicates
    # counts, flagged calls and the report's path as a Prefect artifact (and the report, when configured)
    from callqa.flows.artifacts import publish_run

    summary["report"] = publish_run(summary, settings, logger)
    notify("finish", summary)
    return summary


def _outcome(fut, source: CallSource) -> CallResult | CallFailure | StagedCall:
    """The task's result; a task that raised becomes a CallFailure, except for errors that would fail
    every call alike (configuration, a model that cannot load), which stop the batch."""
    try:
        return fut.result()
    except TransientCallError as e:  # still failing after Prefect's retries: record it, the next run tries again
        return e.failure
    except (ConfigError, ModelUnavailable):
        raise
    except Exception as e:  # noqa: BLE001 - e.g. a Dask worker that died (KilledWorker): retry next run
        return CallFailure(
            source.path, source.call_id, "worker", f"{source.path}: {type(e).__name__}: {e}", False, True
        )


def _run_calls(
    db: Callable[[], contextlib.AbstractContextManager[Any]],
    run_id: str,
    todo: list[CallSource],
    settings: Settings,
    n_workers: int,
    staging: str | None,
    counts: dict,
    notify: ProgressFn,
    logger,
    local_slots: int = 1,
) -> None:
    # A bounded window of calls in flight keeps memory flat on a folder of thousands of calls:
    # a worker's decoded audio is released as soon as its result is written.
    window = max(2, 2 * n_workers)
    batch = settings.batch
    submit = process_call_task.with_options(retries=batch.retries, retry_delay_seconds=batch.retry_delay_s).submit
    pending = list(reversed(todo))
    in_flight: dict[Any, CallSource] = {}
    staged: list[StagedCall] = []

    def load_staged() -> None:
        if not staged:
            return
        with db() as con:  # one transaction: readers see all of these calls or none
            new = set(bulk_load(con, [s.parquet for s in staged]))
        for s in staged:
            if s.call_id in new:
                counts["processed"] += 1
                counts["audio_s"] += s.duration_s
                counts["flagged"] += int(s.flagged)
            else:
                counts["skipped"] += 1  # same bytes under another name in this batch
        logger.info("bulk-loaded %d staged call(s)", len(new))
        notify("loaded", {"calls": len(new), "staged": len(staged)})
        staged.clear()

    while pending or in_flight:
        while pending and len(in_flight) < window:
            source = pending.pop()
            in_flight[submit(source, settings, local_slots, staging, run_id)] = source
        fut = next(iter(as_completed(list(in_flight))))
        result = _outcome(fut, in_flight.pop(fut))
        if isinstance(result, StagedCall):
            staged.append(result)
            notify("call", {"path": result.path, "status": "staged", "staged": result})
            if len(staged) >= batch.parquet_load_every or not (pending or in_flight):
                load_staged()
            continue
        if isinstance(result, CallResult):
            try:
                # opened per call and never while one is processed; the call is one transaction in it
                with db() as con:
                    stored = store.write_call(con, result, run_id, PIPELINE_VERSION)
            except Exception as e:  # noqa: BLE001 - the transaction rolled back; record it and go on
                # a full disk, or a file locked past the writer's timeout: every later call would fail alike
                if is_disk_full(e) or isinstance(e, store.StoreLocked):
                    raise
                result = CallFailure(
                    result.source.path,
                    result.source.call_id,
                    "store",
                    f"{result.source.path}: {type(e).__name__}: {e}",
                    False,
                )
        if isinstance(result, CallResult):
            if stored:
                counts["processed"] += 1
                counts["audio_s"] += result.duration_s
                counts["flagged"] += int(any(s.flagged for s in result.scores))
            else:
                counts["skipped"] += 1  # same bytes under another name in this batch
            notify(
                "call", {"path": result.source.path, "status": "stored" if stored else "duplicate", "result": result}
            )
        else:
            with db() as con:
                store.write_failure(con, result, run_id)
            counts["failed"] += 1
            logger.warning("failed %s at %s: %s", result.path, result.stage, result.error)
            notify("call", {"path": result.path, "status": "failed", "failure": result})
    load_staged()


@contextlib.contextmanager
def _api_for_dask_workers() -> Iterator[None]:
    """Make the Dask workers report to the same Prefect API as the flow.

    With a Prefect server configured (PREFECT_API_URL) nothing is needed. Without one, Prefect would
    start a private temporary server in every worker process, all on the same SQLite file; instead
    start the temporary server here and hand its URL to the workers through the task context. A
    cluster on other machines cannot reach 127.0.0.1, so it needs a real Prefect server (README).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api_url = ensure_server()
    if api_url is None:
        yield
        return
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield


def run_nightly(
    input_dir: str | Path,
    db_path: str | Path,
    config_path: str | Path | None = None,
    workers: int | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    dask_address: str | None = None,
    parquet_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the flow on a local thread pool sized to `workers`, or on the Dask cluster at `dask_address`
    (or `batch.dask_address`). Prefect runs ephemerally when no server is configured."""
    settings = load_settings(config_path)
    address = dask_address or settings.batch.dask_address
    n = workers or default_workers(settings)
    params = dict(
        input_dir=str(input_dir),
        db_path=str(db_path),
        config_path=None if config_path is None else str(config_path),
        workers=n,
        limit=limit,
        progress=progress,
        parquet_dir=None if parquet_dir is None else str(parquet_dir),
    )
    if address:
        from prefect_dask import DaskTaskRunner

        with _api_for_dask_workers():
            return nightly_batch.with_options(task_runner=DaskTaskRunner(address=address))(**params)
    # Prefect's temporary server (no PREFECT_API_URL) started here, so that it dies with this process
    ensure_server()
    return nightly_batch.with_options(task_runner=ThreadPoolTaskRunner(max_workers=n))(**params)
