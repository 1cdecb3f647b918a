"""The review chain: tamper evidence for human verdicts and erasures, keyed and anchored outside the database.

Every review row and every non-review entry (a 'seal' of older history, an 'erasure' tombstone) takes the
next `seq` and carries `mac` = HMAC-SHA256(key, previous mac + canonical row). The key never enters the
database (CALLQA_AUDIT_KEY, else a 0600 key file created on first use, see AuditSettings), so whoever can
write the file cannot recompute the chain after an edit. The newest entry is anchored outside the database
as well, in `<db>.audit-head` (seq, mac, review count; itself MACed, rewritten atomically on every append),
and published in each nightly run's artifact, so deleting the newest reviews, or all of them, is caught too.

Rolling the head file back to an older copy together with deleting the reviews after it can only be told
from an anchor kept elsewhere: `callqa audit --expect-head SEQ:MAC` checks one published in a run artifact.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from callqa.workspace.ledger import (
    ENTRY_FIELDS,
    GENESIS,
    KEY_ENV,
    REVIEW_FIELDS,
    AuditError,
    AuditKey,
    entry_payload,
    key_location,
    legacy_hash,
    load_key,
    now,
    read_head,
    review_payload,
    write_head,
)

# ---------------------------------------------------------------------------------------------
# reading the chain


@dataclass
class Entry:
    seq: int
    kind: str  # review | seal | erasure
    name: str  # how problems call it
    payload: str
    prev_mac: str | None
    mac: str | None
    detail: dict[str, Any] | None = None


def _reviews(con: duckdb.DuckDBPyConnection, since: int | None = None) -> list[dict[str, Any]]:
    cols = ", ".join(REVIEW_FIELDS)
    where = "" if since is None else f"WHERE seq >= {int(since)}"
    cur = con.execute(
        f"SELECT {cols}, prev_hash, row_hash, prev_mac, mac FROM reviews {where} ORDER BY seq NULLS FIRST"
    )
    names = [*REVIEW_FIELDS, "prev_hash", "row_hash", "prev_mac", "mac"]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _log(con: duckdb.DuckDBPyConnection, since: int | None = None) -> list[dict[str, Any]]:
    where = "" if since is None else f"WHERE seq >= {int(since)}"
    cur = con.execute(f"SELECT {', '.join(ENTRY_FIELDS)}, prev_mac, mac FROM audit_log {where} ORDER BY seq")
    return [dict(zip([*ENTRY_FIELDS, "prev_mac", "mac"], r)) for r in cur.fetchall()]


def _entries(reviews: list[dict[str, Any]], log: list[dict[str, Any]]) -> list[Entry]:
    out = [
        Entry(
            r["seq"],
            "review",
            f"review #{r['seq']} ({r['review_id']})",
            review_payload({k: r[k] for k in REVIEW_FIELDS}),
            r["prev_mac"],
            r["mac"],
        )
        for r in reviews
        if r["seq"] is not None
    ]
    out += [
        Entry(
            e["seq"],
            e["kind"],
            f"{e['kind']} entry #{e['seq']}",
            entry_payload(e),
            e["prev_mac"],
            e["mac"],
            json.loads(e["detail"]) if e["detail"] else {},
        )
        for e in log
    ]
    return sorted(out, key=lambda e: e.seq)


def tail(con: duckdb.DuckDBPyConnection) -> tuple[int, str | None] | None:
    """The newest entry's (seq, mac), reviews and log together; None for an empty chain."""
    return con.execute(
        """SELECT seq, mac FROM (SELECT seq, mac FROM reviews WHERE seq IS NOT NULL
                                  UNION ALL SELECT seq, mac FROM audit_log) ORDER BY seq DESC LIMIT 1"""
    ).fetchone()


def keyed(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT (SELECT count(*) FROM reviews WHERE mac IS NOT NULL) + (SELECT count(*) FROM audit_log)"
    ).fetchone()
    return bool(row and row[0])


def review_count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM reviews WHERE seq IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


# ---------------------------------------------------------------------------------------------
# verification


@dataclass(frozen=True)
class Problem:
    kind: str  # row | missing | key | head | head_missing | head_behind | expected
    text: str


@dataclass
class AuditReport:
    problems: list[Problem]
    notes: list[str]
    reviews: int
    erasures: int
    last_seq: int | None


