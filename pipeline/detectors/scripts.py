"""Script-compliance detectors: the scripted lines QA listens for in the agent's speech.

Greeting, identity verification, asking the need, explaining the solution, confirming
understanding, offering further help, checking satisfaction, closing. Each is a phrase list per
language (config/phrases/<lang>.yaml) matched by `callqa.pipeline.detectors.text`; this module
says who must say it and where in the call, and works out the greeting's details (agent name,
company name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

from rapidfuzz import fuzz

from callqa.pipeline.textmatch import canonical

DETECTOR_VERSION = "scripts/2"


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


def greeting_details(text: str, name_patterns: Sequence[re.Pattern[str]], name_stopwords: frozenset[str],
                     company_patterns: Sequence[re.Pattern[str]], company_names: Sequence[str],
                     threshold: float = 85.0) -> GreetingDetails:
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
