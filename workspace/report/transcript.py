"""A call page's transcript: turns with their evidence highlighted, and the spans with no words in them."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from callqa.workspace.report.fmt import esc, fmt_s, lane

NEGATIVE_EVENTS = {
    "forbidden_phrase",
    "negative_emotion",
    "escalation_request",
    "complaint",
    "hold_unannounced",
    "interruption",
    "dead_air",
    "overtalk",
}


def highlight(text: str, quotes: Sequence[tuple[str, bool]]) -> tuple[str, list[bool]]:
    """HTML of `text` with each quoted evidence found in it wrapped in <mark>; says which quotes were found."""
    low = text.lower()
    spans: list[tuple[int, int, bool]] = []
    found = []
    for q, neg in quotes:
        q = (q or "").strip().strip('"“”「」')
        i = low.find(q.lower()) if len(q) >= 2 else -1
        found.append(i >= 0)
        if i >= 0:
            spans.append((i, i + len(q), neg))
    if not spans:
        return esc(text), found
    spans.sort()
    merged: list[list] = []
    for a, b, neg in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2] = merged[-1][2] or neg
        else:
            merged.append([a, b, neg])
    out, pos = [], 0
    for a, b, neg in merged:
        out += [esc(text[pos:a]), '<mark class="neg">' if neg else "<mark>", esc(text[a:b]), "</mark>"]
        pos = b
    out.append(esc(text[pos:]))
    return "".join(out), found


def _overlapping(u: dict, events: list[dict]) -> list[dict]:
    """The events said in this turn: by its speaker (or by a role), not the spans (holds, dead air)."""
    u_start, u_end, spk = u["start_s"], u["end_s"], u["speaker"]
    return [
        e
        for e in events
        if e["start_s"] < u_end + 0.05
        and u_start - 0.05 < e["end_s"]
        and (e["speaker"] is None or e["speaker"] == spk)
        and e["type"] not in ("hold", "dead_air")
        and (e["speaker"] is not None or e["role"] is not None)
    ]


def transcript_html(d: dict) -> tuple[Markup, int]:
    """The transcript table rows: turns with evidence highlighted, and the spans with no words in them."""
    utts, events = d["utterances"], d["events"]
    rows: list[tuple[float, int, str]] = []
    placed: set[str] = set()
    for u in utts:
        u_start, u_end = u["start_s"], u["end_s"]
        overlapping = _overlapping(u, events) if events else []
        text_html, _ = highlight(u["text"], [(e["evidence"], e["type"] in NEGATIVE_EVENTS) for e in overlapping])
        badges = []
        for e in overlapping:
            placed.add(e["event_id"])
            neg = " neg" if e["type"] in NEGATIVE_EVENTS else ""
            badges.append(
                f'<span class="ev{neg}" onclick="seek({e["start_s"]:.2f})" '
                f'title="{esc(e["evidence"])}">{esc(e["type"])}</span>'
            )
        emo = u.get("emotion") or ""
        if emo and u.get("emotion_score") is not None:
            emo = f"{emo} {u['emotion_score']:.2f}"
        role = u.get("role") or "unknown"
        rows.append(
            (
                u_start,
                1,
                f'<tr class="utt role-{esc(role)}" data-start="{u_start:.2f}" data-end="{u_end:.2f}">'
                f'<td><button class="t" onclick="seek({u_start:.2f})">{fmt_s(u_start)}</button></td>'
                f'<td class="who">{esc(lane(u))}</td><td>{text_html}{"".join(badges)}</td>'
                f'<td class="muted">{esc(emo)}</td></tr>',
            )
        )
    for e in events:  # spans with no words in them: holds, dead air, events that overlapped no turn
        if e["event_id"] in placed:
            continue
        rows.append(
            (
                e["start_s"],
                0,
                f'<tr class="span-row" data-start="{e["start_s"]:.2f}" data-end="{e["end_s"]:.2f}">'
                f'<td><button class="t" onclick="seek({e["start_s"]:.2f})">{fmt_s(e["start_s"])}</button></td>'
                f"<td>{esc(e['type'].replace('_', ' '))}</td>"
                f'<td colspan="2">{esc(e["evidence"])} ({max(0.0, e["end_s"] - e["start_s"]):.1f} s)</td></tr>',
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    return Markup("\n".join(r[2] for r in rows)), len(rows)
