"""Overtalk: stretches where two speakers' speech overlaps, and who started talking over whom.

Overtalk is computed from per-speaker speech timelines, so the same code serves stereo calls
(channel = speaker, the timeline comes from each channel's words, confirmed in the audio) and
diarized mono calls (the timeline comes from the diarizer's turns).
"""

from __future__ import annotations

import numpy as np

from callqa.pipeline.linescan import both_active
from callqa.pipeline.spans import Spans, total_length
from callqa.pipeline.types import HOP_S, Event, Overtalk, Utterance, new_event_id

DETECTOR_VERSION = "overtalk/1"


def find_overtalk(timelines: dict[str, Spans], min_s: float = 0.2) -> list[Overtalk]:
    """Stretches where two speakers talk at once; `started_by` is whose speech began later."""
    labs = sorted(timelines)
    out: list[Overtalk] = []
    for i, a in enumerate(labs):
        for b in labs[i + 1 :]:
            for a0, a1 in timelines[a]:
                for b0, b1 in timelines[b]:
                    s, e = max(a0, b0), min(a1, b1)
                    if e - s >= min_s:
                        starter, other = (b, a) if b0 > a0 else (a, b)
                        out.append(Overtalk(round(s, 3), round(e, 3), starter, other))
    return merge_overtalk(out)


def merge_overtalk(overtalk: list[Overtalk], max_gap_s: float = 0.5) -> list[Overtalk]:
    """One interruption is one event: the same pair's overlaps split by a breath are joined."""
    out: list[Overtalk] = []
    for o in sorted(overtalk, key=lambda o: o.start):
        prev = next((p for p in reversed(out) if (p.started_by, p.talked_over) == (o.started_by, o.talked_over)), None)
        if prev is not None and o.start - prev.end <= max_gap_s:
            out[out.index(prev)] = Overtalk(prev.start, max(prev.end, o.end), prev.started_by, prev.talked_over)
        else:
            out.append(o)
    return out


def confirm_overtalk_in_audio(
    overtalk: list[Overtalk], active: np.ndarray, channel_of: dict[str, int], min_s: float = 0.2, bridge_s: float = 0.15
) -> list[Overtalk]:
    """Stereo: keep the part of each word-timed overlap where both channels really carry sound.

    Why: Whisper sometimes places the first word after a silence seconds too early ("Sure," of the
    customer's next reply landing inside the agent's question), which on word timings alone looks
    like overtalk. `active` is [channels, frames] voice activity of the call's channels (LineScan).
    """
    out: list[Overtalk] = []
    for o in overtalk:
        ca, cb = channel_of.get(o.started_by), channel_of.get(o.talked_over)
        if ca is None or cb is None or ca == cb or max(ca, cb) >= active.shape[0]:
            out.append(o)  # cannot be checked: keep what the words say
            continue
        a, b = max(0, int(o.start / HOP_S)), min(active.shape[1], int(np.ceil(o.end / HOP_S)))
        if b <= a:
            continue
        both = both_active(active, ca, cb, a, b, bridge_s)
        if both.sum() * HOP_S < min_s:
            continue
        idx = np.flatnonzero(both)
        out.append(
            Overtalk(round((a + idx[0]) * HOP_S, 3), round((a + idx[-1] + 1) * HOP_S, 3), o.started_by, o.talked_over)
        )
    return merge_overtalk(out)


def overtalk_events(
    call_id: str, overtalk: list[Overtalk], utterances: list[Utterance], roles: dict[str, str]
) -> list[Event]:
    events = []
    for n, o in enumerate(overtalk):
        quote = " ".join(
            w.text.strip() for u in utterances for w in u.words if w.end > o.start - 0.2 and w.start < o.end + 0.2
        ).strip()
        who = roles.get(o.started_by, "unknown")
        over = roles.get(o.talked_over, "unknown")
        evidence = f"{o.started_by} ({who}) talked over {o.talked_over} ({over}) for {o.duration:.1f} s"
        if quote:
            evidence += f': "{quote[:200]}"'
        events.append(
            Event(
                type="overtalk",
                start=o.start,
                end=o.end,
                speaker=o.started_by,
                role=who,  # type: ignore[arg-type]
                evidence=evidence,
                confidence=1.0,
                detector_version=DETECTOR_VERSION,
                data={
                    "started_by": o.started_by,
                    "started_by_role": who,
                    "talked_over": o.talked_over,
                    "talked_over_role": over,
                    "duration_s": round(o.duration, 3),
                },
                event_id=new_event_id(call_id, "overtalk", o.start, o.end, o.started_by, n),
            )
        )
    return events


def overtalk_total(overtalk: list[Overtalk]) -> float:
    return round(total_length([(o.start, o.end) for o in overtalk]), 3)


def detect_overtalk(
    call_id: str,
    timelines: dict[str, Spans],
    utterances: list[Utterance],
    roles: dict[str, str],
    active: np.ndarray | None = None,
) -> tuple[list[Event], dict[str, float | None]]:
    """`overtalk` events and the overtalk metric of one call.

    `timelines`: each speaker's speech (from the diarizer's turns, or from the words);
    `active`: the channels' voice activity (LineScan.active) when the timelines come from the words
    of a call with a channel per speaker: only what the audio confirms is kept.
    """
    overtalk = find_overtalk(timelines)
    if active is not None:
        overtalk = confirm_overtalk_in_audio(
            overtalk, active, {u.speaker: u.channel for u in utterances if u.channel is not None}
        )
    return overtalk_events(call_id, overtalk, utterances, roles), {"overtalk_total_s": overtalk_total(overtalk)}
