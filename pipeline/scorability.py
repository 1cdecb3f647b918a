"""Scorability: whether a call can be graded at all, decided between detect and score.

A grade says how the agent handled a call. A recording that cannot show it (cut short, a clip, a test
tone, a silent line, one party's leg alone) used to be graded "poor" for every criterion it cannot show,
sit in the flagged queue and pull the agent's averages down. `assess` decides from what the pipeline has
already measured (duration, decode's warnings, utterances, roles and events), so it costs nothing:

- ``unscorable``: not graded. No scores are produced, so the call is absent from grades, agent averages,
  pass rates and the flagged queue by construction; it is stored with its reasons and listed as a
  recording to check.
- ``partial``: only the agent's side is on the recording (a one-sided recording, such as the real
  aws-lca agent.wav). Graded on the criteria that side can show; every criterion that needs the
  customer's side (their words or mood, talk-over, the line's silences and holds, which on one leg are the
  other party talking) is n/a, and every voice on the recording is the agent's. Listed as a recording to
  check as well, so that a reviewer can confirm the call was one-sided.
- ``scorable``: graded as usual.

The limits are `settings.scorability` (config/settings.py). Rescoring reads the stored status and applies
the same `grade` (callqa.pipeline.rescoring), so a new scorecard version never grades an unscorable call.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from callqa.config.phrases import AGENT_LISTS
from callqa.config.settings import ScorabilitySettings
from callqa.pipeline.scoring import (
    AllRule,
    AnyRule,
    Criterion,
    EventRule,
    MetricRule,
    NotRule,
    Scorecard,
    ScoringContext,
    Section,
    score_call,
)
from callqa.pipeline.spans import merge_spans, subtract_spans, total_length
from callqa.pipeline.types import (
    CallScore,
    CriterionResult,
    Event,
    RoleDecision,
    Scorability,
    ScorableStatus,
    Utterance,
)

SCORABLE: ScorableStatus = "scorable"
PARTIAL: ScorableStatus = "partial"
UNSCORABLE: ScorableStatus = "unscorable"

# What the agent says when a call is a service call: one of these heard means there is an agent to grade.
# Every agent phrase list but the forbidden phrases, which are no part of a script.
SCRIPT_EVENTS = frozenset(AGENT_LISTS) - {"forbidden_phrase"}
# What a recording of the agent's side alone cannot show: the customer's words and mood, and the line
# measurements that need both parties (on one leg, silence is the other party talking).
CUSTOMER_EVENTS = frozenset({"escalation_request", "complaint", "negative_emotion"})
LINE_EVENTS = frozenset({"hold", "hold_unannounced", "dead_air", "overtalk", "interruption"})
TWO_PARTY_METRICS = frozenset(
    {
        "talk_s",
        "talk_s_customer",
        "talk_ratio_agent",
        "speech_share",
        "hold_count",
        "hold_total_s",
        "hold_max_s",
        "dead_air_count",
        "dead_air_total_s",
        "overtalk_total_s",
        "interruptions_agent",
        "interruptions_customer",
        "rate_customer",
        "customer_emotion_start",
        "customer_emotion_end",
        "negative_emotion_count",
    }
)

# decode's warning for a file shorter than its header says (callqa.pipeline.decode)
_TRUNCATED = re.compile(r"truncated: decoded ([\d.]+) s of ([\d.]+) s declared")
# bleed's warning when one stereo channel carries nothing: the call is one party's leg (callqa.pipeline.bleed)
_SILENT_CHANNEL = "one stereo channel is silent"


def assess(
    duration_s: float,
    warnings: Sequence[str],
    utterances: Sequence[Utterance],
    events: Sequence[Event],
    roles: RoleDecision | None,
    limits: ScorabilitySettings,
    *,
    single_track: bool,
    diarized: bool,
) -> Scorability:
    """Whether the call can be graded, and why not.

    `single_track`: the speech came from one voice track (mono, or stereo processed as mono), so "two
    speakers" is what diarization was asked to find, not proof of two parties; `diarized`: that track
    was diarized (its speakers are voices, not channels).
    """
    reasons: list[str] = []
    kept = truncation(warnings)
    if kept is not None and kept[0] < limits.min_decoded_share * kept[1]:
        reasons.append(f"truncated: {kept[0]:.1f} s left of {kept[1]:.1f} s declared by the file")
    if duration_s < limits.min_duration_s:
        reasons.append(f"too short: {duration_s:.1f} s (under {limits.min_duration_s:g} s)")
    speech_s = total_length([(u.start, u.end) for u in utterances])
    if speech_s < limits.min_speech_s:
        reasons.append("no speech" + (f" ({speech_s:.1f} s of talk)" if speech_s > 0 else ""))
    scripted = any(e.type in SCRIPT_EVENTS for e in events)
    if single_track and not scripted and duration_s < limits.short_call_s and not reasons:
        reasons.append(f"no service call: no agent script in {duration_s:.0f} s (under {limits.short_call_s:g} s)")
    if reasons:
        return Scorability(UNSCORABLE, tuple(reasons))

    if single_track:
        party = one_voice_track_party(warnings, utterances, events, limits, diarized=diarized)
    else:
        party = one_channel_party(utterances, roles, limits.min_party_speech_s)
    if party is None:
        return Scorability(SCORABLE)
    why, agent_heard = party
    if not agent_heard:
        return Scorability(UNSCORABLE, (f"{why}; no agent on it",))
    if limits.agent_side_only == UNSCORABLE:
        return Scorability(UNSCORABLE, (f"{why} (the agent's side only, not graded by the settings)",))
    return Scorability(PARTIAL, (f"{why} (graded on the agent's side only)",))


def truncation(warnings: Iterable[str]) -> tuple[float, float] | None:
    """(seconds decoded, seconds declared) from decode's truncation warning, if any."""
    for w in warnings:
        m = _TRUNCATED.search(w)
        if m:
            return float(m.group(1)), float(m.group(2))
    return None


