"""Call scripts: who says what, with which gaps, holds, dead air and interruptions.

A script is plain data (`CallScript.from_dict` reads the YAML/JSON form); `callqa.synth.mix`
turns it into audio and ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from callqa.synth.errors import SynthError

Speaker = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
DEFAULT_VOICES: dict[str, str] = {"agent": "joe_high", "customer": "joe"}  # names in callqa.synth.tts.VOICES


@dataclass(frozen=True)
class Turn:
    """One speaker turn. `overlap_s` > 0 starts it that long before the previous turn ends
    (an interruption); otherwise it starts `gap_before_s` after the previous element."""

    speaker: Speaker
    text: str
    gap_before_s: float = 0.6
    overlap_s: float = 0.0
    rate: float = 1.0  # speaking-rate multiplier (> 1 faster; an upset caller talks faster)
    gain_db: float = 0.0
    tags: tuple[str, ...] = ()  # truth labels for detector tests: "greeting", "hold_announce", ...


def tagged_turn(
    speaker: Speaker, text: str, *tags: str, gap: float = 0.6, opt: tuple[str, ...] = (), **kw: Any
) -> Turn:
    """A turn with the events it must produce (`tags`) and those it may produce without being wrong (`opt`)."""
    return Turn(speaker, text, gap_before_s=gap, tags=tuple(tags) + tuple(f"opt:{o}" for o in opt), **kw)


@dataclass(frozen=True)
class Hold:
    """The line on hold: music or silence for `duration_s`, on the channel(s) named by `on`."""

    duration_s: float
    kind: Literal["silence", "music"] = "music"
    gap_before_s: float = 0.6
    on: Literal["agent", "customer", "both"] = "agent"  # music is injected on the agent-side leg


@dataclass(frozen=True)
class DeadAir:
    """Nobody speaks for exactly `duration_s`; the next turn starts right after (its gap is ignored)."""

    duration_s: float


ScriptItem = Turn | Hold | DeadAir


@dataclass
class CallScript:
    items: list[ScriptItem]
    voices: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VOICES))
    language: str = "en"
    lead_in_s: float = 0.5  # ring-off / line noise before the first word
    tail_s: float = 0.8

    def __post_init__(self) -> None:
        for k in self.voices:
            if k not in SPEAKERS:
                raise SynthError(None, f"voices: unknown speaker {k!r} (expected agent/customer)")
        for s in SPEAKERS:
            self.voices.setdefault(s, DEFAULT_VOICES[s])
        for i, it in enumerate(self.items):
            if isinstance(it, Turn):
                if it.speaker not in SPEAKERS:
                    raise SynthError(None, f"item {i}: speaker must be 'agent' or 'customer', not {it.speaker!r}")
                if not it.text.strip():
                    raise SynthError(None, f"item {i}: empty text")
                if it.overlap_s < 0 or it.gap_before_s < 0:
                    raise SynthError(None, f"item {i}: gap_before_s and overlap_s must be >= 0")
            elif isinstance(it, (Hold, DeadAir)):
                if it.duration_s <= 0:
                    raise SynthError(None, f"item {i}: duration_s must be > 0")
                if isinstance(it, Hold) and it.kind not in ("silence", "music"):
                    raise SynthError(None, f"item {i}: hold kind must be 'silence' or 'music'")
                if isinstance(it, Hold) and it.on not in ("agent", "customer", "both"):
                    raise SynthError(None, f"item {i}: hold 'on' must be 'agent', 'customer' or 'both'")
            else:
                raise SynthError(None, f"item {i}: expected Turn, Hold or DeadAir, got {type(it).__name__}")

    @property
    def turns(self) -> list[Turn]:
        return [it for it in self.items if isinstance(it, Turn)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallScript:
        """Build from plain data (YAML/JSON): items are dicts with `speaker`, or `hold`, or `dead_air`."""
        items: list[ScriptItem] = []
        for i, raw in enumerate(data.get("items", [])):
            raw = dict(raw)
            try:
                if "hold" in raw:
                    items.append(Hold(duration_s=float(raw.pop("hold")), **raw))
                elif "dead_air" in raw:
                    items.append(DeadAir(duration_s=float(raw.pop("dead_air"))))
                else:
                    if "tags" in raw:
                        raw["tags"] = tuple(raw["tags"])
                    items.append(Turn(**raw))
            except TypeError as exc:
                raise SynthError(None, f"script item {i}: {exc}") from exc
        extra = {k: v for k, v in data.items() if k in ("voices", "language", "lead_in_s", "tail_s")}
        return cls(items=items, **extra)
