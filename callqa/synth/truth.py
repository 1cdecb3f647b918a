"""Ground truth of a synthesised call, exact to the sample, written beside the audio as `<stem>.truth.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callqa.synth.errors import SynthError
from callqa.synth.script import Speaker

TRUTH_VERSION = 1
TRUTH_SUFFIX = ".truth.json"


@dataclass
class TurnTruth:
    index: int  # position among the script's turns
    speaker: str  # the script's speaker label ("agent" / "customer")
    role: Speaker
    voice: str
    text: str
    start_s: float
    end_s: float
    channel: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Span:
    start_s: float
    end_s: float
    kind: str = ""
    speakers: list[str] = field(default_factory=list)  # overlaps: [first speaker, interrupter]
    turns: list[int] = field(default_factory=list)  # overlaps: the two turns' indexes
    on: str = ""  # holds: whose channel carries the hold audio ("agent" / "customer" / "both")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class CallTruth:
    audio: str | None
    sample_rate: int
    channels: int
    codec: str | None
    duration_s: float
    agent_channel: int | None  # None in mono
    voices: dict[str, str]
    seed: int
    options: dict[str, Any]
    turns: list[TurnTruth]
    holds: list[Span]  # kind: "music" | "silence"
    dead_air: list[Span]
    overlaps: list[Span]  # speakers: [first speaker, interrupter]; turns: their indexes
    version: int = TRUTH_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallTruth:
        d = dict(d)
        d["turns"] = [TurnTruth(**t) for t in d["turns"]]
        for k in ("holds", "dead_air", "overlaps"):
            d[k] = [Span(**s) for s in d[k]]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> CallTruth:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SynthError(path, f"not a readable call truth file: {exc}") from exc

    def speech_spans(self, role: str | None = None) -> list[tuple[float, float]]:
        return [(t.start_s, t.end_s) for t in self.turns if role is None or t.role == role]


def truth_path(audio_path: str | Path) -> Path:
    """`calls/x.wav` -> `calls/x.truth.json` (never `x.json`, which is the metadata sidecar)."""
    p = Path(audio_path)
    return p.with_name(p.stem + TRUTH_SUFFIX)
