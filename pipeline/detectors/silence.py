"""Dead air: nobody on the line speaks for at least N seconds, outside holds.

The silent stretches come from the same evidence as holds (`linescan.quiet_spans`): no word on any
channel, no non-music activity in the audio. A hold is a different thing (the customer was told,
or music plays) and is scored by its own criterion, so hold spans are cut out first. Only the
stretch between the first and the last word counts: ring-in and hang-up are not dead air.
"""

from __future__ import annotations

from callqa.config.settings import SilenceSettings
from callqa.pipeline.linescan import quiet_spans
from callqa.pipeline.spans import subtract_spans
from callqa.pipeline.types import Event, Hold, LineScan, Utterance, new_event_id

DETECTOR_VERSION = "silence/1"


def _neighbours(utterances: list[Utterance], start: float, end: float) -> tuple[Utterance | None, Utterance | None]:
    before = [u for u in utterances if u.words and u.words[0].start <= start]
    after = [u for u in utterances if u.words and u.words[0].start >= end - 0.05]
    prev = max(before, key=lambda u: max(w.end for w in u.words), default=None)
    nxt = min(after, key=lambda u: u.words[0].start, default=None)
    return prev, nxt


def _tail(u: Utterance | None, head: bool, n: int = 8) -> str:
    if u is None:
        return ""
    words = [w.text for w in u.words]
    part = words[:n] if head else words[-n:]
    text = " ".join(part)
    return ("" if head or len(words) <= n else "…") + text + ("…" if head and len(words) > n else "")


def detect_dead_air(
    call_id: str,
    scan: LineScan,
    utterances: list[Utterance],
    holds: list[Hold],
    settings: SilenceSettings | None = None,
) -> tuple[list[Event], dict[str, float | None]]:
    """`dead_air` events (evidence: the length and the words either side) and dead-air metrics."""
    settings = settings or SilenceSettings()
    quiet = subtract_spans(quiet_spans(scan, utterances), [(h.start, h.end) for h in holds])
    events: list[Event] = []
    for n, (s, e) in enumerate(x for x in quiet if x[1] - x[0] >= settings.dead_air_min_s):
        prev, nxt = _neighbours(utterances, s, e)
        evidence = (
            f"{e - s:.1f} s of silence from {s:.1f} s to {e:.1f} s; before: "
            f'{prev.role if prev else "-"} "{_tail(prev, head=False)}"; '
            f'after: {nxt.role if nxt else "-"} "{_tail(nxt, head=True)}"'
        )
        data = {
            "duration_s": round(e - s, 2),
            "before_role": prev.role if prev else None,
            "after_role": nxt.role if nxt else None,
            "before_seq": prev.seq if prev else None,
            "after_seq": nxt.seq if nxt else None,
        }
        # The agent owns the silence whoever spoke last: it is the agent's job to keep the call moving.
        events.append(
            Event(
                "dead_air",
                s,
                e,
                None,
                "agent",
                evidence,
                0.9,
                DETECTOR_VERSION,
                data,
                new_event_id(call_id, "dead_air", s, e, None, n),
            )
        )
    metrics: dict[str, float | None] = {
        "dead_air_count": float(len(events)),
        "dead_air_total_s": round(sum(ev.end - ev.start for ev in events), 2),
    }
    return events, metrics