def _legacy_problems(reviews: list[dict[str, Any]]) -> list[Problem]:
    """The v5 check of the unkeyed chain (same messages)."""
    problems, prev, expect_seq = [], GENESIS, 1
    for r in reviews:
        row = {k: r[k] for k in REVIEW_FIELDS}
        if row["seq"] is None:
            continue
        if row["seq"] != expect_seq:
            problems.append(Problem("missing", f"review #{expect_seq} is missing (next is #{row['seq']})"))
        if r["prev_hash"] != prev:
            text = f"review #{row['seq']} does not follow the previous review (a row was removed or replaced)"
            problems.append(Problem("row", text))
        if legacy_hash(r["prev_hash"] or "", row) != r["row_hash"]:
            problems.append(
                Problem("row", f"review #{row['seq']} ({row['review_id']}) was altered after it was written")
            )
        prev, expect_seq = r["row_hash"], row["seq"] + 1
    return problems


def _walk(entries: list[Entry], key: AuditKey) -> tuple[list[Problem], dict[int, str]]:
    """Links, MACs and seq continuity; erased reviews are crossed with the seq/mac their tombstone recorded."""
    problems: list[Problem] = []
    by_seq: dict[int, Entry] = {}
    for e in entries:
        if e.seq in by_seq:
            problems.append(Problem("row", f"two entries claim #{e.seq} ({by_seq[e.seq].name} and {e.name})"))
        by_seq.setdefault(e.seq, e)
    erased: dict[int, str] = {}
    for e in entries:
        if e.kind == "erasure" and e.mac and hmac.compare_digest(e.mac, key.mac(e.prev_mac or "", e.payload)):
            for seq, mac in (e.detail or {}).get("reviews", []):
                erased[int(seq)] = str(mac)
                if int(seq) in by_seq:
                    problems.append(Problem("row", f"review #{seq} was erased by {e.name} but is still there"))
    last = max(by_seq, default=0)
    prev, s = GENESIS, 1
    while s <= last:
        e = by_seq.get(s)
        if e is None:
            if s in erased:
                prev, s = erased[s], s + 1
                continue
            nxt = min(x for x in [*by_seq, *erased] if x > s)
            problems.append(Problem("missing", f"review #{s} is missing (next is #{nxt})"))
            s = nxt
            continue
        if e.mac is None:
            problems.append(Problem("row", f"{e.name} has no MAC: it was not written by callqa with the audit key"))
        else:
            if e.prev_mac != prev:
                problems.append(
                    Problem("row", f"{e.name} does not follow the previous entry (a row was removed or replaced)")
                )
            if not hmac.compare_digest(e.mac, key.mac(e.prev_mac or "", e.payload)):
                problems.append(Problem("row", f"{e.name} was altered after it was written"))
        prev, s = e.mac or "", s + 1
    return problems, erased


def _head_problems(
    head_file: Path | None,
    key: AuditKey | None,
    last: tuple[int, str | None] | None,
    n_reviews: int,
    is_keyed: bool,
    by_seq: dict[int, str | None],
) -> list[Problem]:
    if head_file is None:
        return []
    head, bad = read_head(head_file, key)
    if bad:
        return [Problem("head" if head is None or key is None or head.key_id == key.key_id else "key", bad)]
    if head is None:
        if not is_keyed:
            return []
        text = (
            f"the head file {head_file} is missing, so deleting the newest reviews would leave no trace "
            f"(the database holds entries up to #{last[0] if last else 0}); `callqa audit --seal` rewrites it"
        )
        return [Problem("head_missing", text)]
    if last is None or not is_keyed:
        return [
            Problem(
                "missing",
                f"all review history is gone: the head file says the last entry is #{head.seq} "
                f"({head.reviews} reviews), the database has no keyed entry",
            )
        ]
    seq, mac = last
    if seq < head.seq:
        return [
            Problem(
                "missing",
                f"entries after #{seq} are missing: the head file says the last is #{head.seq} "
                f"({head.reviews} reviews; {n_reviews} left)",
            )
        ]
    if by_seq.get(head.seq) != head.mac:
        return [
            Problem(
                "head",
                f"head mismatch: entry #{head.seq} is not the one the head file anchors (replaced or recomputed)",
            )
        ]
    if seq > head.seq:
        return [
            Problem(
                "head_behind",
                f"the head file is behind: entries #{head.seq + 1}–#{seq} are not anchored (it was rolled back to an "
                "older copy, or a write was interrupted); `callqa audit --seal` re-anchors them after checking",
            )
        ]
    if head.reviews != n_reviews:
        return [Problem("head", f"the head file counts {head.reviews} reviews, the database holds {n_reviews}")]
    return []


