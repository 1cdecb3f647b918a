"""Quotes for event evidence: what a QA reviewer reads next to an event, clipped to a readable length."""

from __future__ import annotations

from collections.abc import Sequence


def quote(text: str | Sequence[str], limit: int, *, head: bool = True) -> str:
    """`text` clipped to `limit`, the cut marked with "…".

    A string is whitespace-collapsed and kept to `limit` characters, the "…" included (the text
    detectors quote 240, hold events 120). A sequence of words is joined by spaces as it is and
    kept to its first (`head`) or last `limit` words, the "…" after or before them (pace: 10-12).
    """
    if isinstance(text, str):
        text = " ".join(text.split())
        if len(text) <= limit:
            return text
        return text[: limit - 1] + "…" if head else "…" + text[len(text) - limit + 1 :]
    part = text[:limit] if head else text[-limit:]
    out = " ".join(part)
    if len(text) > limit:
        out = out + "…" if head else "…" + out
    return out
