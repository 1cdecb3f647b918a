"""Short synthesised stereo calls and DuckDB comparisons for the batch tests (resilience, Dask, retries).

The calls are real TTS speech (callqa.synth, piper) on an 8 kHz µ-law stereo line, a few seconds
each so that the real pipeline (ASR included) runs them quickly; each has different words, so each
has its own call_id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from callqa.synth.mix import render_call
from callqa.synth.script import CallScript, Turn

SCRIPTS: dict[str, list[Turn]] = {
    "billing": [
        Turn(
            "agent", "Thank you for calling Acme Energy, my name is Sarah, how can I help you today?", gap_before_s=0.3
        ),
        Turn("customer", "Hi Sarah, my bill is twice what I normally pay."),
        Turn("agent", "I am sorry about that, let me take a look for you."),
    ],
    "password": [
        Turn("agent", "Brightline support, this is Daniel speaking, how may I help?", gap_before_s=0.3),
        Turn("customer", "I cannot log in to my account since this morning."),
        Turn("agent", "Let me send you a reset link right now."),
    ],
    "delivery": [
        Turn("agent", "Parcelway, good afternoon, you are speaking with Priya.", gap_before_s=0.3),
        Turn("customer", "My parcel was meant to arrive on Monday and it never came."),
        Turn("agent", "I can see it is at the depot, it will be delivered tomorrow."),
    ],
    "no_greeting": [
        Turn("agent", "Account number?", gap_before_s=0.3),
        Turn("customer", "It is four four seven two nine one."),
        Turn("agent", "Right. The engineer is booked for Monday."),
    ],
    "address": [
        Turn("agent", "Thanks for calling Acme, my name is Tom, how can I help you?", gap_before_s=0.3),
        Turn("customer", "I am moving house next week and need to change my address."),
        Turn("agent", "No problem, what is the new postcode?"),
    ],
    "refund": [
        Turn("agent", "Good morning, Northwind retail, this is Anna, how can I help?", gap_before_s=0.3),
        Turn("customer", "I returned a pair of shoes and I am still waiting for the refund."),
        Turn("agent", "I have found the return, the refund will reach your card in three days."),
    ],
}


def write_calls(out_dir: Path, names: list[str] | None = None, corrupt: bool = True) -> dict[str, str]:
    """Render the calls into out_dir; returns {file name: call_id (sha256 of the bytes)}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = {}
    for name in names or list(SCRIPTS):
        path = out_dir / f"{name}.wav"
        script = CallScript(SCRIPTS[name], voices={"agent": "joe_high", "customer": "joe"})
        render_call(script, path, sample_rate=8000, stereo=True, codec="pcm_mulaw", telephone=True, write_truth=False)
        ids[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    if corrupt:
        (out_dir / "corrupt.wav").write_text("this is a text file, not a recording\n")
    return ids


# Columns that legitimately differ between two runs over the same audio: when and by which run.
VOLATILE = {"processed_at", "run_id", "timings", "scored_at", "source_path"}
CONTENT_TABLES = {
    "calls": "call_id",
    "utterances": "call_id, seq",
    "words": "call_id, utt_seq, seq",
    "events": "call_id, event_id",
    "call_metrics": "call_id, name",
    "criterion_results": "call_id, scorecard_id, scorecard_version, criterion_id",
    "call_scores": "call_id, scorecard_id, scorecard_version",
}


def table_content(db: Path, table: str) -> list[dict]:
    """Every row of `table` minus the volatile columns, in key order (floats rounded to 1e-6)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in VOLATILE]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {CONTENT_TABLES[table]}").fetchall()
    finally:
        con.close()
    return [{c: (round(v, 6) if isinstance(v, float) else v) for c, v in zip(cols, r)} for r in rows]


def first_difference(a: list[dict], b: list[dict]) -> str:
    """A readable account of where two tables' contents part (for assertion messages)."""
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)} rows"
    for i, (x, y) in enumerate(zip(a, b)):
        cols = [c for c in x if x[c] != y.get(c)]
        if cols:
            n = sum(1 for p, q in zip(a, b) if p != q)
            return f"{n} row(s) differ; first at row {i}: " + "; ".join(f"{c}: {x[c]!r} != {y.get(c)!r}" for c in cols)
    return "identical"


def orphans(db: Path) -> dict[str, int]:
    """Rows of per-call tables whose call is not in `calls` (a half-written call would leave these)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t} WHERE call_id NOT IN (SELECT call_id FROM calls)").fetchone()[0]
            for t in CONTENT_TABLES
            if t != "calls"
        }
    finally:
        con.close()
