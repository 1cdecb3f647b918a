"""Typed records passed between pipeline stages.

Every stage takes and returns these (frozen where they are facts about a call), so a stage can be
tested alone and a call's whole result can travel from a worker to the single DuckDB writer.
Times are seconds from the start of the recording.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from callqa.pipeline.spans import Span, Spans

if TYPE_CHECKING:
    from pyannote.core import Annotation

SAMPLE_RATE = 16_000  # every stage after decode works on 16 kHz float32
HOP_S = 0.02  # the line scan's frame hop (LineScan): 320 samples

Role = Literal["agent", "customer", "unknown"]


class CallQAError(Exception):
    """Base of callqa's typed errors; `stage` names the pipeline stage that raised it."""

    stage = "pipeline"

    def __init__(self, path: str | Path | None, message: str):
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class AudioError(CallQAError):
    """A recording that cannot be decoded into usable audio (corrupt, empty, unsupported, silent)."""

    stage = "decode"
    permanent = True  # re-running will not fix the bytes: record once, do not retry


class ConfigError(CallQAError):
    """Invalid settings, scorecard or phrase list; `path` names the file."""

    stage = "config"


class ModelUnavailable(CallQAError):
    """A model role could not be resolved from any configured source."""

    stage = "models"


@dataclass(frozen=True)
class CallSource:
    """A recording found by discover: the call's identity is the SHA-256 of its bytes."""

    path: str
    call_id: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)  # sidecar: agent_id, queue, ...


@dataclass
class DecodedAudio:
    """One array per channel, float32 in [-1, 1] at 16 kHz."""

    path: str
    channels: list[np.ndarray]
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    codec: str
    duration_s: float
    # Problems decode tolerated (truncated tail, undecodable packets, dropped extra channels), so
    # the flow can store them with the call instead of failing a recording that is mostly usable.
    warnings: list[str] = field(default_factory=list)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def mono(self) -> np.ndarray:
        if len(self.channels) == 1:
            return self.channels[0]
        return np.mean(np.stack(self.channels), axis=0).astype(np.float32)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float
    channel: int = 0


@dataclass(frozen=True)
class Segment:
    """An ASR segment (Whisper's unit) with its words; one channel."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    channel: int
    avg_logprob: float
    no_speech_prob: float


@dataclass
class Transcript:
    language: str
    language_probability: float
    segments: list[Segment]
    model: str  # what was loaded and from where, for the calls.models column

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


@dataclass
class Utterance:
    """A speaker turn: the unit QA reads, and the unit detectors and emotion work on."""

    seq: int
    speaker: str
    start: float
    end: float
    text: str
    words: list[Word]
    channel: int | None = None
    role: Role = "unknown"
    role_confidence: float = 0.0
    asr_confidence: float | None = None
    emotion: str | None = None
    emotion_score: float | None = None
    emotion_method: str | None = None
    sentiment: float | None = None
    # from the utterance's script (callqa.pipeline.writing.tag_languages): a call that switches from
    # English to Mandarin has its turns matched with each one's phrase lists; None: the call's language
    language: str | None = None


@dataclass
class LineScan:
    """Frame features of every channel (hop HOP_S) and the music spans found in them
    (callqa.pipeline.linescan.scan_line, before ASR)."""

    duration_s: float
    energy_db: np.ndarray  # [channels, frames] in-band level, dBFS
    active: np.ndarray  # [channels, frames] bool: above the channel's noise floor
    tonal: np.ndarray  # [channels, frames] 0..1 share of power in persistent peaks
    music: np.ndarray  # [channels, frames] bool
    noise_floor_db: list[float]
    music_spans: list[Span] = field(default_factory=list)  # any channel, merged, seconds
    music_channels: list[list[int]] = field(default_factory=list)  # which channels carry each span

    @property
    def n_frames(self) -> int:
        return int(self.energy_db.shape[1])

    def frame(self, t: float) -> int:
        return int(min(max(round(t / HOP_S), 0), self.n_frames))


@dataclass(frozen=True)
class Diarization:
    """A mono call's speaker turns (the diarizer's pyannote.core Annotation)."""

    annotation: Annotation
    # turns the diarizer labelled without being able to tell the voices apart (the offline
    # diarizer reports them; pyannote's pipeline gives none): role evidence there counts less
    uncertain: Spans


@dataclass(frozen=True)
class RoleDecision:
    mapping: dict[str, Role]  # speaker -> role
    confidence: float
    method: str  # e.g. "channel_map", "sidecar", "evidence:greeting"


def new_event_id(call_id: str, type_: str, start: float, end: float, speaker: str | None, n: int = 0) -> str:
    """Deterministic, so re-detecting a stored call gives the same ids (rescoring cites stable ids)."""
    key = f"{call_id}|{type_}|{start:.3f}|{end:.3f}|{speaker}|{n}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


@dataclass
class Event:
    type: str
    start: float
    end: float
    speaker: str | None
    role: Role | None
    evidence: str  # a quote from the transcript or a measurement; never empty
    confidence: float
    detector_version: str
    data: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


@dataclass(frozen=True)
class Overtalk:
    start: float
    end: float
    started_by: str  # the speaker who began talking while the other was already speaking
    talked_over: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Hold:
    """A hold measured from the audio, with the cues linked to it."""

    start: float
    end: float
    kind: str  # "music" | "silence"
    announced: Event | None
    thanked: Event | None

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class CriterionResult:
    section_id: str
    criterion_id: str
    result: Literal["pass", "fail", "na"]
    points: float
    max_points: float
    auto_fail: bool
    evidence_event_ids: tuple[str, ...]
    rationale: str


@dataclass(frozen=True)
class CallScore:
    scorecard_id: str
    scorecard_version: int
    score: float
    max_score: float
    percent: float | None
    grade: str
    auto_fail: bool
    flagged: bool
    flag_reasons: tuple[str, ...]
    criteria: tuple[CriterionResult, ...]


ScorableStatus = Literal["scorable", "partial", "unscorable"]


@dataclass(frozen=True)
class Scorability:
    """Whether a call can be graded (callqa.pipeline.scorability.assess): `unscorable` calls get no scores,
    `partial` ones (the agent's side alone) are graded on the criteria that side shows; `reasons` say why."""

    status: ScorableStatus = "scorable"
    reasons: tuple[str, ...] = ()

    @property
    def graded(self) -> bool:
        return self.status != "unscorable"


@dataclass
class CallResult:
    """Everything the writer stores for one processed call, in one transaction."""

    source: CallSource
    duration_s: float
    channels: int
    sample_rate: int  # the source recording's rate, before resampling to 16 kHz
    codec: str
    language: str
    language_probability: float | None
    utterances: list[Utterance]
    events: list[Event]
    metrics: dict[str, float | None]
    scores: list[CallScore]
    models: dict[str, str]
    roles: RoleDecision | None
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)  # e.g. decode found a truncated file
    scorability: Scorability = field(default_factory=Scorability)


@dataclass(frozen=True)
class CallFailure:
    """A file the batch could not process; stored as a `failures` row, the batch goes on."""

    path: str
    call_id: str | None
    stage: str
    error: str
    permanent: bool
    # I/O or memory trouble that a second attempt may not meet: the flow retries these (Prefect
    # retries); permanent ones (the bytes are bad) and deterministic ones (a bug, bad config) never.
    transient: bool = False