def one_channel_party(
    utterances: Sequence[Utterance], roles: RoleDecision | None, min_s: float
) -> tuple[str, bool] | None:
    """(why, whether the party heard is the agent) when a recording with one channel per party carries
    (almost) no speech on one party's channel, else None."""
    if roles is None or not roles.mapping:
        return None
    talk: dict[str, float] = defaultdict(float)
    for u in utterances:
        talk[u.role] += u.end - u.start
    if talk["customer"] < min_s <= talk["agent"]:
        return f"one party only: the customer is not heard ({talk['customer']:.1f} s of speech)", True
    if talk["agent"] < min_s <= talk["customer"]:
        return f"one party only: the agent is not heard ({talk['agent']:.1f} s of speech)", False
    return None


def one_voice_track_party(
    warnings: Sequence[str],
    utterances: Sequence[Utterance],
    events: Sequence[Event],
    limits: ScorabilitySettings,
    *,
    diarized: bool,
) -> tuple[str, bool] | None:
    """(why, whether the party heard is the agent) when only one party is on a single voice track, else None.

    Whoever speaks the agent's script is the agent.
    """
    min_s = limits.min_party_speech_s
    agent_heard = any(e.type in SCRIPT_EVENTS for e in events)
    if any(_SILENT_CHANNEL in w for w in warnings):
        return "one party only: one stereo channel is silent", agent_heard
    if diarized:
        voices: dict[str, float] = defaultdict(float)
        for u in utterances:
            voices[u.speaker] += u.end - u.start
        if sum(1 for s in voices.values() if s >= min_s) == 1:
            return "one party only: one voice on the recording", agent_heard
    gaps = turn_gaps(utterances, events, limits.one_sided_gap_s)
    share = silent_share(utterances, events, limits.one_sided_gap_s)
    if len(gaps) >= limits.one_sided_min_gaps and share >= limits.one_sided_share:
        # the other party's turns, recorded on a leg that is not here
        return f"one party only: silent between turns for {share:.0%} of the talk", agent_heard
    return None


def turn_gaps(utterances: Sequence[Utterance], events: Sequence[Event], gap_s: float) -> list[tuple[float, float]]:
    """The silences of at least `gap_s` between turns (nobody speaking, no hold), first word to last."""
    talk = merge_spans([(u.start, u.end) for u in utterances])
    if not talk:
        return []
    holds = [(e.start, e.end) for e in events if e.type == "hold"]
    quiet = subtract_spans([(talk[0][0], talk[-1][1])], talk + holds)
    return [(s, e) for s, e in quiet if e - s >= gap_s]


