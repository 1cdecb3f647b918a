"""The score stage: apply a versioned YAML scorecard to a call's events and metrics.

Scorecards are validated with pydantic when loaded, so a typo (an unknown event type or metric, a
missing points value, a bad threshold) is reported with the file, criterion and field before any
call is scored. Scoring is a pure function of the events and metrics, which are stored, so a call
can be rescored with a new scorecard version without audio or ASR.

Rule language (a rule is one of):
  {event: T, by: agent|customer|any, within_s: S, last_s: S, min_count: N, max_count: N, where: {k: v}}
  {absent: T, by: ..., within_s: ..., last_s: ..., where: ...}
  {metric: M, min: X, max: Y, if_missing: na|pass|fail}
  {all: [rule, ...]}   {any: [rule, ...]}   {not: rule}
A rule evaluates to pass, fail or n/a (a metric that was not measured); n/a makes the criterion n/a.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from callqa.config.phrases import SUPPORTED_LANGUAGES
from callqa.config.settings import StrictModel, bundled_path, load_yaml_model
from callqa.pipeline.detectors import EVENT_TYPES, METRICS
from callqa.pipeline.types import CallScore, ConfigError, CriterionResult, Event

GRADE_ORDER = ("poor", "fair", "good", "excellent")

Outcome = Literal["pass", "fail", "na"]  # CriterionResult.result
PASS: Outcome = "pass"
FAIL: Outcome = "fail"
NA: Outcome = "na"


def _known_event(v: str) -> str:
    if v not in EVENT_TYPES:
        raise ValueError(f"unknown event type {v!r}; known: {sorted(EVENT_TYPES)}")
    return v


class EventRule(StrictModel):
    """Passes when min_count..max_count matching events exist (`event`) or none does (`absent`)."""

    event: str | None = None
    absent: str | None = None
    by: Literal["agent", "customer", "any"] = "any"
    within_s: float | None = Field(default=None, gt=0, description="event starts within the first S seconds")
    last_s: float | None = Field(default=None, gt=0, description="event starts within the last S seconds")
    min_count: int = Field(default=1, ge=1)
    max_count: int | None = Field(default=None, ge=0)
    # bool before int: pydantic's union serializer otherwise dumps True as 1 once the rule has been used
    # (its label cached), which changed content_hash() and made re-registering the same card fail
    where: dict[str, bool | int | float | str] = Field(default_factory=dict, description="event data must match")

    @field_validator("event", "absent")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        return None if v is None else _known_event(v)

    @cached_property
    def label(self) -> str:
        """The condition in words, for rationales (built once per rule, not once per call)."""
        return (
            f"{self.event or self.absent}"
            + (f" by {self.by}" if self.by != "any" else "")
            + "".join(f" {k}={v}" for k, v in self.where.items())
            + (f" within {self.within_s:g}s" if self.within_s is not None else "")
            + (f" in the last {self.last_s:g}s" if self.last_s is not None else "")
        )

    @model_validator(mode="after")
    def _consistent(self) -> EventRule:
        if (self.event is None) == (self.absent is None):
            raise ValueError("a rule needs exactly one of `event` or `absent`")
        if self.max_count is not None and self.max_count < self.min_count and self.event is not None:
            raise ValueError(f"max_count {self.max_count} is below min_count {self.min_count}")
        return self


class MetricRule(StrictModel):
    """Passes when the call metric lies in [min, max]; an unmeasured metric gives `if_missing`."""

    metric: str
    min: float | None = None
    max: float | None = None
    if_missing: Literal["na", "pass", "fail"] = "na"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; known: {sorted(METRICS)}")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> MetricRule:
        if self.min is None and self.max is None:
            raise ValueError("a metric rule needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class AllRule(StrictModel):
    all: list[Rule] = Field(min_length=1)


class AnyRule(StrictModel):
    any: list[Rule] = Field(min_length=1)


class NotRule(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    not_: Rule = Field(alias="not")


def _rule_kind(v: object) -> str:
    if isinstance(v, dict):
        for key, tag in (("all", "All"), ("any", "Any"), ("not", "Not"), ("metric", "Metric")):
            if key in v:
                return tag
        return "Event"
    tags: dict[type, str] = {AllRule: "All", AnyRule: "Any", NotRule: "Not", MetricRule: "Metric"}
    return tags.get(type(v), "Event")


# The discriminator picks the rule kind from its keys, so a mistake is reported once, against the
# kind the author meant, instead of once per possible kind.
Rule = Annotated[
    Annotated[EventRule, Tag("Event")]
    | Annotated[MetricRule, Tag("Metric")]
    | Annotated[AllRule, Tag("All")]
    | Annotated[AnyRule, Tag("Any")]
    | Annotated[NotRule, Tag("Not")],
    Discriminator(_rule_kind),
]
AllRule.model_rebuild()
AnyRule.model_rebuild()
NotRule.model_rebuild()


class Criterion(StrictModel):
    id: str
    name: str | None = None
    description: str | None = None
    points: float | None = Field(default=None, ge=0)
    auto_fail: bool = False
    rule: Rule
    na_when: Rule | None = None  # not applicable when this passes
    applies_when: Rule | None = None  # not applicable unless this passes (e.g. hold etiquette only with a hold)

    @model_validator(mode="after")
    def _points(self) -> Criterion:
        if self.points is None and not self.auto_fail:
            raise ValueError("`points` is required (only auto-fail criteria may omit it)")
        return self


class Section(StrictModel):
    id: str
    name: str | None = None
    criteria: list[Criterion] = Field(min_length=1)


class Grades(StrictModel):
    excellent: float = Field(ge=0, le=100)
    good: float = Field(ge=0, le=100)
    fair: float = Field(ge=0, le=100)
    # what a QA team calls each band (优/良/中/差); the stored grade stays the band's code, so
    # views and queries work the same for every card
    labels: dict[str, str] = {}

    def label(self, grade: str) -> str:
        return self.labels.get(grade, grade)

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if not self.excellent >= self.good >= self.fair:
            raise ValueError("grade thresholds must satisfy excellent ≥ good ≥ fair")
        unknown = sorted(set(self.labels) - set(GRADE_ORDER))
        if unknown:
            raise ValueError(f"grade labels for unknown bands {unknown} (bands: {', '.join(GRADE_ORDER)})")
        return self


class FlagRule(StrictModel):
    reason: str
    rule: Rule


class FlagWhen(StrictModel):
    grade_below: Literal["excellent", "good", "fair"] | None = "fair"
    auto_fail: bool = True
    rules: list[FlagRule] = []  # flag when the rule passes (n/a never flags)


class Scorecard(StrictModel):
    id: str
    version: int = Field(ge=1)
    name: str | None = None
    description: str | None = None
    language: list[str] = list(SUPPORTED_LANGUAGES)
    grades: Grades
    flag_when: FlagWhen = FlagWhen()
    sections: list[Section] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Scorecard:
        seen: set[str] = set()
        for s in self.sections:
            for c in s.criteria:
                if c.id in seen:
                    raise ValueError(f"criterion id {c.id!r} is used twice")
                seen.add(c.id)
        return self

    @property
    def criteria(self) -> list[tuple[Section, Criterion]]:
        return [(s, c) for s in self.sections for c in s.criteria]

    def applies_to(self, language: str) -> bool:
        base = (language or "").split("-")[0].lower()
        return base in self.language

    def content_hash(self) -> str:
        """Identity of the rules, so one version number can never silently mean two scorecards."""
        return hashlib.sha256(
            json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True).encode()
        ).hexdigest()


def _describe_error(data: dict, err: ValidationError) -> str:
    """Name the criterion (by id, not list index) and the field for each validation error."""
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        where = []
        if len(loc) >= 2 and loc[0] == "sections" and isinstance(loc[1], int):
            secs = data.get("sections") or []
            sec = secs[loc[1]] if loc[1] < len(secs) and isinstance(secs[loc[1]], dict) else {}
            where.append(f"section {sec.get('id', loc[1])!r}")
            if len(loc) >= 4 and loc[2] == "criteria" and isinstance(loc[3], int):
                crits = sec.get("criteria") or []
                crit = crits[loc[3]] if loc[3] < len(crits) and isinstance(crits[loc[3]], dict) else {}
                where.append(f"criterion {crit.get('id', loc[3])!r}")
                rest = loc[4:]
            else:
                rest = loc[2:]
        else:
            rest = loc
        # pydantic names the union member it tried ("EventRule"); those names mean nothing to QA staff.
        fld = ".".join(str(x) for x in rest if not (isinstance(x, str) and (x[:1].isupper() or "[" in x)))
        where.append(f"field {fld!r}" if fld else "top level")
        parts.append(f"{', '.join(where)}: {e['msg']}")
    return "; ".join(dict.fromkeys(parts))


def resolve_scorecard_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if not p.suffix and not p.exists():
        p = bundled_path("scorecards", f"{path_or_name}.yaml")
        if not p.exists():
            raise ConfigError(path_or_name, "no such bundled scorecard and no such file")
    return p


def load_scorecard(path_or_name: str | Path) -> Scorecard:
    """A bundled scorecard by name (e.g. "inbound_service_en") or a YAML file path."""
    return load_yaml_model(
        resolve_scorecard_path(path_or_name), Scorecard, "a scorecard must be a YAML mapping", _describe_error
    )


# ---------------------------------------------------------------------------------------------
# evaluation


@dataclass(frozen=True)
class ScoringContext:
    events: list[Event]
    duration_s: float
    roles_known: bool  # False for mono calls whose speakers have no roles yet
    metrics: dict[str, float | None] = field(default_factory=dict)

    @cached_property
    def by_type(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for e in self.events:
            out.setdefault(e.type, []).append(e)
        return out


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    evidence: tuple[str, ...]
    rationale: str

    @property
    def passed(self) -> bool:
        return self.outcome == PASS


def _fmt_event(e: Event) -> str:
    who = e.role if e.role and e.role != "unknown" else (e.speaker or "?")
    quote = e.evidence if len(e.evidence) <= 80 else e.evidence[:79] + "…"
    return f"{who} at {e.start:.1f}s: “{quote}”"


def _data_matches(e: Event, where: dict[str, Any]) -> bool:
    return all(e.data.get(k) == v for k, v in where.items())


def _eval_event_rule(rule: EventRule, ctx: ScoringContext) -> Verdict:
    etype = rule.event or rule.absent
    assert etype is not None  # EventRule._consistent: exactly one of the two is set
    of_type = ctx.by_type.get(etype, [])
    matches = of_type
    role_note = ""
    if rule.by != "any":
        if ctx.roles_known:
            matches = [e for e in matches if e.role == rule.by]
        else:
            role_note = f" (roles undetermined: any speaker counted as {rule.by})"
    if rule.where:
        matches = [e for e in matches if _data_matches(e, rule.where)]
    if rule.within_s is not None:
        matches = [e for e in matches if e.start <= rule.within_s]
    if rule.last_s is not None:
        matches = [e for e in matches if e.start >= ctx.duration_s - rule.last_s]
    cond = rule.label
    ids = tuple(e.event_id for e in matches)
    if rule.absent:
        if matches:
            more = f" (+{len(matches) - 1} more)" if len(matches) > 1 else ""
            return Verdict(FAIL, ids, f"{cond} present: {_fmt_event(matches[0])}{more}{role_note}")
        return Verdict(PASS, (), f"no {cond}{role_note}")
    n = len(matches)
    if n < rule.min_count:
        # cite what was found but did not qualify, so a reviewer sees why it failed
        near = [e for e in of_type if e not in matches]
        extra = f"; found but not qualifying: {_fmt_event(near[0])}" if near else ""
        need = f" (need {rule.min_count}, found {n})" if rule.min_count > 1 else ""
        return Verdict(FAIL, tuple(e.event_id for e in near[:5]), f"no {cond}{need}{extra}{role_note}")
    if rule.max_count is not None and n > rule.max_count:
        return Verdict(FAIL, ids, f"{n}× {cond}, more than {rule.max_count}: first {_fmt_event(matches[0])}{role_note}")
    count = f"{n}× " if n > 1 else ""
    return Verdict(PASS, ids, f"{count}{cond}: {_fmt_event(matches[0])}{role_note}")


def _eval_metric_rule(rule: MetricRule, ctx: ScoringContext) -> Verdict:
    v = ctx.metrics.get(rule.metric)
    bounds = " ".join(
        x
        for x in (f"≥ {rule.min:g}" if rule.min is not None else "", f"≤ {rule.max:g}" if rule.max is not None else "")
        if x
    )
    if v is None:
        return Verdict(rule.if_missing, (), f"{rule.metric} not measured (required {bounds})")
    ok = (rule.min is None or v >= rule.min) and (rule.max is None or v <= rule.max)
    return Verdict(PASS if ok else FAIL, (), f"{rule.metric} = {v:.3g} ({'within' if ok else 'outside'} {bounds})")


def evaluate(rule: Any, ctx: ScoringContext) -> Verdict:
    if isinstance(rule, EventRule):
        return _eval_event_rule(rule, ctx)
    if isinstance(rule, MetricRule):
        return _eval_metric_rule(rule, ctx)
    if isinstance(rule, NotRule):
        v = evaluate(rule.not_, ctx)
        flipped: Outcome = {PASS: FAIL, FAIL: PASS, NA: NA}[v.outcome]
        return Verdict(flipped, v.evidence, f"not ({v.rationale})")
    is_all = isinstance(rule, AllRule)
    subs = [evaluate(r, ctx) for r in (rule.all if is_all else rule.any)]
    outcomes = [v.outcome for v in subs]
    if is_all:
        outcome = FAIL if FAIL in outcomes else (NA if NA in outcomes else PASS)
    else:
        outcome = PASS if PASS in outcomes else (NA if NA in outcomes else FAIL)
    # cite the sub-verdicts that decided the outcome
    deciding = [v for v in subs if v.outcome == outcome] or subs
    evidence = tuple(dict.fromkeys(i for v in deciding for i in v.evidence))
    return Verdict(outcome, evidence, "; ".join(v.rationale for v in deciding))


def grade_for(percent: float, grades: Grades) -> str:
    if percent >= grades.excellent:
        return "excellent"
    if percent >= grades.good:
        return "good"
    if percent >= grades.fair:
        return "fair"
    return "poor"


def score_criterion(section: Section, crit: Criterion, ctx: ScoringContext) -> CriterionResult:
    max_points = crit.points or 0.0

    def na(reason: str, evidence: tuple[str, ...] = ()) -> CriterionResult:
        return CriterionResult(
            section.id, crit.id, NA, 0.0, max_points, crit.auto_fail, evidence, f"not applicable: {reason}"
        )

    if crit.applies_when is not None:
        gate = evaluate(crit.applies_when, ctx)
        if gate.outcome != PASS:
            return na(gate.rationale)
    if crit.na_when is not None:
        gate = evaluate(crit.na_when, ctx)
        if gate.outcome == PASS:
            return na(gate.rationale, gate.evidence)
    v = evaluate(crit.rule, ctx)
    if v.outcome == NA:
        return na(v.rationale, v.evidence)
    passed = v.outcome == PASS
    return CriterionResult(
        section.id,
        crit.id,
        v.outcome,
        max_points if passed else 0.0,
        max_points,
        crit.auto_fail,
        v.evidence,
        v.rationale,
    )


def score_call(card: Scorecard, ctx: ScoringContext) -> CallScore:
    results = [score_criterion(section, crit, ctx) for section, crit in card.criteria]
    applicable = [r for r in results if r.result != NA]
    max_score = sum(r.max_points for r in applicable)
    score = sum(r.points for r in applicable)
    auto_failed = [r.criterion_id for r in applicable if r.auto_fail and r.result == FAIL]
    percent = (100.0 * score / max_score) if max_score > 0 else None
    if auto_failed:
        # an auto-fail item voids the call's score whatever else went well
        score, percent = 0.0, 0.0
    grade = grade_for(percent, card.grades) if percent is not None else "na"
    failed = [r.criterion_id for r in applicable if r.result == FAIL]
    reasons: list[str] = []
    fw = card.flag_when
    if fw.auto_fail and auto_failed:
        reasons.append(f"auto-fail: {', '.join(auto_failed)}")
    if fw.grade_below and grade in GRADE_ORDER and GRADE_ORDER.index(grade) < GRADE_ORDER.index(fw.grade_below):
        reasons.append(
            f"grade {grade} ({percent:.0f}%) below {fw.grade_below}"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    for fr in fw.rules:
        v = evaluate(fr.rule, ctx)
        if v.outcome == PASS:
            reasons.append(f"{fr.reason}: {v.rationale}")
    return CallScore(
        scorecard_id=card.id,
        scorecard_version=card.version,
        score=score,
        max_score=max_score,
        percent=None if percent is None else round(percent, 2),
        grade=grade,
        auto_fail=bool(auto_failed),
        flagged=bool(reasons),
        flag_reasons=tuple(reasons),
        criteria=tuple(results),
    )


def cards_for_language(cards: list[Scorecard], language: str) -> list[Scorecard]:
    """The scorecards written for the call's language; every card when none is (the call is still scored)."""
    matching = [c for c in cards if c.applies_to(language)]
    return matching or list(cards)
