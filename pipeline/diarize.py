"""Diarization stage for mono calls: who spoke when, which words are whose, where voices overlap.

The diarizer (models/diarization.py) gives a pyannote.core Annotation of speaker turns. ASR words
are then assigned to the turn they overlap most (every word gets a speaker, even one that falls
in a gap between turns: it goes to the nearest turn), utterances are cut wherever the speaker
changes, and stretches where two speakers' turns overlap become `overtalk` events.

Overtalk is computed from per-speaker speech timelines, so the same code serves stereo calls
(channel = speaker, the timeline comes from each channel's words) and diarized mono calls (the
timeline comes from the annotation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyannote.core import Annotation

from callqa.config.settings import DiarizationSettings
from callqa.pipeline.detectors.hold import HOP_S, both_active
from callqa.pipeline.speakers import _utterance
from callqa.pipeline.types import Event, Transcript, Utterance, Word, new_event_id

DETECTOR_VERSION = "overtalk/1"
Spans = list[tuple[float, float]]


@dataclass(frozen=True)
class Diarization:
    annotation: Annotation
    # turns the diarizer labelled without being able to tell the voices apart (the offline
    # diarizer reports them; pyannote's pipeline gives none): role evidence there counts less
    uncertain: Spans


def run_diarization(diarizer, waveform: np.ndarray, settings: DiarizationSettings, uri: str | None = None) -> Diarization:
    """Run `diarizer` on a 16 kHz mono waveform with the configured speaker count."""
    ann, uncertain = diarizer.diarize(waveform, num_speakers=settings.num_speakers,
                                      min_speakers=settings.min_speakers, max_speakers=settings.max_speakers)
    if uri:
        ann.uri = uri
    return Diarization(ann, list(uncertain))


def speaker_timelines(annotation: Annotation) -> dict[str, Spans]:
    out: dict[str, Spans] = {}
    for seg, _, lab in annotation.itertracks(yield_label=True):
        out.setdefault(str(lab), []).append((float(seg.start), float(seg.end)))
    for lab in out:
        out[lab] = merge_spans(out[lab], 0.0)
    return out


def merge_spans(spans: Spans, max_gap_s: float) -> Spans:
    merged: list[list[float]] = []
    for s, e in sorted(spans):
        if merged and s - merged[-1][1] <= max_gap_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def word_speakers(words: list[Word], timelines: dict[str, Spans]) -> list[str]:
    """For each word, the speaker whose turns overlap it most; with no overlap, the nearest turn.

    Zero-length words (Whisper gives some numbers and amounts no duration) are treated as a
    10 ms point so they still land in the turn around them.
    """
    flat = sorted((s, e, lab) for lab, spans in timelines.items() for s, e in spans)
    if not flat:
        return ["spk0"] * len(words)
    starts = np.array([f[0] for f in flat])
    out = []
    for w in words:
        w0, w1 = w.start, max(w.end, w.start + 0.01)
        # candidates: turns that start before the word ends (sorted by start), scanning back
        hi = int(np.searchsorted(starts, w1, side="left"))
        best_lab, best_ov = None, 0.0
        by_lab: dict[str, float] = {}
        for s, e, lab in flat[max(0, hi - 64):hi]:
            ov = _overlap(w0, w1, s, e)
            if ov > 0:
                by_lab[lab] = by_lab.get(lab, 0.0) + ov
        if by_lab:
            best_lab, best_ov = max(by_lab.items(), key=lambda kv: kv[1])
        if best_lab is None:
            mid = (w0 + w1) / 2
            best_lab = min(flat, key=lambda f: 0.0 if f[0] <= mid <= f[1] else min(abs(mid - f[0]), abs(mid - f[1])))[2]
        out.append(best_lab)
    return out


def utterances_from_diarization(transcript: Transcript, annotation: Annotation, max_gap_s: float = 1.5) -> list[Utterance]:
    """Words → speakers by maximal overlap; a new utterance at every speaker change or long pause."""
    words = sorted(transcript.words, key=lambda w: (w.start, w.end))
    if not words:
        return []
    labels = word_speakers(words, speaker_timelines(annotation))
    runs: list[tuple[str, list[Word]]] = []
    for w, lab in zip(words, labels):
        if runs and runs[-1][0] == lab and w.start - max(x.end for x in runs[-1][1][-3:]) <= max_gap_s:
            runs[-1][1].append(w)
        else:
            runs.append((lab, [w]))
    return [_utterance(lab, None, ws, i) for i, (lab, ws) in enumerate(runs)]


def timelines_from_utterances(utterances: list[Utterance], join_gap_s: float = 0.3) -> dict[str, Spans]:
    """Per-speaker speech from word spans (pauses inside a turn are not speech)."""
    raw: dict[str, Spans] = {}
    for u in utterances:
        raw.setdefault(u.speaker, []).extend((w.start, max(w.end, w.start + 0.01)) for w in u.words)
    return {k: merge_spans(v, join_gap_s) for k, v in raw.items()}


@dataclass(frozen=True)
class Overtalk:
    start: float
    end: float
    started_by: str  # the speaker who began talking while the other was already speaking
    talked_over: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def find_overtalk(timelines: dict[str, Spans], min_s: float = 0.2) -> list[Overtalk]:
    """Stretches where two speakers talk at once; `started_by` is whose speech began later."""
    labs = sorted(timelines)
    out: list[Overtalk] = []
    for i, a in enumerate(labs):
        for b in labs[i + 1:]:
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


def confirm_overtalk_in_audio(overtalk: list[Overtalk], active: np.ndarray, channel_of: dict[str, int],
                              min_s: float = 0.2, bridge_s: float = 0.15) -> list[Overtalk]:
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
        out.append(Overtalk(round((a + idx[0]) * HOP_S, 3), round((a + idx[-1] + 1) * HOP_S, 3), o.started_by, o.talked_over))
    return merge_overtalk(out)


def overtalk_events(call_id: str, overtalk: list[Overtalk], utterances: list[Utterance],
                    roles: dict[str, str]) -> list[Event]:
    events = []
    for n, o in enumerate(overtalk):
        quote = " ".join(w.text.strip() for u in utterances for w in u.words
                         if w.end > o.start - 0.2 and w.start < o.end + 0.2).strip()
        who = roles.get(o.started_by, "unknown")
        over = roles.get(o.talked_over, "unknown")
        evidence = f"{o.started_by} ({who}) talked over {o.talked_over} ({over}) for {o.duration:.1f} s"
        if quote:
            evidence += f': "{quote[:200]}"'
        events.append(Event(
            type="overtalk", start=o.start, end=o.end, speaker=o.started_by, role=who,  # type: ignore[arg-type]
            evidence=evidence, confidence=1.0, detector_version=DETECTOR_VERSION,
            data={"started_by": o.started_by, "started_by_role": who, "talked_over": o.talked_over,
                  "talked_over_role": over, "duration_s": round(o.duration, 3)},
            event_id=new_event_id(call_id, "overtalk", o.start, o.end, o.started_by, n),
        ))
    return events


def overtalk_total(overtalk: list[Overtalk]) -> float:
    return round(sum(e - s for s, e in merge_spans([(o.start, o.end) for o in overtalk], 0.0)), 3)
