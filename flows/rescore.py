"""The `rescore` flow: apply a scorecard version to every stored call from its stored events and metrics.

No audio and no ASR (the stored rows are rebuilt as scoring input by callqa.pipeline.rescoring);
unscorable calls (callqa.pipeline.scorability) are skipped, as when they were processed.
The scorecard is validated before the database is opened.

Like the nightly writer (flows/nightly.py), a rescore holds the database file only for each commit:
it scores `chunk_calls` calls with the file released, then opens it once to write their results in one
transaction and read the next chunk's stored rows, so the web workspace, `callqa sql` and reviews get the
file between commits. A call's results land whole in one commit, so a reader sees each call
either at its old version or at the new one, never half of one; a rescore stopped midway leaves the
calls committed so far rescored, and running it again completes it (a commit replaces its calls'
results of that version). The whole rescore holds the batch lock (`store.batch_lock`), so no nightly
run or `callqa forget` changes the calls underneath it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger

from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import Scorecard, load_scorecard, resolve_scorecard_path

# Calls per commit. Measured on bench/rescore.py's 10,000 synthetic calls (2 shared cores, load 11-12,
# runs vary by ~20 %): one commit of all 10,000 took 22.2-25.0 s, 2 of 5,000 21.1-27.6 s, 5 of 2,000
# 28.3-29.7 s: every commit pays an open, a call_id semi-join over events and metrics, and a checkpoint
# of the changed tables (skipping those checkpoints is worse, 33.1 s: every open then replays the
# growing WAL). A 5,000-call commit held the file ~6 s at that load; readers wait up to
# database.lock_timeout_s (30 s) for it.
CHUNK_CALLS = 5000
GRADES = ("excellent", "good", "fair", "poor", "na")


def rescore_db(
    db_path: str | Path,
    card: Scorecard,
    source: str | None = None,
    all_languages: bool = False,
    *,
    chunk_calls: int = CHUNK_CALLS,
    lock_timeout_s: float | None = None,
    checkpoint_wal_bytes: int | None = None,
    on_commit: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Rescore every graded call of db_path with `card`, one commit per `chunk_calls` calls.

    `on_commit(calls_done, calls_total)` runs after each commit, with the file released."""
    if chunk_calls < 1:
        raise store.StoreError(db_path, f"chunk_calls must be at least 1, not {chunk_calls}")
    t0 = time.perf_counter()

    def writing(last: bool = False) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        # the last commit always checkpoints: readers after the rescore replay no WAL on every open
        wal = None if last else checkpoint_wal_bytes
        return store.open_db(db_path, timeout_s=lock_timeout_s, checkpoint_wal_bytes=wal)

    load_s = score_s = write_s = 0.0
    scored_n, flagged, commits = 0, 0, 0
    grades = dict.fromkeys(GRADES, 0)
    with store.batch_lock(db_path):
        t = time.perf_counter()
        with writing() as con:
            store.register_scorecard(con, card, source)
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT call_id FROM calls WHERE scorable_status IS DISTINCT FROM 'unscorable' ORDER BY call_id"
                ).fetchall()
            ]
            row = con.execute("SELECT count(*) FROM calls WHERE scorable_status = 'unscorable'").fetchone()
            unscorable = int(row[0]) if row else 0
            # the version's results of calls no longer graded (unscorable since, or erased) go, as a
            # whole-version replace would have dropped them
            for table in ("criterion_results", "call_scores"):
                con.execute(
                    f"DELETE FROM {table} WHERE scorecard_id = ? AND scorecard_version = ? "
                    "AND call_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                    [card.id, card.version, ids],
                )
            t_load = time.perf_counter()
            contexts = load_contexts(con, ids[:chunk_calls]) if ids else {}
            load_s += time.perf_counter() - t_load
        write_s += time.perf_counter() - t - load_s
        for start in range(0, len(ids), chunk_calls):
            chunk = ids[start : start + chunk_calls]
            following = ids[start + chunk_calls : start + 2 * chunk_calls]
            t_score = time.perf_counter()
            scored = rescore_contexts(card, contexts, all_languages)  # the file is free meanwhile
            t_write = time.perf_counter()
            score_s += t_write - t_score
            # one open per commit: this chunk's results, then the next chunk's rows, read in the same open
            with writing(last=not following) as con:
                store.replace_scores(con, card.id, card.version, scored, calls=chunk)
                t_load = time.perf_counter()
                contexts = load_contexts(con, following) if following else {}
                loaded = time.perf_counter() - t_load
            load_s += loaded
            write_s += time.perf_counter() - t_write - loaded
            commits += 1
            scored_n += len(scored)
            flagged += sum(1 for _, s in scored if s.flagged)
            for _, s in scored:
                if s.grade in grades:
                    grades[s.grade] += 1
            if on_commit is not None:
                on_commit(start + len(chunk), len(ids))
    return {
        "scorecard_id": card.id,
        "version": card.version,
        "calls_stored": len(ids) + unscorable,
        "calls_scored": scored_n,
        "unscorable": unscorable,  # not graded, as when they were processed
        "flagged": flagged,
        "grades": grades,
        "commits": commits,
        "load_s": round(load_s, 3),
        "score_s": round(score_s, 3),
        "write_s": round(write_s, 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        "db_path": str(Path(db_path)),
    }


@flow(name="rescore", validate_parameters=False)
def rescore(
    db_path: str, scorecard: str, all_languages: bool = False, config_path: str | None = None
) -> dict[str, Any]:
    """Re-apply one scorecard version to every stored call; results are kept per version."""
    from callqa.config.settings import load_settings

    logger = get_run_logger()
    card = load_scorecard(scorecard)  # raises ConfigError before the database is touched
    source = str(resolve_scorecard_path(scorecard))
    database = load_settings(Path(config_path) if config_path else None).database
    summary = rescore_db(
        db_path,
        card,
        source,
        all_languages,
        # a commit waits for a long reader (`callqa report`) as the batch's commits do
        lock_timeout_s=database.writer_lock_timeout_s,
        checkpoint_wal_bytes=int(database.checkpoint_wal_mb * 2**20),
    )
    logger.info(
        "rescored %d calls with %s v%d in %.1f s (%d commits)",
        summary["calls_scored"],
        card.id,
        card.version,
        summary["wall_s"],
        summary["commits"],
    )
    return summary
