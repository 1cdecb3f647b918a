"""Per-language phrase lists (config/phrases/<lang>.yaml) used by the text detectors.

Each list is named after the event type it drives (see callqa.pipeline.detectors.EVENT_TYPES).
Phrases are matched after normalisation (case, punctuation, width, numerals), fuzzily (rapidfuzz;
pinyin for Mandarin homophones) and, for the lists that allow it, semantically.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import field_validator, model_validator

from callqa.config.settings import StrictModel, bundled_path, load_yaml_model
from callqa.pipeline.types import ConfigError

SUPPORTED_LANGUAGES = ("en", "zh")

# Phrase lists, one per text event type; the agent says the first group, the customer the second.
AGENT_LISTS = (
    "greeting",
    "identity_verification",
    "need_discovery",
    "understanding_confirmed",
    "solution_explained",
    "further_help_offered",
    "satisfaction_check",
    "closing",
    "forbidden_phrase",
    "empathy",
    "hold_announced",
    "hold_thanked",
    "transfer",
)
CUSTOMER_LISTS = ("escalation_request", "complaint", "repeat_contact_mention")
PHRASE_LISTS = AGENT_LISTS + CUSTOMER_LISTS


def _check_phrases(v: list[str]) -> list[str]:
    bad = [p for p in v if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"phrases must be non-empty strings, got {bad!r}")
    return v


class PhraseBook(StrictModel):
    """Phrase lists for one language; each list drives one event type of the same name."""

    language: str
    greeting: list[str] = []
    identity_verification: list[str] = []
    need_discovery: list[str] = []
    understanding_confirmed: list[str] = []
    solution_explained: list[str] = []
    further_help_offered: list[str] = []
    satisfaction_check: list[str] = []
    closing: list[str] = []
    forbidden_phrase: list[str] = []
    empathy: list[str] = []
    hold_announced: list[str] = []
    hold_thanked: list[str] = []
    escalation_request: list[str] = []
    complaint: list[str] = []
    transfer: list[str] = []  # the agent hands the call to another team or tier
    repeat_contact_mention: list[str] = []  # "this is the third time I call": an effort cue
    # Greeting details (regular expressions over the canonical text: lower case, no punctuation,
    # numerals as digits). A name pattern's first group, when it has one, is the name: a group
    # that is a stopword ("this is about…") or part of a company name is not a name.
    name_patterns: list[str] = []
    name_stopwords: list[str] = []
    company_patterns: list[str] = []
    # Words that, just before a match, turn it around ("I don't want to complain", 不是要投诉);
    # applied to the customer lists, where a denial is common.
    negations: list[str] = []

    @field_validator(*PHRASE_LISTS, "name_stopwords", "negations")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        return _check_phrases(v)

    @field_validator("name_patterns", "company_patterns")
    @classmethod
    def _regex(cls, v: list[str]) -> list[str]:
        _check_phrases(v)
        for p in v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"invalid regular expression {p!r}: {e}") from e
        return v

    @model_validator(mode="after")
    def _no_cross_list_duplicates(self) -> PhraseBook:
        # The same phrase in two lists of one speaker would make one utterance two contradictory
        # events (e.g. an empathy line also counted as a forbidden phrase): reject it at load time.
        from callqa.pipeline.textmatch import canonical

        for lists in (AGENT_LISTS, CUSTOMER_LISTS):
            seen: dict[str, str] = {}
            for name in lists:
                if name in ("greeting", "closing"):
                    continue  # "thank you for calling" opens and closes calls; position tells them apart
                for p in getattr(self, name):
                    key = canonical(p)
                    if key in seen and seen[key] != name:
                        raise ValueError(f"phrase {p!r} is in both {seen[key]} and {name}")
                    seen[key] = name
        return self

    def lists(self) -> dict[str, list[str]]:
        return {name: list(getattr(self, name)) for name in PHRASE_LISTS}


def load_phrasebook(language: str, path: str | Path | None = None) -> PhraseBook:
    """The bundled list for `language` ("en", "zh"; regional tags like "zh-CN" map to "zh"), or a user file."""
    if path is None:
        base = language.split("-")[0].lower()
        if base not in SUPPORTED_LANGUAGES:
            raise ConfigError(None, f"no bundled phrase list for language {language!r} (have {SUPPORTED_LANGUAGES})")
        path = bundled_path("phrases", f"{base}.yaml")
    return load_yaml_model(path, PhraseBook, "a phrase list must be a mapping of event type to a list of phrases")
