"""Detector evaluation: precision and recall per detector against labelled calls.

Text part: labelled call transcripts with word timings (tests/data/zh_calls/ for Mandarin,
tests/data/en_calls_text/ for English), fed to `detect_text_events` without ASR. A label says
which event a turn must produce (type, role, the turn(s) where it may be; greeting and closing
once per call, any of their tagged turns). A detected event is a true positive when it has the
label's type and role and overlaps one of its turns; unmatched detections are false positives,
unmatched labels false negatives. Greeting details (has_name, has_company) are scored on the
greetings that were found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callqa.pipeline.types import ConfigError, Event, Utterance, Word

_REPO_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
TEXT_DATASETS = {"zh": _REPO_DATA / "zh_calls", "en": _REPO_DATA / "en_calls_text"}
_TOLERANCE_S = 0.25


@dataclass(frozen=True)
class TextLabel:
    type: str
    role: str
    utts: tuple[int, ...]  # seq of the turns where the event may be
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabelledCall:
    call_id: str
    language: str
    utterances: list[Utterance]
    labels: list[TextLabel]
    company: str | None = None
    domain: str | None = None
    path: str | None = None

    @property
    def duration_s(self) -> float:
        return max((u.end for u in self.utterances), default=0.0)


def _load_call(path: Path) -> LabelledCall:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        utts = [
            Utterance(
                seq=u["seq"],
                speaker=u["speaker"],
                start=float(u["start"]),
                end=float(u["end"]),
                text=u["text"],
                words=[
                    Word(float(a), float(b), str(t), 1.0, 0 if u["role"] == "agent" else 1) for a, b, t in u["words"]
                ],
                channel=0 if u["role"] == "agent" else 1,
                role=u["role"],
                role_confidence=1.0,
            )
            for u in d["utterances"]
        ]
        labels = [
            TextLabel(lb["type"], lb["role"], tuple(lb["utts"]), dict(lb.get("data") or {})) for lb in d["labels"]
        ]
        return LabelledCall(d["call_id"], d["language"], utts, labels, d.get("company"), d.get("domain"), str(path))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(path, f"not a labelled text call ({type(e).__name__}: {e})") from e


def load_text_dataset(source: str | Path) -> list[LabelledCall]:
    """A language code of a bundled set ("zh", "en") or a directory of labelled call JSON files."""
    d = TEXT_DATASETS.get(str(source), Path(source))
    if not d.is_dir():
        raise ConfigError(
            d, "labelled text-call directory not found (the bundled sets live in the source tree under tests/data/)"
        )
    calls = [_load_call(p) for p in sorted(d.glob("*.json"))]
    if not calls:
        raise ConfigError(d, "no labelled call JSON files here")
    return calls


@dataclass
class DetectorScore:
    detector: str
    language: str
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def row(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "language": self.language,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
        }


@dataclass
class TextEvalReport:
    scores: dict[str, DetectorScore]  # detector -> counts (greeting.has_name and .has_company too)
    errors: list[str]  # one line per false positive / false negative, for reading
    n_calls: int
    audio_s: float
    detect_s: float  # time spent in detect_text_events (no model loading)

    @property
    def overhead(self) -> float:
        return self.detect_s / self.audio_s if self.audio_s else 0.0

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.scores.values()]


def _overlaps(ev: Event, call: LabelledCall, seqs: Iterable[int]) -> bool:
    by_seq = {u.seq: u for u in call.utterances}
    for s in seqs:
        u = by_seq.get(s)
        if u is not None and ev.start <= u.end + _TOLERANCE_S and ev.end >= u.start - _TOLERANCE_S:
            return True
    return False


def score_text_call(
    call: LabelledCall,
    events: Sequence[Event],
    types: Iterable[str],
    scores: dict[str, DetectorScore],
    errors: list[str],
) -> None:
    """Add one call's true/false positives and negatives to `scores` (one-to-one matching)."""
    lang = call.language
    for typ in types:
        sc = scores.setdefault(typ, DetectorScore(typ, lang))
        labels = [lb for lb in call.labels if lb.type == typ]
        preds = [e for e in events if e.type == typ]
        used: set[int] = set()
        for lb in labels:
            hit = next(
                (k for k, e in enumerate(preds) if k not in used and e.role == lb.role and _overlaps(e, call, lb.utts)),
                None,
            )
            if hit is None:
                sc.fn += 1
                texts = " / ".join(u.text for u in call.utterances if u.seq in lb.utts)
                errors.append(f"FN {lang} {typ:<23} {call.call_id} #{','.join(map(str, lb.utts))}: {texts}")
                continue
            used.add(hit)
            sc.tp += 1
            if typ == "greeting":
                for key in ("has_name", "has_company"):
                    if key not in lb.data:
                        continue
                    sub = scores.setdefault(f"greeting.{key}", DetectorScore(f"greeting.{key}", lang))
                    want, got = bool(lb.data[key]), bool(preds[hit].data.get(key))
                    if want and got:
                        sub.tp += 1
                    elif got and not want:
                        sub.fp += 1
                    elif want and not got:
                        sub.fn += 1
                    if want != got:
                        errors.append(
                            f"{'FP' if got else 'FN'} {lang} greeting.{key:<14} {call.call_id}: {preds[hit].evidence}"
                        )
        for k, e in enumerate(preds):
            if k not in used:
                sc.fp += 1
                errors.append(
                    f"FP {lang} {typ:<23} {call.call_id} @{e.start:.1f}s ({e.data.get('method')}, "
                    f"{e.data.get('phrase')!r} {e.confidence:.2f}): {e.evidence}"
                )


def evaluate_text_detectors(
    dataset: str | Path | Sequence[LabelledCall], kit: Any = None, *, company_names: Sequence[str] | None = None
) -> TextEvalReport:
    """Precision/recall per text detector over a labelled set (language code, directory or calls).

    `kit`: a TextDetectorKit (built once; semantic models loaded) or None to build the default.
    `company_names`: the contact centre's brands for greeting.has_company; by default the
    companies named in the dataset, as a deployment would configure its own.
    """
    from callqa.config.settings import DetectSettings
    from callqa.pipeline.detectors.text import TEXT_DETECTORS, TextDetectorKit, build_text_kit, detect_text_events

    calls = load_text_dataset(dataset) if isinstance(dataset, (str, Path)) else list(dataset)
    names = list(company_names) if company_names is not None else sorted({c.company for c in calls if c.company})
    if kit is None:
        kit = build_text_kit(DetectSettings())
    if not isinstance(kit, TextDetectorKit):
        raise TypeError("kit must be a TextDetectorKit")
    if names != list(kit.settings.company_names):
        kit = TextDetectorKit(
            kit.settings.model_copy(update={"company_names": names}), kit.fuzzy_threshold, kit.languages, kit.notes
        )
    types = [d.type for d in TEXT_DETECTORS]
    scores: dict[str, DetectorScore] = {}
    errors: list[str] = []
    detect_s = 0.0
    for call in calls:
        t0 = time.perf_counter()
        events = detect_text_events(call.call_id, call.utterances, call.language, kit)
        detect_s += time.perf_counter() - t0
        score_text_call(call, events, types, scores, errors)
    return TextEvalReport(scores, errors, len(calls), sum(c.duration_s for c in calls), detect_s)
