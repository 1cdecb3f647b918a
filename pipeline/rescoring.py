"""Rescoring input: a stored call rebuilt as scoring input from its stored events and metrics.

No audio and no ASR: everything a scorecard reads (events, call metrics, roles, duration) is in
DuckDB. The `rescore` flow (callqa.flows.rescore) wraps these in one transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict

import duckdb

from callqa.pipeline.scoring import Scorecard, ScoringContext, score_call
from callqa.pipeline.types import CallScore, Event


def load_contexts(
    con: duckdb.DuckDBPyConnection, call_ids: list[str] | None = None
) -> dict[str, tuple[str, ScoringContext]]:
    """call_id -> (language, ScoringContext) built from the stored rows, in three bulk queries."""
    where, params = "", []
    if call_ids is not None:
        where, params = "WHERE call_id IN (SELECT unnest(?))", [call_ids]
    calls = con.execute(f"SELECT call_id, language, duration_s, roles FROM calls {where}", params).fetchall()
    events: dict[str, list[Event]] = defaultdict(list)
    for cid, eid, typ, s, e, spk, role, ev, conf, ver, data in con.execute(
        f"""SELECT call_id, event_id, type, start_s, end_s, speaker, role, evidence, confidence, detector_version, data
            FROM events {where} ORDER BY call_id, start_s""",
        params,
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


def rescore_contexts(
    card: Scorecard, contexts: dict[str, tuple[str, ScoringContext]], all_languages: bool = False
) -> list[tuple[str, CallScore]]:
    return [
        (cid, score_call(card, ctx)) for cid, (lang, ctx) in contexts.items() if all_languages or card.applies_to(lang)
    ]
