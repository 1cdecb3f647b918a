"""Script-compliance detectors: the scripted lines QA listens for in the agent's speech.

Greeting, identity verification, asking the need, explaining the solution, confirming
understanding, offering further help, checking satisfaction, closing. Each is a phrase list per
language (config/phrases/<lang>.yaml) matched by `callqa.pipeline.detectors.text`; this module
says who must say it and where in the call, and works out the greeting's details (agent name,
company name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from callqa.pipeline.textmatch import canonical

DETECTOR_VERSION = "scripts/3"

_QUESTION = re.compile(r"[?？]\s*$|[吗呢么]\W*$")
# a request for information is not an explanation (麻烦您提供一下…, 请您报一下…)
_REQUEST = re.compile(r"^\W*(?:好的\W*)?(?:麻烦|请您|请提供|请问|能否|could you|can you|can i|may i|please)", re.I)
# The agent announcing its own next step is not explaining the customer's issue: "let me just look
# through the desk", "let's see what we can do", "I'll just note that we don't know", "give me a sec".
# Matched on canonical text (contractions expanded, "one" → 1), after any discourse markers.
_OWN_STEP = re.compile(
    r"^(?:(?:and|so|okay|ok|well|um|uh|alright|all right|right|yes|yeah|sure|now|first|but)\s+)*"
    r"(?:let (?:me|us)|give me|bear with me|hold on|hang on"
    r"|(?:just )?(?:a|1) (?:sec|second|moment|minute)|i am just|i will just|i am going to just"
    r"|i (?:just )?need to (?:ask|check|confirm|get))\b"
)
# The agent goes on to ask the customer something, so it is not going quiet on a hold: "Let me check,
# can you confirm the first line of your address?" (a clause that opens with the question; a wh-word
# only with a question mark, so "...while I check what's available" still announces the wait)
_CLAUSE = r"(?:^|[,.;:!?，。；：！？]\s*)(?:(?:and|so|okay|ok|now|also)\s+)?"
_ASKS_YOU = re.compile(
    _CLAUSE + r"(?:(?:can|could|would|will|do|did|are|have) you"
    r"|(?:can|could|may) i (?:have|get|take))\b"
)
_ASKS_WH = re.compile(_CLAUSE + r"(?:what|which|when|where|how|who)\b")
# An identity check asks: a detail named in a statement ("I've updated your email address", "we'll
# text your phone number") is not one. Applies to phrases that name only the detail ("your id
# number", "your member number"); phrases with their own verb ("can I take...") ask already.
_DETAIL_ONLY = re.compile(r"^(?:your|the)\b")
_ASKS = re.compile(
    r"\b(?:can|could|may|would|will) (?:i|you|we)\b|\bplease\b|\bwhat (?:is|was|are|were)\b"
    r"|\b(?:confirm|verify|verification|security|tell me|give me|read me|spell|do you (?:have|know))\b"
)


@dataclass(frozen=True)
class TextDetector:
    """One phrase list turned into one event type."""

    type: str  # event type, and the phrase list of the same name
    role: Literal["agent", "customer"]  # who must say it
    # "opening": only in the agent's first turns; "closing": only in the agent's last turns
    position: Literal["any", "opening", "closing"] = "any"
    once: bool = False  # at most one event per call (the first opening, the last closing)
    negatable: bool = False  # "I don't want to complain" is not a complaint
    version: str = DETECTOR_VERSION


SCRIPT_DETECTORS: tuple[TextDetector, ...] = (
    TextDetector("greeting", "agent", position="opening", once=True),
    TextDetector("identity_verification", "agent"),
    TextDetector("need_discovery", "agent"),
    TextDetector("understanding_confirmed", "agent"),
    TextDetector("solution_explained", "agent"),
    TextDetector("further_help_offered", "agent"),
    TextDetector("satisfaction_check", "agent"),
    TextDetector("closing", "agent", position="closing", once=True),
)


@dataclass(frozen=True)
class GreetingDetails:
    has_name: bool
    name: str | None
    has_company: bool
    company: str | None


def _company_fuzzy(text: str, names: Sequence[str], threshold: float) -> str | None:
    """A configured company name in `text` (partial fuzzy match, so "Acme Energie" still counts)."""
    best, best_score = None, 0.0
    for name in names:
        c = canonical(name)
        if not c:
            continue
        # spaces are dropped for the comparison: Mandarin ASR may split 招商银行 as 招商 银行
        score = fuzz.partial_ratio(c.replace(" ", ""), text.replace(" ", ""))
        if score >= threshold and score > best_score:
            best, best_score = name, score
    return best


def greeting_details(
    text: str,
    name_patterns: Sequence[re.Pattern[str]],
    name_stopwords: frozenset[str],
    company_patterns: Sequence[re.Pattern[str]],
    company_names: Sequence[str],
    threshold: float = 85.0,
) -> GreetingDetails:
    """Does the opening name the agent and the company? `text` is the agent's opening speech.

    Configured company names are matched fuzzily; without any, or when none matches, the
    language's company patterns ("thank you for calling X", 欢迎致电X银行) decide.
    """
    canon = canonical(text)
    company = _company_fuzzy(canon, company_names, threshold) if company_names else None
    company_words = {w for n in company_names for w in canonical(n).split()}
    if company is None:
        for pat in company_patterns:
            m = pat.search(canon)
            if m:
                company = m.group(0)
                break
    name = None
    for pat in name_patterns:
        for m in pat.finditer(canon):
            cand = m.group(1) if m.groups() else m.group(0)
            if cand in name_stopwords or cand in company_words:
                continue
            if company and cand in canonical(company).split():
                continue
            name = cand
            break
        if name:
            break
    return GreetingDetails(name is not None, name, company is not None, company)


def greeting_is_formal(details: Sequence[GreetingDetails], offers_help: bool) -> bool:
    """A service opening names the company or offers help ("Service desk, how can I help?"); a
    salutation or a bare self-introduction ("hello", "hey, Mark speaking") is informal:
    callers open with those too, so role evidence must not take them for the agent's script."""
    return offers_help or any(d.has_company for d in details)


def explains(sentence: str) -> bool:
    """Whether an agent sentence can be explaining the cause or the fix: not a question ("this
    may sound odd, because...?"), not a request for information, and not the agent
    announcing its own next step ("let me just dig through the papers here")."""
    return not (_QUESTION.search(sentence) or _REQUEST.search(sentence) or _OWN_STEP.search(canonical(sentence)))


def asks_for_details(phrase: str, sentence: str) -> bool:
    """Whether an identity-verification match asks for the detail (see _DETAIL_ONLY)."""
    if not _DETAIL_ONLY.match(canonical(phrase)):
        return True
    return bool(_QUESTION.search(sentence) or _ASKS.search(canonical(sentence)))


def asks_customer(text: str) -> bool:
    """Whether the rest of an agent's turn after a hold cue asks the customer a question."""
    text = text.strip().lower().replace("\u2019", "'")
    return bool(_ASKS_YOU.search(text) or (_ASKS_WH.search(text) and re.search(r"[?？]", text)))
