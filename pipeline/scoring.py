"""The score stage: apply a versioned YAML scorecard to a call's events.

Scorecards are validated with pydantic when loaded, so a typo (an unknown event type, a missing
points value) is reported with the file, criterion and field before any call is scored.
Scoring is a pure function of the stored events, so a stored call can be rescored with a new
scorecard version without audio or ASR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from callqa.config.settings import bundled_path, read_yaml
from callqa.pipeline.detectors import EVENT_TYPES
from callqa.pipeline.types import CallScore, ConfigError, CriterionResult, Event

GRADE_ORDER = ("poor", "fair", "good", "excellent")
GRADE_LABELS_ZH = {"excellent": "优", "good": "良", "fair": "中", "poor": "差"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_event(v: str) -> str:
    if v not in EVENT_TYPES:
        raise ValueError(f"unknown event type {v!r}; known: {sorted(EVENT_TYPES)}")
    return v


class EventRule(_Strict):
    """Passes when at least `min_count` matching events exist (`event`) or none does (`absent`)."""

    event: str | None = None
    absent: str | None = None
    by: Literal["agent", "customer", "any"] = "any"
    within_s: float | None = Field(default=None, gt=0)
    min_count: int = Field(default=1, ge=1)

    @field_validator("event", "absent")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        return None if v is None else _known_event(v)

    @model_validator(mode="after")
    def _one_of(self) -> "EventRule":
        if (self.event is None) == (self.absent is None):
            raise ValueError("a rule needs exactly one of `event` or `absent`")
        return self


class AllRule(_Strict):
    all: list["Rule"] = Field(min_length=1)


class AnyRule(_Strict):
    any: list["Rule"] = Field(min_length=1)


class NotRule(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    not_: "Rule" = Field(alias="not")


def _rule_kind(v: object) -> str:
    if isinstance(v, dict):
        for key, tag in (("all", "All"), ("any", "Any"), ("not", "Not")):
            if key in v:
                return tag
        return "Event"
    return {AllRule: "All", AnyRule: "Any", NotRule: "Not"}.get(type(v), "Event")


# The discriminator picks the rule kind from its keys, so a mistake is reported once, against the
# kind the author meant, instead of once per possible kind.
Rule = Annotated[
    Union[
        Annotated[EventRule, Tag("Event")],
        Annotated[AllRule, Tag("All")],
        Annotated[AnyRule, Tag("Any")],
        Annotated[NotRule, Tag("Not")],
    ],
    Discriminator(_rule_kind),
]
AllRule.model_rebuild()
AnyRule.model_rebuild()
NotRule.model_rebuild()


class Criterion(_Strict):
    id: str
    name: str | None = None
    points: float | None = Field(default=None, ge=0)
    auto_fail: bool = False
    rule: Rule
    na_when: Rule | None = None

    @model_validator(mode="after")
    def _points(self) -> "Criterion":
        if self.points is None and not self.auto_fail:
            raise ValueError("`points` is required (only auto-fail criteria may omit it)")
        return self


class Section(_Strict):
    id: str
    name: str | None = None
    criteria: list[Criterion] = Field(min_length=1)


class Grades(_Strict):
    excellent: float = Field(ge=0, le=100)
    good: float = Field(ge=0, le=100)
    fair: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> "Grades":
        if not self.excellent >= self.good >= self.fair:
            raise ValueError("grade thresholds must satisfy excellent ≥ good ≥ fair")
        return self


class FlagWhen(_Strict):
    grade_below: Literal["excellent", "good", "fair"] | None = "fair"
    auto_fail: bool = True


class Scorecard(_Strict):
    id: str
    version: int = Field(ge=1)
    name: str | None = None
    language: list[str] = ["en", "zh"]
    grades: Grades
    flag_when: FlagWhen = FlagWhen()
    sections: list[Section] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Scorecard":
        seen: set[str] = set()
        for s in self.sections:
            for c in s.criteria:
                if c.id in seen:
                    raise ValueError(f"criterion id {c.id!r} is used twice")
                seen.add(c.id)
        return self


def _describe_error(data: dict, err: ValidationError) -> str:
    """Name the criterion (by id, not list index) and the field for each validation error."""
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        where = []
        if len(loc) >= 2 and loc[0] == "sections" and isinstance(loc[1], int):
            sec = (data.get("sections") or [{}])[loc[1]] if loc[1] < len(data.get("sections") or []) else {}
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
    # a union reports one error per member; keep each message once
    return "; ".join(dict.fromkeys(parts))


def load_scorecard(path_or_name: str | Path) -> Scorecard:
    """A bundled scorecard by name (e.g. "inbound_basic") or a YAML file path."""
    p = Path(path_or_name)
    if not p.suffix and not p.exists():
        p = bundled_path("scorecards", f"{path_or_name}.yaml")
        if not p.exists():
            raise ConfigError(path_or_name, "no such bundled scorecard and no such file")
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(p, "a scorecard must be a YAML mapping")
    try:
        return Scorecard.model_validate(data)
    except ValidationError as e:
        raise ConfigError(p, _describe_error(data, e)) from e


# ---------------------------------------------------------------------------------------------
# evaluation


@dataclass(frozen=True)
class ScoringContext:
    events: list[Event]
    duration_s: float
    roles_known: bool  # False for mono calls whose speakers have no roles yet
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    evidence: tuple[str, ...]
    rationale: str


def _fmt_event(e: Event) -> str:
    who = e.role if e.role and e.role != "unknown" else (e.speaker or "?")
    return f"{who} at {e.start:.1f}s: “{e.evidence[:80]}”"


def _eval_event_rule(rule: EventRule, ctx: ScoringContext) -> Verdict:
    etype = rule.event or rule.absent
    of_type = [e for e in ctx.events if e.type == etype]
    matches = of_type
    role_note = ""
    if rule.by != "any":
        if ctx.roles_known:
            matches = [e for e in matches if e.role == rule.by]
        else:
            role_note = f" (roles undetermined: any speaker counted as {rule.by})"
    if rule.within_s is not None:
        matches = [e for e in matches if e.start <= rule.within_s]
    cond = f"{etype}" + (f" by {rule.by}" if rule.by != "any" else "") + (
        f" within {rule.within_s:g}s" if rule.within_s is not None else ""
    )
    if rule.event:
        if len(matches) >= rule.min_count:
            return Verdict(True, tuple(e.event_id for e in matches), f"{cond}: {_fmt_event(matches[0])}{role_note}")
        # cite what was found but did not qualify, so a reviewer sees why it failed
        near = [e for e in of_type if e not in matches]
        extra = f"; found but not qualifying: {_fmt_event(near[0])}" if near else ""
        need = f" (need {rule.min_count}, found {len(matches)})" if rule.min_count > 1 else ""
        return Verdict(False, tuple(e.event_id for e in near), f"no {cond}{need}{extra}{role_note}")
    if matches:
        return Verdict(False, tuple(e.event_id for e in matches), f"{cond} present: {_fmt_event(matches[0])}{role_note}")
    return Verdict(True, (), f"no {cond}{role_note}")


def evaluate(rule: Rule, ctx: ScoringContext) -> Verdict:
    if isinstance(rule, EventRule):
        return _eval_event_rule(rule, ctx)
    if isinstance(rule, NotRule):
        v = evaluate(rule.not_, ctx)
        return Verdict(not v.passed, v.evidence, f"not ({v.rationale})")
    subs = [evaluate(r, ctx) for r in (rule.all if isinstance(rule, AllRule) else rule.any)]
    passed = all(v.passed for v in subs) if isinstance(rule, AllRule) else any(v.passed for v in subs)
    evidence = tuple(dict.fromkeys(i for v in subs for i in v.evidence))
    return Verdict(passed, evidence, "; ".join(v.rationale for v in subs))


def grade_for(percent: float, grades: Grades) -> str:
    if percent >= grades.excellent:
        return "excellent"
    if percent >= grades.good:
        return "good"
    if percent >= grades.fair:
        return "fair"
    return "poor"


def score_call(card: Scorecard, ctx: ScoringContext) -> CallScore:
    results: list[CriterionResult] = []
    for section in card.sections:
        for crit in section.criteria:
            max_points = crit.points or 0.0
            if crit.na_when is not None:
                na = evaluate(crit.na_when, ctx)
                if na.passed:
                    results.append(
                        CriterionResult(section.id, crit.id, "na", 0.0, max_points, crit.auto_fail, na.evidence, f"not applicable: {na.rationale}")
                    )
                    continue
            v = evaluate(crit.rule, ctx)
            results.append(
                CriterionResult(
                    section.id, crit.id, "pass" if v.passed else "fail",
                    max_points if v.passed else 0.0, max_points, crit.auto_fail, v.evidence, v.rationale,
                )
            )
    applicable = [r for r in results if r.result != "na"]
    max_score = sum(r.max_points for r in applicable)
    score = sum(r.points for r in applicable)
    auto_failed = [r.criterion_id for r in applicable if r.auto_fail and r.result == "fail"]
    percent = (100.0 * score / max_score) if max_score > 0 else None
    if auto_failed:
        # an auto-fail item voids the call's score whatever else went well
        score, percent = 0.0, 0.0
    grade = grade_for(percent, card.grades) if percent is not None else "na"
    failed = [r.criterion_id for r in applicable if r.result == "fail"]
    reasons: list[str] = []
    if card.flag_when.auto_fail and auto_failed:
        reasons.append(f"auto-fail: {', '.join(auto_failed)}")
    if card.flag_when.grade_below and grade in GRADE_ORDER and GRADE_ORDER.index(grade) < GRADE_ORDER.index(card.flag_when.grade_below):
        reasons.append(
            f"grade {grade} ({percent:.0f}%) below {card.flag_when.grade_below}" + (f"; failed: {', '.join(failed)}" if failed else "")
        )
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
