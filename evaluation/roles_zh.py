"""Speakers and roles on the labelled Mandarin mono calls (`callqa eval detectors --lang zh`).

The same two figures as the English diarization evaluation (`evaluation.diarization`), from the
generator's labelled turns (`<stem>.truth.json`) as the reference:

- DER: pyannote.metrics' DiarizationErrorRate with a 0.25 s collar, overlapped speech scored, of
  the diarizer's speaker turns. The diarizer is run again on the call as `process_call` runs it
  (hold music silenced first), since the call result keeps words, not the diarizer's turns.
- role accuracy: the share of the call's ASR words whose role (agent/customer, after the roles
  stage) is the reference speaker's at the word's midpoint; words in silence or overlapped speech
  of the reference are not counted (`word_role_accuracy`, the English definition). Overall: the
  mean over calls, as `callqa eval diarization` reports it, and the pooled share of words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyannote.core import Annotation

from callqa.evaluation.diarization import COLLAR, der_components, truth_annotation
from callqa.pipeline.types import CallResult
from callqa.synth.truth import CallTruth


@dataclass(frozen=True)
class MonoRoleRow:
    call: str
    der: float
    missed: float  # seconds
    false_alarm: float
    confusion: float
    total: float  # reference speech, seconds
    speakers_found: int
    role_accuracy: float | None  # share of checked words
    words_checked: int
    roles_correct: bool | None  # every diarized speaker got the role of most of its words
    role_method: str | None
    role_confidence: float | None


def diarizer_turns(audio_path: str | Path, kit: Any) -> Annotation:
    """The diarizer's Annotation of a mono call, with hold music silenced as process_call does."""
    from callqa.pipeline.decode import decode
    from callqa.pipeline.diarize import run_diarization
    from callqa.pipeline.linescan import muted, scan_line

    audio = decode(str(audio_path))
    hold = kit.settings.detect.hold
    scan = scan_line(audio, hold)
    with muted(audio, scan.music_spans if hold.mask_music_for_asr else []):
        return run_diarization(kit.diarizer, audio.channels[0], kit.settings.models.diarization).annotation


def mono_row(res: CallResult, truth: CallTruth, kit: Any) -> MonoRoleRow:
    """DER and role accuracy of one mono call against its truth."""
    from callqa.evaluation.diarization import word_role_accuracy, word_role_counts

    name = Path(truth.audio or res.source.path).stem
    ref = truth_annotation(truth, name)
    hyp = diarizer_turns(res.source.path, kit)
    comp = der_components(ref, hyp, COLLAR)
    acc, ok = word_role_accuracy(res.utterances, ref)
    return MonoRoleRow(
        call=name,
        der=round(comp["der"], 4),
        missed=round(comp["missed"], 2),
        false_alarm=round(comp["false_alarm"], 2),
        confusion=round(comp["confusion"], 2),
        total=round(comp["total"], 2),
        speakers_found=len(hyp.labels()),
        role_accuracy=None if acc is None else round(acc, 4),
        words_checked=word_role_counts(res.utterances, ref)[0],
        roles_correct=ok,
        role_method=res.roles.method if res.roles is not None else None,
        role_confidence=res.roles.confidence if res.roles is not None else None,
    )


def summary_lines(rows: list[MonoRoleRow]) -> list[str]:
    """Report lines: one per call, then the overall DER (pooled over calls) and role accuracy."""
    if not rows:
        return []
    out = [
        f"Mandarin mono {r.call}: DER {r.der:.3f} (miss {r.missed:.1f} s, false alarm {r.false_alarm:.1f} s, "
        f"confusion {r.confusion:.1f} s of {r.total:.1f} s; {r.speakers_found} speakers), role accuracy "
        + ("n/a" if r.role_accuracy is None else f"{r.role_accuracy:.3f}")
        + f" of {r.words_checked} words, roles {'correct' if r.roles_correct else 'WRONG'} "
        f"({r.role_method}, confidence {r.role_confidence})"
        for r in rows
    ]
    total = sum(r.total for r in rows)
    der = sum(r.missed + r.false_alarm + r.confusion for r in rows) / total if total else float("nan")
    accs = [r.role_accuracy for r in rows if r.role_accuracy is not None]
    n_words = sum(r.words_checked for r in rows if r.role_accuracy is not None)
    pooled = (
        sum(r.role_accuracy * r.words_checked for r in rows if r.role_accuracy is not None) / n_words
        if n_words
        else float("nan")
    )
    mean = sum(accs) / len(accs) if accs else float("nan")
    out.append(
        f"Mandarin mono calls ({len(rows)}): DER {der:.3f} (collar {COLLAR} s, overlap scored, pooled); "
        f"role accuracy (words) mean {mean:.3f}, pooled {pooled:.3f} over {n_words} words; "
        f"calls with correct roles {sum(bool(r.roles_correct) for r in rows)}/{len(rows)}"
    )
    return out
