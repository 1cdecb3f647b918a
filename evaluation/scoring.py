"""How well automatic scoring agrees with the truth on labelled synthesised calls.

The truth verdict of a criterion is the scorecard applied to the *labelled* events and metrics of
the call (what was synthesised); the automatic verdict is the same scorecard applied to what the
pipeline detected from the audio. Labels mark some events as optional (a greeting line that also
asks "how can I help" may count as need discovery): a verdict agrees when it matches the truth
with or without the optional events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callqa.callgen import GREETINGS
from callqa.pipeline.scoring import Scorecard, ScoringContext, load_scorecard, score_call
from callqa.pipeline.types import CallResult, CallScore, Event
from callqa.synth.labels import CallLabels, LabelEvent


def _label_event(call: str, i: int, lab: LabelEvent, greeting_data: dict[str, bool]) -> Event:
    data = dict(lab.data)
    if lab.type == "greeting":
        data = {**greeting_data, **data}
    speaker = {"agent": "ch0", "customer": "ch1"}.get(lab.role or "", None)
    return Event(
        lab.type,
        lab.start,
        lab.end,
        speaker,
        lab.role,
        f"label {lab.type}",
        1.0,
        "labels",
        data,
        event_id=f"truth-{call}-{i}",
    )


def truth_contexts(labels: CallLabels) -> list[ScoringContext]:
    """The labelled call as scoring input: required events only, and required plus optional."""
    template = GREETINGS.get(labels.spec.get("greeting", ""), "")
    greeting_data = {"has_name": "{agent}" in template, "has_company": "{company}" in template}
    required = [_label_event(labels.stem, i, e, greeting_data) for i, e in enumerate(labels.events)]
    optional = [_label_event(labels.stem, 1000 + i, e, greeting_data) for i, e in enumerate(labels.optional)]
    metrics: dict[str, float | None] = dict(labels.metrics)
    return [
        ScoringContext(required, labels.duration_s, True, metrics),
        ScoringContext(required + optional, labels.duration_s, True, metrics),
    ]


@dataclass
class ScoringEval:
    scorecard: str
    calls: int = 0
    decisions: int = 0
    agree: int = 0
    grades_match: int = 0
    per_criterion: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [agree, total]
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    grade_mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.decisions if self.decisions else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scorecard": self.scorecard,
            "calls": self.calls,
            "decisions": self.decisions,
            "agree": self.agree,
            "agreement": self.agreement,
            "grades_match": self.grades_match,
            "per_criterion": {k: {"agree": a, "total": t} for k, (a, t) in sorted(self.per_criterion.items())},
            "disagreements": self.disagreements,
            "grade_mismatches": self.grade_mismatches,
        }


def evaluate_scoring(pairs: list[tuple[CallResult, CallLabels]], card: Scorecard) -> ScoringEval:
    ev = ScoringEval(f"{card.id} v{card.version}")
    for result, labels in pairs:
        detected = score_call(
            card,
            ScoringContext(
                result.events, result.duration_s, bool(result.roles and result.roles.mapping), result.metrics
            ),
        )
        truths: list[CallScore] = [score_call(card, ctx) for ctx in truth_contexts(labels)]
        ev.calls += 1
        for k, got in enumerate(detected.criteria):
            expected = {t.criteria[k].result for t in truths}
            ok = got.result in expected
            ev.decisions += 1
            ev.agree += ok
            ev.per_criterion[got.criterion_id][0] += ok
            ev.per_criterion[got.criterion_id][1] += 1
            if not ok:
                ev.disagreements.append(
                    {
                        "call": labels.stem,
                        "criterion": got.criterion_id,
                        "auto": got.result,
                        "truth": sorted(expected),
                        "rationale": got.rationale,
                    }
                )
        grades = {t.grade for t in truths}
        if detected.grade in grades:
            ev.grades_match += 1
        else:
            ev.grade_mismatches.append(
                {
                    "call": labels.stem,
                    "auto": detected.grade,
                    "truth": sorted(grades),
                    "auto_percent": detected.percent,
                    "truth_percent": [t.percent for t in truths],
                }
            )
    return ev


def run(
    out_dir: Path,
    n: int,
    seed: int = 0,
    scorecard: str = "inbound_service_en",
    settings_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoringEval:
    """Generate (or reuse) n labelled calls, run the pipeline on each, compare the verdicts."""
    from callqa.evaluation.detectors import run_english

    card = load_scorecard(scorecard)
    _, pairs = run_english(out_dir, n, seed, settings_path, progress)
    return evaluate_scoring(pairs, card)
