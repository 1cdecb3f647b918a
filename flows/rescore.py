"""Rescoring: apply a scorecard version to every stored call from its stored events and metrics.

No audio and no ASR: everything a scorecard reads (events, call metrics, roles, duration) is in
DuckDB. The scorecard is validated before the database is opened, and results land in one
transaction, so an invalid scorecard or a crash changes nothing.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger

from callqa.pipeline import store
from callqa.pipeline.scoring import Scorecard, ScoringContext, load_scorecard, resolve_scorecard_path, score_call
from callqa.pipeline.types import CallScore, Event


def load_contexts(con: duckdb.DuckDBPyConnection, call_ids: list[str] | None = None) -> dict[str, tuple[str, ScoringContext]]:
    """call_id -> (language, ScoringContext) built from the stored rows, in three bulk queries."""
    where, params = "", []
    if call_ids is not None:
        where, params = "WHERE call_id IN (SELECT unnest(?))", [call_ids]
    calls = con.execute(f"SELECT call_id, language, duration_s, roles FROM calls {where}", params).fetchall()
    events: dict[str, list[Event]] = defaultdict(list)
    for cid, eid, typ, s, e, spk, role, ev, conf, ver, data in con.execute(
        f"""SELECT call_id, event_id, type, start_s, end_s, speaker, role, evidence, confidence, detector_version, data
            FROM events {where} ORDER BY call_id, start_s""", params
    ).fetchall():
        events[cid].append(Event(typ, s, e, spk, role, ev, conf, ver, json.loads(data) if data else {}, event_id=eid))
    metrics: dict[str, dict[str, float | None]] = defaultdict(dict)
    for cid, name, value in con.execute(f"SELECT call_id, name, value FROM call_metrics {where}", params).fetchall():
        metrics[cid][name] = value
    out = {}
    for cid, lang, dur, roles in calls:
        roles_known = bool(roles and json.loads(roles))
        out[cid] = (lang or "", ScoringContext(events[cid], dur, roles_known, metrics[cid]))
    return out


def rescore_contexts(card: Scorecard, contexts: dict[str, tuple[str, ScoringContext]], all_languages: bool = False) -> list[tuple[str, CallScore]]:
    return [
        (cid, score_call(card, ctx))
        for cid, (lang, ctx) in contexts.items()
        if all_languages or card.applies_to(lang)
    ]


@flow(name="rescore", validate_parameters=False)
def rescore(db_path: str, scorecard: str, all_languages: bool = False) -> dict[str, Any]:
    """Re-apply one scorecard version to every stored call; results are kept per version."""
    logger = get_run_logger()
    t0 = time.perf_counter()
    card = load_scorecard(scorecard)  # raises ConfigError before the database is touched
    source = str(resolve_scorecard_path(scorecard))
    con = store.connect(db_path)
    try:
        store.register_scorecard(con, card, source)
        t_load = time.perf_counter()
        contexts = load_contexts(con)
        t_score = time.perf_counter()
        scored = rescore_contexts(card, contexts, all_languages)
        t_write = time.perf_counter()
        store.replace_scores(con, card.id, card.version, scored)
        t_end = time.perf_counter()
    finally:
        con.close()
    summary = {
        "scorecard_id": card.id,
        "version": card.version,
        "calls_stored": len(contexts),
        "calls_scored": len(scored),
        "flagged": sum(1 for _, s in scored if s.flagged),
        "grades": {g: sum(1 for _, s in scored if s.grade == g) for g in ("excellent", "good", "fair", "poor", "na")},
        "load_s": round(t_score - t_load, 3),
        "score_s": round(t_write - t_score, 3),
        "write_s": round(t_end - t_write, 3),
        "wall_s": round(t_end - t0, 3),
        "db_path": str(Path(db_path)),
    }
    logger.info("rescored %d calls with %s v%d in %.1f s", len(scored), card.id, card.version, summary["wall_s"])
    return summary
