"""The detect stage: every detector over one call, in the order their inputs need.

Text detectors first (scripts, conduct, hold cues); then talk metrics and the audio/timing
detectors, because holds pair with their hold_announced/hold_thanked events, dead air leaves the
holds out, and emotion reads the conduct events; overtalk last, labelled with the call's roles.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callqa.pipeline.detectors.emotion import detect_emotion
from callqa.pipeline.detectors.hold import detect_holds
from callqa.pipeline.detectors.overtalk import detect_overtalk, find_overtalk
from callqa.pipeline.detectors.pace import detect_pace
from callqa.pipeline.detectors.silence import detect_dead_air
from callqa.pipeline.detectors.text import detect_text_events
from callqa.pipeline.diarize import speaker_timelines, timelines_from_utterances
from callqa.pipeline.metrics import talk_metrics
from callqa.pipeline.types import DecodedAudio, Event, LineScan, RoleDecision, Utterance

if TYPE_CHECKING:
    from pyannote.core import Annotation

    from callqa.pipeline.toolkit import Toolkit


@dataclass(frozen=True)
class Detections:
    events: list[Event]
    metrics: dict[str, float | None]
    utterances: list[Utterance]  # the call's utterances, annotated with their emotion


def _untimed(name: str, *, timing: str | None = None) -> AbstractContextManager:
    return nullcontext()


def run_detectors(
    call_id: str,
    audio: DecodedAudio,
    scan: LineScan,
    utterances: list[Utterance],
    language: str | None,
    roles: RoleDecision,
    annotation: Annotation | None,
    kit: Toolkit,
    stage: Callable[..., AbstractContextManager] = _untimed,
) -> Detections:
    """All events and call metrics of one call.

    `annotation`: the diarizer's turns on a diarized mono call (overtalk comes from them), None on
    calls split by channel (overtalk from word timings, confirmed in the audio on stereo).
    `stage`: the caller's stage timer (callqa.pipeline.call.Stages); the text detectors are timed
    apart from the audio/timing ones (both fail as stage "detect").
    """
    det = kit.settings.detect
    with stage("detect", timing="detect_text"):
        events = detect_text_events(call_id, utterances, language, kit.text_kit)
    with stage("detect"):
        metrics = talk_metrics(utterances, audio.duration_s)
        hold_events, hold_metrics, holds = detect_holds(call_id, scan, utterances, events, det.hold)
        dead_events, dead_metrics = detect_dead_air(call_id, scan, utterances, holds, det.silence)
        # a diarized call's turn overlaps also tell interruptions whose overlapped words Whisper dropped
        diarized = None if annotation is None else find_overtalk(speaker_timelines(annotation))
        pace_events, pace_metrics = detect_pace(call_id, utterances, scan, language, det.pace, diarized)
        utterances, emo_events, emo_metrics = detect_emotion(
            call_id,
            utterances,
            audio,
            scan,
            language,
            kit.sentiment,
            kit.emotion,
            det.emotion,
            conduct=events,
        )
        # diarized: the diarizer's turns; split by channel: the words, confirmed where both channels carry sound
        by_words = annotation is None
        timelines = timelines_from_utterances(utterances) if by_words else speaker_timelines(annotation)
        over_events, over_metrics = detect_overtalk(
            call_id,
            timelines,
            utterances,
            dict(roles.mapping),
            scan.active if by_words and audio.n_channels > 1 else None,
        )
        events = events + hold_events + dead_events + pace_events + emo_events + over_events
        for extra in (over_metrics, hold_metrics, dead_metrics, pace_metrics, emo_metrics):
            metrics.update(extra)
    return Detections(events, metrics, utterances)
