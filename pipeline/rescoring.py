"""Rescoring input: a stored call rebuilt as scoring input from its stored events and metrics.

No audio and no ASR: everything a scorecard reads (events, call metrics, roles, duration) is in
DuckDB. The `rescore` flow (callqa.flows.rescore) wraps these in one transaction. The stored
scorability decides as it did when the call was processed (callqa.pipeline.scorability.grade):
unscorable calls are not loaded, so no scorecard version ever grades them, and partial ones are graded
on the agent's side only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import NamedTuple

import duckdb

from callqa.pipeline.scorability import agent_side, grade
from callqa.pipeline.scoring import Scorecard, ScoringContext
from callqa.pipeline.types import CallScore, Event, Scorability


class StoredCall(NamedTuple):
    language: str
    context: ScoringContext
    scorability: Scorability


def load_contexts(con: duckdb.DuckDBPyConnection, call_ids: list[str] | None = None) -> dict[str, StoredCall]:
    """call_id -> (language, ScoringContext, Scorability) built from the stored rows, in three bulk queries;
    unscorable calls are left out."""
    where, params = "", []
    if call_ids is not None:
        where, params = "WHERE call_id IN (SELECT unnest(?))", [call_ids]
    graded = "scorable_status IS DISTINCT FROM 'unscorable'"
    calls = con.execute(
        f"""SELECT call_id, language, duration_s, roles, scorable_status, scorable_reasons FROM calls
            {where or "WHERE true"} AND {graded}""",
        params,
    ).fetchall()
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
    for cid, lang, dur, roles, status, reasons in calls:
        roles_known = bool(roles and json.loads(roles))
        scorability = Scorability(status or "scorable", tuple(reasons or ()))
        out[cid] = StoredCall(lang or "", ScoringContext(events[cid], dur, roles_known, metrics[cid]), scorability)
    return out


def rescore_contexts(
    card: Scorecard, contexts: dict[str, StoredCall], all_languages: bool = False
) -> list[tuple[str, CallScore]]:
    view = agent_side(card)  # once for every partial call
    scored = []
    for cid, (lang, ctx, scorability) in contexts.items():
        if all_languages or card.applies_to(lang):
            s = grade(card, ctx, scorability, view)
            if s is not None:
                scored.append((cid, s))
    return scored
