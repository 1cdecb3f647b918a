"""Call-level measurements derived from the utterances (stored in `call_metrics`)."""

from __future__ import annotations

from callqa.pipeline.spans import total_length
from callqa.pipeline.types import Utterance


def talk_metrics(utterances: list[Utterance], duration_s: float) -> dict[str, float | None]:
    """Talk time per role (from word spans, so pauses inside a turn do not count as talk)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for u in utterances:
        spans.setdefault(u.role, []).extend((w.start, w.end) for w in u.words if w.end > w.start)
    talk = {role: total_length(s) for role, s in spans.items()}
    everyone = total_length([x for s in spans.values() for x in s])
    agent, customer = talk.get("agent", 0.0), talk.get("customer", 0.0)
    known = agent + customer
    return {
        "duration_s": round(duration_s, 3),
        "talk_s": round(everyone, 3),
        "talk_s_agent": round(agent, 3) if known else None,
        "talk_s_customer": round(customer, 3) if known else None,
        # share of role-attributed talk time spoken by the agent; None when roles are unknown
        "talk_ratio_agent": round(agent / known, 4) if known else None,
        "speech_share": round(everyone / duration_s, 4) if duration_s > 0 else None,
        "n_utterances": float(len(utterances)),
        "n_words": float(sum(len(u.words) for u in utterances)),
    }
