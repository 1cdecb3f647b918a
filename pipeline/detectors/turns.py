"""Utterances as the text detectors read them: canonical tokens per word, sentences, negation and
overlapping matches (callqa.pipeline.detectors.text runs the detectors over them)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callqa.pipeline.speakers import join_words
from callqa.pipeline.textmatch import PhraseMatch, canonical_tokens, is_cjk
from callqa.pipeline.types import Utterance, Word

_SENTENCE_END = re.compile(r"[.!?。！？;；…]$")
_CLAUSE_END = re.compile(r"[,，、:：]$")
_MAX_SENTENCE_TOKENS = 30  # an unpunctuated ASR run is cut into chunks this long for embedding
_CHUNK_TOKENS = 20


@dataclass
class Turn:
    """An utterance with its words' canonical tokens (`owner`: token → word index)."""

    utt: Utterance
    words: list[Word]
    toks: list[str]
    owner: list[int]  # token -> word index


def _words_of(utt: Utterance) -> list[Word]:
    if utt.words:
        return list(utt.words)
    # Text without word timings: spread its tokens over the turn so evidence still has times.
    parts = [p for p in re.split(r"(\s+)", utt.text) if p.strip()]
    if not parts:
        return []
    if len(parts) == 1 and sum(is_cjk(c) for c in parts[0]) > 1:
        parts = list(parts[0])
    step = max(utt.end - utt.start, 0.01) / len(parts)
    return [
        Word(utt.start + i * step, utt.start + (i + 1) * step, p, 1.0, utt.channel or 0) for i, p in enumerate(parts)
    ]


def prepare(utt: Utterance) -> Turn:
    words = _words_of(utt)
    toks, owner = [], []
    for i, w in enumerate(words):
        for t in canonical_tokens(w.text):
            toks.append(t)
            owner.append(i)
    return Turn(utt, words, toks, owner)


def sentences(u: Turn) -> list[tuple[int, int]]:
    """Word index ranges [a, b) of the utterance's sentences, long unpunctuated runs cut in chunks."""
    out, start, ntok = [], 0, 0
    n = len(u.words)
    tok_count = [0] * n
    for o in u.owner:
        tok_count[o] += 1
    last_clause = None
    for i, w in enumerate(u.words):
        ntok += tok_count[i]
        t = w.text.strip()
        if _CLAUSE_END.search(t):
            last_clause = i
        if _SENTENCE_END.search(t) or i == n - 1:
            out.append((start, i + 1))
            start, ntok, last_clause = i + 1, 0, None
        elif ntok >= _MAX_SENTENCE_TOKENS:
            cut = last_clause + 1 if last_clause is not None and last_clause >= start else i + 1
            if ntok >= _MAX_SENTENCE_TOKENS + _CHUNK_TOKENS or cut == i + 1:
                out.append((start, cut))
                ntok = sum(tok_count[cut : i + 1])
                start, last_clause = cut, None
    return [(a, b) for a, b in out if b > a]


def n_tokens(u: Turn, a: int, b: int) -> int:
    return sum(1 for o in u.owner if a <= o < b)


def join(words: Sequence[Word]) -> str:
    return join_words(list(words))


def negated(negations: Sequence[list[str]], toks: list[str], m: PhraseMatch) -> bool:
    """A negation cue just before the match, or inside it when the phrase has none of its own."""
    phrase_toks = set(canonical_tokens(m.phrase))
    # Mandarin puts the denial two or three characters ahead (不是要投诉); English right before
    # the phrase or inside the matched words (I do not want to make a complaint).
    back = 3 if is_cjk(m.matched[:1]) else 1
    span = toks[max(0, m.first_token - back) : m.last_token + 1]
    for cue in negations:
        if set(cue) <= phrase_toks:
            continue
        k = len(cue)
        for i in range(len(span) - k + 1):
            if span[i : i + k] == cue:
                return True
    return False


def has_negation(negations: Sequence[list[str]], toks: list[str]) -> bool:
    for cue in negations:
        k = len(cue)
        if any(toks[i : i + k] == cue for i in range(len(toks) - k + 1)):
            return True
    return False


def resolve_overlaps(matches: list[PhraseMatch], positional: set[str]) -> list[PhraseMatch]:
    """One stretch of words says one thing: where matches of two lists cover the same words,
    keep the better one (higher score, then the longer phrase). 还有什么可以帮您 (further help)
    and 请问有什么可以帮您 (need discovery) differ by one character; only the better fit stays.
    Greeting and closing are never dropped (they are decided by position; "thank you for
    calling" opens and closes calls) but they do win the words from a weaker match of another list.
    """

    def key(m: PhraseMatch) -> tuple[float, int]:
        return (m.score, len(canonical_tokens(m.phrase)))

    out: list[PhraseMatch] = []
    for m in sorted(matches, key=key, reverse=True):
        if m.group not in positional:
            clash = False
            for o in out:
                if o.group in positional and o.score < 100:
                    continue
                inter = min(m.last_token, o.last_token) - max(m.first_token, o.first_token) + 1
                shorter = min(m.last_token - m.first_token, o.last_token - o.first_token) + 1
                if inter > 0 and inter >= 0.5 * shorter:
                    clash = True
                    break
            if clash:
                continue
        out.append(m)
    return out
