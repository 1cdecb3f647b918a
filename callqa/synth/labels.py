"""The label files of the labelled test calls: every event the detectors should find, from the synthesis truth.

`callqa.callgen` writes one `<stem>.labels.json` beside each call it renders; the evaluations
(`callqa.evaluation.detectors`, `.scoring`) and the tests read them back with `CallLabels.load`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callqa.synth.script import CallScript, Turn
from callqa.synth.truth import CallTruth, truth_path

if TYPE_CHECKING:  # callgen imports this module; the spec is only read here
    from callqa.callgen import CallSpec
    from callqa.callgen_zh import CallSpecZh

LABELS_SUFFIX = ".labels.json"
LABELS_VERSION = 1
# long_monologue follows the pace detector's policy at its default threshold
LONG_MONOLOGUE_S = 30.0
MONOLOGUE_MAX_PAUSE_S = 3.0


@dataclass
class LabelEvent:
    type: str
    role: str | None
    start: float
    end: float
    turn: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallLabels:
    stem: str
    audio: str
    language: str
    duration_s: float
    seed: int
    spec: dict[str, Any]
    events: list[LabelEvent]
    optional: list[LabelEvent]
    metrics: dict[str, float]
    version: int = LABELS_VERSION

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> CallLabels:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        d["events"] = [LabelEvent(**e) for e in d["events"]]
        d["optional"] = [LabelEvent(**e) for e in d["optional"]]
        return cls(**d)

    def of_type(self, type_: str) -> list[LabelEvent]:
        return [e for e in self.events if e.type == type_]


def monologue_spans(truth: CallTruth) -> list[tuple[float, float]]:
    """Agent floor-holding runs by the detector's policy, from the synthesis truth."""
    spans: list[tuple[float, float]] = []
    cur: list[Any] = []
    taken = False
    for t in sorted(truth.turns, key=lambda t: t.start_s):
        if t.role == "agent":
            if cur and (t.start_s - max(x.end_s for x in cur) > MONOLOGUE_MAX_PAUSE_S or taken):
                spans.append((cur[0].start_s, max(x.end_s for x in cur)))
                cur = []
            cur.append(t)
            taken = False
        elif cur and not (len(t.text.split()) <= 2 and t.end_s - t.start_s <= 1.0):
            taken = True
    if cur:
        spans.append((cur[0].start_s, max(x.end_s for x in cur)))
    return spans


def labels_from_truth(spec: CallSpec | CallSpecZh, truth: CallTruth, audio_name: str, seed: int) -> CallLabels:
    events: list[LabelEvent] = []
    optional: list[LabelEvent] = []
    spans: dict[str, LabelEvent] = {}
    for t in sorted(truth.turns, key=lambda t: t.start_s):
        for tag in t.tags:
            if tag.startswith("span:"):  # consecutive turns carrying one event between them
                typ = tag.removeprefix("span:")
                if typ in spans:
                    spans[typ].end = max(spans[typ].end, t.end_s)
                else:
                    spans[typ] = LabelEvent(typ, t.role, t.start_s, t.end_s, t.index)
                    events.append(spans[typ])
                continue
            target = optional if tag.startswith("opt:") else events
            typ = tag.removeprefix("opt:")
            if typ == "interruption":
                continue  # from the overlap truth below
            target.append(LabelEvent(typ, t.role, t.start_s, t.end_s, t.index))

    turns = sorted(truth.turns, key=lambda t: t.start_s)
    hold_labels = []
    prev_end = float("-inf")
    for h in truth.holds:
        if h.kind == "music":
            s, e = h.start_s, h.end_s
        else:  # observable silence: last word before to first word after
            s = max((t.end_s for t in turns if t.end_s <= h.start_s + 0.01), default=h.start_s)
            e = min((t.start_s for t in turns if t.start_s >= h.end_s - 0.01), default=h.end_s)
        # an announcement belongs to this hold only if it came after the previous one ended
        before = [t for t in turns if prev_end - 0.01 <= t.start_s and t.end_s <= h.start_s + 0.01]
        after = [t for t in turns if t.start_s >= h.end_s - 0.01]
        prev_end = h.end_s
        announced = any("hold_announced" in t.tags for t in before[-3:])
        thanked = bool(after) and "hold_thanked" in after[0].tags
        data = {"kind": h.kind, "announced": announced, "thanked": thanked, "duration_s": round(e - s, 2)}
        hold_labels.append((s, e, data))
        events.append(LabelEvent("hold", "agent", round(s, 3), round(e, 3), None, dict(data)))
        if not announced:
            events.append(LabelEvent("hold_unannounced", "agent", round(s, 3), round(e, 3), None, dict(data)))
    for d in truth.dead_air:
        events.append(LabelEvent("dead_air", "agent", d.start_s, d.end_s, None, {"duration_s": round(d.duration_s, 2)}))
    n_int = {"agent": 0, "customer": 0}
    for o in truth.overlaps:
        interrupter = o.speakers[1]
        events.append(
            LabelEvent("interruption", interrupter, o.start_s, o.end_s, o.turns[1], {"interrupted_role": o.speakers[0]})
        )
        events.append(
            LabelEvent(
                "overtalk", None, o.start_s, o.end_s, None, {"started_by": o.speakers[0], "interrupter": interrupter}
            )
        )
        n_int[interrupter] += 1
    monos = monologue_spans(truth)
    for s, e in monos:
        if e - s >= LONG_MONOLOGUE_S:
            events.append(LabelEvent("long_monologue", "agent", s, e, None, {"duration_s": round(e - s, 2)}))
    durations = [e - s for s, e, _ in hold_labels]
    metrics = {
        "hold_count": float(len(hold_labels)),
        "hold_total_s": round(sum(durations), 2),
        "hold_max_s": round(max(durations, default=0.0), 2),
        "dead_air_count": float(len(truth.dead_air)),
        "dead_air_total_s": round(sum(d.duration_s for d in truth.dead_air), 2),
        "interruptions_agent": float(n_int["agent"]),
        "interruptions_customer": float(n_int["customer"]),
        "longest_monologue_agent_s": round(max((e - s for s, e in monos), default=0.0), 2),
        "negative_emotion_count": float(sum(1 for e in events if e.type == "negative_emotion")),
    }
    language = str(truth.options.get("language") or "en")
    return CallLabels(spec.stem, audio_name, language, truth.duration_s, seed, asdict(spec), events, optional, metrics)


def relabel_rendered(spec: CallSpec | CallSpecZh, script: CallScript, audio: Path, seed: int) -> CallLabels | None:
    """Labels for a call already rendered from the same spec and seed, rebuilt from its truth with the
    script's current tags (rendering is the slow part); None when it must be rendered again."""
    lp, tp = labels_path(audio), truth_path(audio)
    if not (audio.is_file() and lp.is_file() and tp.is_file()):
        return None
    try:
        old = CallLabels.load(lp)
        if old.spec != asdict(spec) or old.seed != seed:
            return None
        truth = CallTruth.load(tp)
        tagged = [it for it in script.items if isinstance(it, Turn)]
        if len(tagged) != len(truth.turns) or any(tt.text != it.text for tt, it in zip(truth.turns, tagged)):
            return None
        for tt, it in zip(truth.turns, tagged):
            tt.tags = list(it.tags)
        labels = labels_from_truth(spec, truth, audio.name, seed)
        labels.write(lp)
        return labels
    except (ValueError, TypeError, KeyError, OSError):
        return None


def labels_path(audio: str | Path) -> Path:
    p = Path(audio)
    return p.with_name(p.stem + LABELS_SUFFIX)