def parse_expected(text: str) -> tuple[int, str]:
    """SEQ:MAC (a MAC prefix of 8+ hex digits), as the run artifact and `callqa review` print it."""
    seq, _, mac = text.partition(":")
    if not seq.isdigit() or len(mac) < 8 or any(c not in "0123456789abcdef" for c in mac.lower()):
        raise AuditError(None, f"--expect-head takes SEQ:MAC (e.g. 42:1f0c9a7e), not {text!r}")
    return int(seq), mac.lower()


def verify(
    con: duckdb.DuckDBPyConnection,
    key: AuditKey | None,
    head_file: Path | None,
    expect: tuple[int, str] | None = None,
    key_file: Path | str | None = None,
) -> AuditReport:
    """Everything wrong with the chain: rows, links, seq gaps, the head file, and an expected published head.

    `key_file` only names where the key was looked for when `key` is None."""
    reviews, log = _reviews(con), _log(con)
    problems = [
        Problem("row", f"review {r['review_id']} was not written by callqa (no chain position)")
        for r in reviews
        if r["seq"] is None
    ]
    notes: list[str] = []
    entries = _entries(reviews, log)
    n_reviews = sum(1 for r in reviews if r["seq"] is not None)
    n_erasures = sum(1 for e in log if e["kind"] == "erasure")
    is_keyed = any(r["mac"] for r in reviews) or bool(log)
    erased: dict[int, str] = {}
    last = tail(con)
    if not is_keyed:
        problems += _legacy_problems(reviews)
        if n_reviews:
            notes.append(
                f"{n_reviews} reviews are chained without a key (written before the keyed chain); the next review, "
                "or `callqa audit --seal`, seals them with the key"
            )
    elif key is None:
        problems.append(
            Problem(
                "key",
                "the review history is keyed but no audit key was found (looked for $CALLQA_AUDIT_KEY and "
                f"{key_location(key_file)}): restore the key from its backup",
            )
        )
        return AuditReport(problems, notes, n_reviews, n_erasures, last[0] if last else None)
    else:
        walked, erased = _walk(entries, key)
        problems += walked
    by_seq: dict[int, str | None] = {**erased, **{e.seq: e.mac for e in entries}}
    problems += _head_problems(head_file, key, last, n_reviews, is_keyed, by_seq)
    if head_file is None and is_keyed:
        notes.append("an in-memory database has no head file: only the rows were checked")
    if expect is not None:
        seq, prefix = expect
        got = by_seq.get(seq)
        if not got or not got.startswith(prefix):
            problems.append(Problem("expected", f"the published head #{seq} ({prefix}) is not in this chain"))
    return AuditReport(problems, notes, n_reviews, n_erasures, last[0] if last else None)


# ---------------------------------------------------------------------------------------------
# appending


def writer_key(con: duckdb.DuckDBPyConnection, key_file: Path | str | None, head_file: Path | None) -> AuditKey:
    """The key to extend the chain with; created only for a database that has never had one."""
    key = load_key(key_file)
    if key is not None:
        return key
    if keyed(con) or (head_file is not None and head_file.exists()):
        raise AuditError(
            None,
            f"no audit key at {key_location(key_file)}, but this review history was written with one: "
            f"restore the key from its backup (or set ${KEY_ENV}); nothing was written",
        )
    created = load_key(key_file, create=True)
    assert created is not None
    return created


def check_tail(con: duckdb.DuckDBPyConnection, key: AuditKey, head_file: Path | None) -> tuple[int, str]:
    """(seq, mac) to link the next entry to, after checking that nothing newer than the head was removed.

    Entries newer than the head file whose MACs verify were written with the key by an append that could not
    rewrite the head (interrupted): they are kept and the next head covers them."""
    last = tail(con)
    seq, mac = (int(last[0]), str(last[1] or "")) if last else (0, GENESIS)
    if head_file is None:
        return seq, mac
    head, _ = read_head(head_file, key)
    # only the anchored entry and what follows it matter here (the full walk is `callqa audit`'s)
    since = head.seq if head is not None else None
    entries = _entries(_reviews(con, since), _log(con, since))
    by_seq = {e.seq: e.mac for e in entries}
    problems = _head_problems(head_file, key, last, review_count(con), keyed(con), by_seq)
    if problems and problems[0].kind == "head_behind" and head is not None:
        newer = [e for e in entries if e.seq > head.seq]
        prev = head.mac
        for e in newer:
            if e.mac is None or e.prev_mac != prev or not hmac.compare_digest(e.mac, key.mac(prev, e.payload)):
                break
            prev = e.mac
        else:
            problems = []
    if problems:
        raise AuditError(
            head_file,
            f"the review history does not match its head file: {problems[0].text}; nothing was written "
            "(run `callqa audit`)",
        )
    return seq, mac


