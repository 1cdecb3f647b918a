"""Text normalisation and fuzzy phrase matching shared by the script detectors.

ASR output differs from a script in case, punctuation, width (全角/半角), spacing and small
recognition errors, so phrases are matched on normalised tokens with rapidfuzz over word
windows. Windows (rather than `partial_ratio` over raw characters) keep short phrases such as
"hi" from matching inside longer words such as "which".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from rapidfuzz import fuzz

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")


def is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


def normalize(text: str) -> str:
    """NFKC (full→half width), case-folded, punctuation and symbols to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        out.append(" " if cat[0] in "PSZC" else ch)
    return " ".join("".join(out).split())


def tokens(text: str) -> list[str]:
    """Latin words split on spaces; every CJK character is a token of its own (Chinese has no spaces)."""
    toks: list[str] = []
    for part in normalize(text).split(" "):
        buf = ""
        for ch in part:
            if is_cjk(ch):
                if buf:
                    toks.append(buf)
                    buf = ""
                toks.append(ch)
            else:
                buf += ch
        if buf:
            toks.append(buf)
    return toks


def join_tokens(toks: Sequence[str]) -> str:
    out = ""
    for t in toks:
        if out and not (is_cjk(t[0]) and is_cjk(out[-1])):
            out += " "
        out += t
    return out


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    score: float  # 0..100
    first_token: int
    last_token: int  # inclusive
    matched: str


def best_match(phrase: str, toks: Sequence[str], threshold: float) -> PhraseMatch | None:
    """Best window of `toks` matching `phrase` with rapidfuzz ratio ≥ threshold, or None."""
    ptoks = tokens(phrase)
    if not ptoks or not toks:
        return None
    target = join_tokens(ptoks)
    n = len(ptoks)
    best: PhraseMatch | None = None
    for size in {max(1, n - 1), n, n + 1}:
        if size > len(toks):
            continue
        for i in range(0, len(toks) - size + 1):
            window = join_tokens(toks[i : i + size])
            score = fuzz.ratio(target, window)
            if score >= threshold and (best is None or score > best.score):
                best = PhraseMatch(phrase, score, i, i + size - 1, window)
    return best