def silent_share(utterances: Sequence[Utterance], events: Sequence[Event], gap_s: float) -> float:
    """Share of the talk span (first word to last) in `turn_gaps`."""
    if not utterances:
        return 0.0
    span = max(u.end for u in utterances) - min(u.start for u in utterances)
    return sum(e - s for s, e in turn_gaps(utterances, events, gap_s)) / span if span > 0 else 0.0


# --- grading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSideCard:
    """A scorecard as a recording of the agent's side alone can grade it: `card` keeps the criteria and
    flag rules that side can show; `set_aside` maps every other criterion to what it needs."""

    card: Scorecard
    set_aside: dict[str, str]


def agent_side(card: Scorecard) -> AgentSideCard:
    set_aside: dict[str, str] = {}
    sections: list[Section] = []
    for section in card.sections:
        kept: list[Criterion] = []
        for crit in section.criteria:
            needs = sorted({n for r in (crit.rule, crit.applies_when, crit.na_when) for n in _customer_side(r)})
            if needs:
                set_aside[crit.id] = ", ".join(needs)
            else:
                kept.append(crit)
        # a section left empty stays: it scores nothing (model_copy does not re-validate min_length)
        sections.append(section.model_copy(update={"criteria": kept}))
    flags = [f for f in card.flag_when.rules if not _customer_side(f.rule)]
    view = card.model_copy(
        update={"sections": sections, "flag_when": card.flag_when.model_copy(update={"rules": flags})}
    )
    return AgentSideCard(view, set_aside)


def _customer_side(rule: Any) -> set[str]:
    """The customer-side signals a rule reads (empty: the agent's side alone can decide it)."""
    if rule is None:
        return set()
    if isinstance(rule, EventRule):
        etype = rule.event or rule.absent or ""
        if rule.by == "customer" or etype in CUSTOMER_EVENTS or etype in LINE_EVENTS:
            return {etype if rule.by != "customer" else f"{etype} by customer"}
        return set()
    if isinstance(rule, MetricRule):
        return {rule.metric} if rule.metric in TWO_PARTY_METRICS else set()
    if isinstance(rule, NotRule):
        return _customer_side(rule.not_)
    if isinstance(rule, (AllRule, AnyRule)):
        return {n for r in (rule.all if isinstance(rule, AllRule) else rule.any) for n in _customer_side(r)}
    return set()


def grade(
    card: Scorecard, ctx: ScoringContext, scorability: Scorability, view: AgentSideCard | None = None
) -> CallScore | None:
    """The call's score on `card`; None when it is unscorable. `view`: agent_side(card), built once by a
    caller that grades many calls with one card."""
    if not scorability.graded:
        return None
    if scorability.status != PARTIAL:
        return score_call(card, ctx)
    view = view or agent_side(card)
    # every voice on a one-sided recording is the agent's, whoever diarization took it for
    agent_ctx = ScoringContext(
        events=[e if e.role == "agent" else replace(e, role="agent") for e in ctx.events],
        duration_s=ctx.duration_s,
        roles_known=True,
        metrics=ctx.metrics,
    )
    partial = score_call(view.card, agent_ctx)
    got = {r.criterion_id: r for r in partial.criteria}
    criteria: list[CriterionResult] = []
    for section, crit in card.criteria:
        if crit.id in got:
            criteria.append(got[crit.id])
            continue
        criteria.append(
            CriterionResult(
                section.id,
                crit.id,
                "na",
                0.0,
                crit.points or 0.0,
                crit.auto_fail,
                (),
                f"not applicable: the customer's side is not on this recording (needs {view.set_aside[crit.id]})",
            )
        )
    # criteria set aside score nothing either way, so the view's totals, grade and flags are the call's
    return replace(partial, criteria=tuple(criteria))


def grade_all(cards: Sequence[Scorecard], ctx: ScoringContext, scorability: Scorability) -> list[CallScore]:
    return [s for s in (grade(card, ctx, scorability) for card in cards) if s is not None]
