"""Holds, measured from the audio and paired with what the agent said around them.

A hold is where the line carries no conversation: hold music (or tones) or a muted, silent line.
Text alone cannot time a hold ("please hold" says one is coming, not how long it lasted), so the
span comes from the audio and the text cues only say whether it was announced and thanked.

Two stages, because the first must run before ASR:

1. the line scan (callqa.pipeline.linescan, before transcription) finds the music spans, which are
   masked out of the audio Whisper sees;
2. `detect_holds` (after the text detectors): music spans and long quiet spans (no words, no
   non-music activity on any channel) become holds when long enough; `hold_announced` events
   before and `hold_thanked` events after are linked; unannounced holds are flagged.
"""

from __future__ import annotations

import numpy as np

from callqa.config.settings import HoldSettings
from callqa.pipeline.evidence import quote
from callqa.pipeline.linescan import quiet_spans
from callqa.pipeline.types import Event, Hold, LineScan, Utterance, new_event_id

DETECTOR_VERSION = "hold/1"


def find_holds(
    scan: LineScan, utterances: list[Utterance], text_events: list[Event], settings: HoldSettings
) -> list[Hold]:
    """Hold spans from the audio, each linked to the announcement before and the thanks after it."""
    quiet = quiet_spans(scan, utterances, within_speech=True)
    music = list(scan.music_spans)
    # A quiet stretch touching a music span is part of that hold when it is long in its own right
    # (the music started late or stopped early); short ones are the pause before the next turn.
    cands: list[list] = [[s, e, "music", e - s] for s, e in music]
    for s, e in quiet:
        touching = [c for c in cands if c[2] == "music" and (abs(c[0] - e) < 0.3 or abs(c[1] - s) < 0.3)]
        if touching and e - s >= 3.0:
            c = touching[0]
            c[0], c[1] = min(c[0], s), max(c[1], e)
        elif not touching and e - s >= min(settings.min_silence_announced_s, settings.min_silence_unannounced_s):
            cands.append([s, e, "silence", 0.0])  # only stretches long enough to be a hold bound the cue search
    cands.sort(key=lambda c: c[0])

    announced = sorted((e for e in text_events if e.type == "hold_announced"), key=lambda e: e.end)
    thanked = sorted((e for e in text_events if e.type == "hold_thanked"), key=lambda e: e.start)
    holds: list[Hold] = []
    used: set[str] = set()
    for i, (s, e, kind, music_s) in enumerate(cands):
        prev_end = cands[i - 1][1] if i else -np.inf
        next_start = cands[i + 1][0] if i + 1 < len(cands) else np.inf
        ann = [
            a
            for a in announced
            if a.event_id not in used and max(prev_end, s - settings.link_window_s) - 1.0 <= a.end <= s + 2.0
        ]
        thx = [
            t
            for t in thanked
            if t.event_id not in used and e - 2.0 <= t.start <= min(next_start, e + settings.link_window_s) + 1.0
        ]
        a_ev = ann[-1] if ann else None  # the announcement closest before the hold
        t_ev = thx[0] if thx else None  # the first thanks after it
        dur = e - s
        if kind == "silence":
            need = settings.min_silence_announced_s if (a_ev or t_ev) else settings.min_silence_unannounced_s
            if dur < need:
                continue
        elif dur < settings.min_music_s:
            continue
        for ev in (a_ev, t_ev):
            if ev is not None:
                used.add(ev.event_id)
        holds.append(Hold(round(s, 3), round(e, 3), "music" if music_s >= 0.5 * dur else "silence", a_ev, t_ev))
    return holds


def detect_holds(
    call_id: str,
    scan: LineScan,
    utterances: list[Utterance],
    text_events: list[Event],
    settings: HoldSettings | None = None,
) -> tuple[list[Event], dict[str, float | None], list[Hold]]:
    """`hold` and `hold_unannounced` events, hold metrics, and the holds themselves (for dead air)."""
    settings = settings or HoldSettings()
    holds = find_holds(scan, utterances, text_events, settings)
    events: list[Event] = []
    for n, h in enumerate(holds):
        parts = [f"{h.duration_s:.1f} s on hold ({h.kind}) from {h.start:.1f} s to {h.end:.1f} s"]
        parts.append(f'announced: "{quote(h.announced.evidence, 120)}"' if h.announced else "not announced")
        parts.append(f'thanked: "{quote(h.thanked.evidence, 120)}"' if h.thanked else "not thanked on return")
        data = {
            "announced": h.announced is not None,
            "thanked": h.thanked is not None,
            "kind": h.kind,
            "duration_s": round(h.duration_s, 2),
            "announced_event_id": h.announced.event_id if h.announced else None,
            "thanked_event_id": h.thanked.event_id if h.thanked else None,
        }
        # Music is unambiguous; a silent line is a hold only by length and context.
        conf = 0.95 if h.kind == "music" else (0.85 if h.announced or h.thanked else 0.7)
        evidence = "; ".join(parts)
        for etype in ("hold",) if h.announced is not None else ("hold", "hold_unannounced"):
            events.append(
                Event(
                    etype,
                    h.start,
                    h.end,
                    None,
                    "agent",
                    evidence,
                    conf,
                    DETECTOR_VERSION,
                    dict(data),
                    new_event_id(call_id, etype, h.start, h.end, None, n),
                )
            )
    metrics: dict[str, float | None] = {
        "hold_count": float(len(holds)),
        "hold_total_s": round(sum(h.duration_s for h in holds), 2),
        "hold_max_s": round(max((h.duration_s for h in holds), default=0.0), 2),
    }
    return events, metrics, holds
