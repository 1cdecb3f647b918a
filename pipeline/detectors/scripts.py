"""Script-compliance detectors: find the scripted lines QA listens for (greeting so far).

Each scripted line is a phrase list per language; a match in an utterance becomes an Event whose
times come from the matched words and whose evidence is the quote.
"""

from __future__ import annotations

from dataclasses import dataclass

from callqa.config.phrases import PhraseBook
from callqa.pipeline.textmatch import PhraseMatch, best_match, tokens
from callqa.pipeline.types import Event, Utterance, Word, new_event_id

DETECTOR_VERSION = "scripts/1"


@dataclass(frozen=True)
class ScriptSettings:
    fuzzy_threshold: float = 80.0
    # A greeting is by definition at the start of the call; later matches ("good morning" in the
    # middle of a call) are not openings. The scorecard decides the window that passes.
    greeting_search_s: float = 60.0


def _word_tokens(words: list[Word]) -> tuple[list[str], list[int]]:
    toks, owner = [], []
    for i, w in enumerate(words):
        for t in tokens(w.text):
            toks.append(t)
            owner.append(i)
    return toks, owner


def _quote(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def match_utterance(utt: Utterance, phrases: list[str], threshold: float) -> tuple[PhraseMatch, float, float] | None:
    """Best phrase match in an utterance with the start/end of the matched words."""
    toks, owner = _word_tokens(utt.words)
    if not toks:
        return None
    best: PhraseMatch | None = None
    for phrase in phrases:
        m = best_match(phrase, toks, threshold)
        if m and (best is None or m.score > best.score):
            best = m
    if best is None:
        return None
    first, last = utt.words[owner[best.first_token]], utt.words[owner[best.last_token]]
    start, end = first.start, max(last.end, first.start + 0.01)
    return best, start, end


def detect_greeting(call_id: str, utterances: list[Utterance], book: PhraseBook, cfg: ScriptSettings) -> list[Event]:
    """One `greeting` event per opening utterance that matches the greeting phrase list."""
    events: list[Event] = []
    for utt in utterances:
        if utt.start > cfg.greeting_search_s:
            break
        found = match_utterance(utt, book.greeting, cfg.fuzzy_threshold)
        if not found:
            continue
        m, start, end = found
        events.append(
            Event(
                type="greeting",
                start=start,
                end=end,
                speaker=utt.speaker,
                role=utt.role,
                evidence=_quote(utt.text),
                confidence=round(m.score / 100.0, 3),
                detector_version=DETECTOR_VERSION,
                data={"phrase": m.phrase, "matched": m.matched, "score": round(m.score, 1), "utt_seq": utt.seq},
                event_id=new_event_id(call_id, "greeting", start, end, utt.speaker),
            )
        )
    return events
