"""Diarization stage for mono calls: who spoke when, and which words are whose.

The diarizer (models/diarization.py) gives a pyannote.core Annotation of speaker turns. ASR words
are then assigned to the turn they overlap most (every word gets a speaker, even one that falls
in a gap between turns: it goes to the nearest turn) and utterances are cut wherever the speaker
changes. Each speaker's speech timeline (from the turns, or from the words on calls split by
channel) is what the overtalk detector (callqa.pipeline.detectors.overtalk) compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from pyannote.core import Annotation

from callqa.config.settings import DiarizationSettings
from callqa.pipeline.spans import Spans, merge_spans, overlap
from callqa.pipeline.speakers import utterance_of
from callqa.pipeline.types import Diarization, Transcript, Utterance, Word

if TYPE_CHECKING:
    from callqa.models.diarization import Diarizer


def run_diarization(
    diarizer: Diarizer, waveform: np.ndarray, settings: DiarizationSettings, uri: str | None = None
) -> Diarization:
    """Run `diarizer` on a 16 kHz mono waveform with the configured speaker count."""
    ann, uncertain = diarizer.diarize(
        waveform,
        num_speakers=settings.num_speakers,
        min_speakers=settings.min_speakers,
        max_speakers=settings.max_speakers,
    )
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
        for s, e, lab in flat[max(0, hi - 64) : hi]:
            ov = overlap(w0, w1, s, e)
            if ov > 0:
                by_lab[lab] = by_lab.get(lab, 0.0) + ov
        if by_lab:
            best_lab, best_ov = max(by_lab.items(), key=lambda kv: kv[1])
        if best_lab is None:
            mid = (w0 + w1) / 2
            best_lab = min(flat, key=lambda f: 0.0 if f[0] <= mid <= f[1] else min(abs(mid - f[0]), abs(mid - f[1])))[2]
        out.append(best_lab)
    return out


def utterances_from_diarization(
    transcript: Transcript,
    annotation: Annotation,
    uncertain: Sequence[tuple[float, float]] = (),
    max_gap_s: float = 1.5,
    min_pause_s: float = 0.2,
) -> list[Utterance]:
    """Words → speakers by maximal overlap; a new utterance at every speaker change or long pause,
    and at a pause (min_pause_s) where a turn the diarizer could not attribute (`uncertain`) begins
    or ends. Without a pause the words stay together: "thank you" is not cut in two where an
    uncertain span's edge, from the VAD's frames, falls between Whisper's word times.

    An unattributed turn kept apart is what lets the roles stage see that a cue said there is
    uncertain: merged into the same voice's next turn, it would lend that turn its opening
    position (on the aws-lca Auto_Repairs_49 mono mix the customer's "hi, Terry, my name is
    Suzanne" then read as the greeting and swapped the roles)."""
    words = sorted(transcript.words, key=lambda w: (w.start, w.end))
    if not words:
        return []
    labels = word_speakers(words, speaker_timelines(annotation))
    where = [_span_of((w.start + w.end) / 2, uncertain) for w in words]
    runs: list[tuple[str, list[Word]]] = []
    for i, (w, lab) in enumerate(zip(words, labels)):
        if (
            runs
            and runs[-1][0] == lab
            and (where[i] == where[i - 1] or w.start - words[i - 1].end < min_pause_s)
            and w.start - max(x.end for x in runs[-1][1][-3:]) <= max_gap_s
        ):
            runs[-1][1].append(w)
        else:
            runs.append((lab, [w]))
    return [utterance_of(lab, None, ws, i) for i, (lab, ws) in enumerate(runs)]


def _span_of(t: float, spans: Sequence[tuple[float, float]], slack_s: float = 0.1) -> int | None:
    """Index of the span around time t (Whisper's word edges stray ~0.1 s past the VAD's), else None."""
    return next((i for i, (s, e) in enumerate(spans) if s - slack_s <= t <= e + slack_s), None)


def timelines_from_utterances(utterances: list[Utterance], join_gap_s: float = 0.3) -> dict[str, Spans]:
    """Per-speaker speech from word spans (pauses inside a turn are not speech)."""
    raw: dict[str, Spans] = {}
    for u in utterances:
        raw.setdefault(u.speaker, []).extend((w.start, max(w.end, w.start + 0.01)) for w in u.words)
    return {k: merge_spans(v, join_gap_s) for k, v in raw.items()}