def append_entry(
    con: duckdb.DuckDBPyConnection,
    key: AuditKey,
    after: tuple[int, str],
    kind: str,
    actor: str,
    reason: str | None = None,
    call_ids: list[str] | None = None,
    detail: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """Insert one log entry after `after` (inside the caller's transaction); returns its (seq, mac)."""
    entry = {
        "seq": after[0] + 1,
        "kind": kind,
        "created_at": now(),
        "actor": actor,
        "reason": reason,
        "call_ids": call_ids,
        "detail": json.dumps(detail or {}, sort_keys=True),
    }
    mac = key.mac(after[1], entry_payload(entry))
    con.execute(
        f"INSERT INTO audit_log ({', '.join(ENTRY_FIELDS)}, prev_mac, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [entry[k] for k in ENTRY_FIELDS] + [after[1], mac],
    )
    return entry["seq"], mac


def seal_legacy(
    con: duckdb.DuckDBPyConnection, key: AuditKey, head_file: Path | None, actor: str
) -> tuple[int, str] | None:
    """Bring unkeyed (v5) history under the key: check its SHA-256 chain, then MAC every row in order and
    append a 'seal' entry naming the old head. Deterministic for a given key; refused on broken history."""
    if keyed(con):
        return None
    reviews = _reviews(con)
    if head_file is not None and head_file.exists():
        raise AuditError(head_file, "the head file names keyed history that is no longer in the database")
    if not reviews:
        return None
    problems = [f"review {r['review_id']} has no chain position" for r in reviews if r["seq"] is None]
    problems += [p.text for p in _legacy_problems(reviews)]
    if problems:
        raise AuditError(
            None,
            f"the unkeyed review history is broken ({'; '.join(problems[:3])}): it is not sealed with the key "
            "and nothing was written (run `callqa audit`)",
        )
    con.execute("BEGIN TRANSACTION")
    try:
        prev = GENESIS
        for r in reviews:
            mac = key.mac(prev, review_payload({k: r[k] for k in REVIEW_FIELDS}))
            con.execute("UPDATE reviews SET prev_mac = ?, mac = ? WHERE review_id = ?", [prev, mac, r["review_id"]])
            prev = mac
        last = reviews[-1]
        detail = {"reviews": len(reviews), "unkeyed_head": last["row_hash"], "from": "sha256", "to": "hmac-sha256"}
        sealed = append_entry(
            con, key, (int(last["seq"]), prev), "seal", actor, "keyed chain (schema v6)", None, detail
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    if head_file is not None:
        write_head(head_file, sealed[0], sealed[1], len(reviews), key)
    return sealed


def anchor(con: duckdb.DuckDBPyConnection, key: AuditKey, head_file: Path | None, after: tuple[int, str]) -> None:
    """Rewrite the head file after a committed append; the data is stored even when this fails."""
    if head_file is None:
        return
    try:
        write_head(head_file, after[0], after[1], review_count(con), key)
    except OSError as e:
        raise AuditError(
            head_file,
            f"entry #{after[0]} is stored, but its head file could not be written ({e}); "
            "the next review or `callqa audit --seal` writes it",
        ) from e


def reseal(
    con: duckdb.DuckDBPyConnection,
    key: AuditKey,
    head_file: Path | None,
    actor: str,
    expect: tuple[int, str] | None = None,
) -> AuditReport:
    """`callqa audit --seal`: seal unkeyed history, or rewrite a missing or lagging head file, after a full
    check that finds nothing else wrong (any other problem is refused: sealing must never launder an edit)."""
    if head_file is None:
        raise AuditError(None, "an in-memory database has no head file")
    if seal_legacy(con, key, head_file, actor) is None:
        report = verify(con, key, head_file, expect)  # a head published elsewhere must still be there
        other = [p for p in report.problems if p.kind not in ("head_missing", "head_behind")]
        if other:
            raise AuditError(head_file, f"not sealed: {other[0].text}")
        last = tail(con)
        if last is not None and report.problems:
            anchor(con, key, head_file, (int(last[0]), str(last[1])))
    return verify(con, key, head_file)


def published_head(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The chain's newest entry, for a run artifact: `callqa audit --expect-head SEQ:MAC` checks it later."""
    last = tail(con)
    return None if last is None else {"seq": int(last[0]), "mac": last[1], "reviews": review_count(con)}
