"""Appending human actions other than reviews to the keyed chain (audit_log), with their free text apart.

Workflow transitions and calibration verdicts are chain entries (callqa.workspace.chain.append_entry):
the facts go into the MACed entry, so `callqa audit` verifies them with the reviews and erasures. Free
text goes into `audit_notes` (seq, call_id, note): audit_log outlives `callqa forget`, a note must not,
and the entry keeps an HMAC of the note (`note_mac`), so a note edited in place is caught by
`note_problems`. A note removed by erasure leaves nothing to check, which is what erasure means.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from callqa.pipeline.pii import RedactionOptions, redact_text
from callqa.workspace import chain
from callqa.workspace.ledger import AuditKey, database_path, head_path, load_key, os_user

NOTE_DOMAIN = "callqa audit note\n"  # keeps a note's HMAC apart from every chain MAC made with the same key


@dataclass(frozen=True)
class Pending:
    """One chain entry to append: `detail` holds the facts, `note` the free text (None: none)."""

    kind: str
    actor: str
    reason: str
    call_ids: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # only on an entry about one call: the note is erased with that call


def note_mac(key: AuditKey, note: str) -> str:
    return key.mac(NOTE_DOMAIN, note)


def clean_note(text: str | None, redaction: RedactionOptions | None) -> str | None:
    """Free text as stored: stripped, empty as None, PII redacted like transcripts (None: kept raw)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    return redact_text(text, redaction)[0] if redaction is not None else text


def append(
    con: duckdb.DuckDBPyConnection,
    build: Callable[[duckdb.DuckDBPyConnection], list[Pending]],
    key_file: Path | str | None = None,
) -> list[tuple[int, str]]:
    """Append what `build` returns, in one transaction, after the chain's tail check; returns (seq, mac)s.

    `build` runs inside the transaction, so the rules it checks (a call's current state, a session's
    scores) hold for the rows written: a check that fails raises and nothing is written. The head file
    is rewritten after the commit, as for a review."""
    head_file = head_path(database_path(con))
    key = chain.writer_key(con, key_file, head_file)
    chain.seal_legacy(con, key, head_file, os_user())
    con.execute("BEGIN TRANSACTION")
    try:
        after = chain.check_tail(con, key, head_file)
        written: list[tuple[int, str]] = []
        for p in build(con):
            if p.note is not None and len(p.call_ids) != 1:
                raise ValueError("a note belongs to an entry about exactly one call")
            detail = dict(p.detail)
            if p.note is not None:
                detail["note_mac"] = note_mac(key, p.note)
            after = chain.append_entry(con, key, after, p.kind, p.actor, p.reason, list(p.call_ids), detail)
            if p.note is not None:
                con.execute("INSERT INTO audit_notes VALUES (?, ?, ?)", [after[0], p.call_ids[0], p.note])
            written.append(after)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    if written:
        chain.anchor(con, key, head_file, written[-1])
    return written


def note_problems(con: duckdb.DuckDBPyConnection, key_file: Path | str | None = None) -> list[str]:
    """Notes that do not match the HMAC their chain entry recorded (edited), that have no entry, or that an
    entry recorded but are gone while their call is still stored (deleted outside `callqa forget`)."""
    key = load_key(key_file)
    rows = con.execute(
        "SELECT n.seq, n.note, a.detail FROM audit_notes n LEFT JOIN audit_log a ON a.seq = n.seq ORDER BY n.seq"
    ).fetchall()
    if rows and key is None:
        return [f"{len(rows)} notes cannot be checked: no audit key (looked for {key_file or 'the default key'})"]
    # erasure removes a call's notes together with the call, so a missing note of a stored call was deleted
    out = [
        f"note #{seq} of {kind} entry #{seq} (call {str(call_id)[:12]}) was deleted after it was written"
        for seq, kind, call_id in con.execute(
            """SELECT a.seq, a.kind, a.call_ids[1] FROM audit_log a
               WHERE json_extract_string(a.detail, '$.note_mac') IS NOT NULL
                 AND a.seq NOT IN (SELECT seq FROM audit_notes)
                 AND a.call_ids[1] IN (SELECT call_id FROM calls)
               ORDER BY a.seq"""
        ).fetchall()
    ]
    for seq, note, detail in rows:
        if detail is None:
            out.append(f"note #{seq} belongs to no chain entry (added outside callqa)")
            continue
        recorded = json.loads(detail).get("note_mac")
        assert key is not None
        if not recorded or not hmac.compare_digest(str(recorded), note_mac(key, note)):
            out.append(f"note #{seq} was altered after it was written (its HMAC in entry #{seq} does not match)")
    return out
