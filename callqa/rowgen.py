"""Synthetic *stored* calls (rows, not audio) for rescoring benchmarks and scorecard tests.

Each call gets the events and metrics the detectors produce, drawn with realistic rates, plus the
truth of what was drawn, so a scorecard applied to these rows has a known right answer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from callqa.pipeline.store import refresh_call_facts
from callqa.pipeline.types import new_event_id

# (event type, role, probability per call, typical position as a fraction of the call)
_EVENT_RATES = [
    ("greeting", "agent", 0.92, 0.01),
    ("identity_verification", "agent", 0.85, 0.08),
    ("need_discovery", "agent", 0.9, 0.05),
    ("solution_explained", "agent", 0.8, 0.5),
    ("understanding_confirmed", "agent", 0.7, 0.7),
    ("further_help_offered", "agent", 0.8, 0.9),
    ("satisfaction_check", "agent", 0.6, 0.92),
    ("closing", "agent", 0.9, 0.97),
    ("empathy", "agent", 0.5, 0.2),
    ("complaint", "customer", 0.15, 0.15),
    ("negative_emotion", "customer", 0.2, 0.3),
    ("escalation_request", "customer", 0.05, 0.4),
    ("forbidden_phrase", "agent", 0.03, 0.6),
    ("dead_air", None, 0.25, 0.45),
]


def generate(
    n_calls: int, seed: int = 0, agents: int = 40, start: datetime = datetime(2026, 10, 1)
) -> dict[str, pd.DataFrame]:
    """DataFrames for calls, events and call_metrics (column names as in the schema)."""
    rng = np.random.default_rng(seed)
    calls, events, metrics = [], [], []
    for i in range(n_calls):
        cid = f"{i:08d}" + "0" * 56
        dur = float(rng.uniform(120, 900))
        agent = f"A{rng.integers(agents):03d}"
        started = start + timedelta(seconds=int(rng.integers(0, 60 * 86400)))
        calls.append(
            {
                "call_id": cid,
                "source_path": f"/calls/{i}.wav",
                "file_name": f"{i}.wav",
                "size_bytes": 1000,
                "agent_id": agent,
                "queue": ["billing", "support", "sales"][i % 3],
                "started_at": started,
                "duration_s": dur,
                "channels": 2,
                "sample_rate": 8000,
                "codec": "pcm_mulaw",
                "language": "en" if rng.random() < 0.7 else "zh",
                "language_probability": 0.98,
                "role_method": "channel_map",
                "role_confidence": 1.0,
                "roles": json.dumps({"ch0": "agent", "ch1": "customer"}),
                "processed_at": started + timedelta(hours=8),
                "pipeline_version": "bench",
                "models": "{}",
                "timings": "{}",
                "metadata": "{}",
                "warnings": "[]",
                "status": "processed",
                "run_id": "bench",
            }
        )
        for etype, role, p, pos in _EVENT_RATES:
            if rng.random() >= p:
                continue
            t = float(np.clip(rng.normal(pos, 0.02) * dur, 0.5, dur - 1))
            if etype == "greeting":
                t = float(rng.uniform(0.3, 6.0)) if rng.random() < 0.9 else float(rng.uniform(16, 40))
            data = (
                {"has_name": bool(rng.random() < 0.8), "has_company": bool(rng.random() < 0.85)}
                if etype == "greeting"
                else {}
            )
            spk = {"agent": "ch0", "customer": "ch1", None: None}[role]
            events.append(
                {
                    "event_id": new_event_id(cid, etype, t, t + 2, spk),
                    "call_id": cid,
                    "type": etype,
                    "start_s": t,
                    "end_s": t + 2.0,
                    "speaker": spk,
                    "role": role,
                    "evidence": f"synthetic {etype}",
                    "confidence": 0.9,
                    "detector_version": "rowgen",
                    "data": json.dumps(data),
                }
            )
        holds = int(rng.choice([0, 0, 0, 1, 1, 2]))
        hold_lengths = []
        for h in range(holds):
            t = float(rng.uniform(0.2, 0.8) * dur)
            length = float(rng.gamma(2.0, 30.0))
            hold_lengths.append(length)
            announced, thanked = bool(rng.random() < 0.85), bool(rng.random() < 0.75)
            data = {"announced": announced, "thanked": thanked, "kind": "music", "duration_s": length}
            events.append(
                {
                    "event_id": new_event_id(cid, "hold", t, t + length, None, h),
                    "call_id": cid,
                    "type": "hold",
                    "start_s": t,
                    "end_s": t + length,
                    "speaker": None,
                    "role": None,
                    "evidence": f"hold {length:.0f} s",
                    "confidence": 0.9,
                    "detector_version": "rowgen",
                    "data": json.dumps(data),
                }
            )
            if not announced:
                events.append(
                    {
                        "event_id": new_event_id(cid, "hold_unannounced", t, t + length, None, h),
                        "call_id": cid,
                        "type": "hold_unannounced",
                        "start_s": t,
                        "end_s": t + length,
                        "speaker": None,
                        "role": None,
                        "evidence": "hold without announcement",
                        "confidence": 0.9,
                        "detector_version": "rowgen",
                        "data": "{}",
                    }
                )
        m = {
            "duration_s": dur,
            "hold_count": float(holds),
            "hold_total_s": float(sum(hold_lengths)),
            "hold_max_s": float(max(hold_lengths)) if hold_lengths else 0.0,
            "dead_air_total_s": float(rng.exponential(4.0)),
            "interruptions_agent": float(rng.poisson(0.6)),
            "customer_emotion_end": float(np.clip(rng.normal(0.2, 0.35), -1, 1)),
            "talk_ratio_agent": float(rng.uniform(0.3, 0.7)),
        }
        metrics += [{"call_id": cid, "name": k, "value": v} for k, v in m.items()]
    return {"calls": pd.DataFrame(calls), "events": pd.DataFrame(events), "call_metrics": pd.DataFrame(metrics)}


def load_into(con, frames: dict[str, pd.DataFrame]) -> None:
    """Bulk-insert generated frames (the schema must exist: use callqa.pipeline.store.connect), with the
    calls' call_facts rows (which the writer stores for the calls it writes)."""
    for table, df in frames.items():
        cols = ", ".join(df.columns)
        con.register("_rowgen", df)
        try:
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _rowgen")
        finally:
            con.unregister("_rowgen")
    touched = {cid for df in frames.values() if "call_id" in df.columns for cid in df["call_id"]}
    if touched:
        refresh_call_facts(con, sorted(touched))
