"""Text normalisation and fuzzy phrase matching shared by the text detectors.

ASR output differs from a script in case, punctuation, width (全角/半角), spacing, numerals
(一二三 / 123, 两百 / 200, "one" / 1), contractions and small recognition errors, so phrases are
matched on canonical tokens with rapidfuzz over word windows. Windows (rather than
`partial_ratio` over raw characters) keep short phrases such as "hi" from matching inside longer
words such as "which".

Mandarin ASR errors are mostly homophones (稍等 → 少等, 耐心 → 耐新): a second comparison runs on
toneless pinyin (pypinyin), so a phrase matches when either its characters or its sounds do.
Whisper also often writes Mandarin in Traditional characters; text is converted to Simplified
(OpenCC) before matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from rapidfuzz import fuzz, process

if TYPE_CHECKING:  # imported on first use: only Chinese text needs it
    import opencc

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")


def is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


# --------------------------------------------------------------------------- numerals

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_NUM_RUN = re.compile(r"[零〇一幺二两三四五六七八九十百千万亿]+(?:点[零〇一幺二两三四五六七八九]+)?")


def _cn_integer(run: str) -> int | None:
    """Value of a Chinese integer with units (三十五, 两百五, 一千零五, 三万五千); None if malformed."""
    total, section, digit = 0, 0, None
    last_unit, zero_before = 1, False
    for ch in run:
        if ch in _CN_DIGITS:
            if digit is not None and digit != 0:  # two digits in a row inside a unit number
                return None
            digit = _CN_DIGITS[ch]
            zero_before = zero_before or digit == 0
        else:
            unit = _CN_UNITS[ch]
            if unit >= 10_000:
                section = (section + (digit or 0)) * unit
                total += section
                section, digit = 0, None
            else:
                section += (1 if digit is None else digit) * unit
                digit = None
            last_unit = unit
    if digit:
        # 两百五 = 250, 三万五 = 35000: a trailing bare digit counts in the next lower unit,
        # unless a 零 says it is the units digit (一千零五 = 1005)
        section += digit * (last_unit // 10 if last_unit >= 100 and not zero_before else 1)
    return total + section


def _convert_cn_run(run: str) -> str:
    int_part, _, frac = run.partition("点")
    if any(ch in _CN_UNITS for ch in int_part):
        val = _cn_integer(int_part)
        if val is None:
            return run
        out = str(val)
    else:
        # digit by digit: phone numbers, account numbers, 工号 (一二三 → 123, 幺 → 1)
        out = "".join(str(_CN_DIGITS[ch]) for ch in int_part)
    if frac:
        out += "." + "".join(str(_CN_DIGITS[ch]) for ch in frac)
    return out


def cn_numerals_to_arabic(text: str) -> str:
    """Rewrite Chinese numerals as Arabic digits: 一二三 → 123, 两百 → 200, 三点五 → 3.5.

    A lone 一 is left alone: it is far more often a word part (一下, 一样, 一直) than a number.
    """

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        if run in ("一", "万", "亿", "十", "百", "千"):
            return run
        return _convert_cn_run(run)

    return _CN_NUM_RUN.sub(repl, text)


# "oh" is how English speakers read a 0 inside a number; callqa.pipeline.pii reads digit strings with it too
EN_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_EN_NUMBERS = {**EN_DIGIT_WORDS, "ten": "10", "eleven": "11", "twelve": "12"}
_CONTRACTIONS = [
    (re.compile(r"\b(can)'?t\b"), r"\1 not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\b(i)'m\b"), r"\1 am"),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\b(it|that|what|there|here|he|she|who|where|how)'s\b"), r"\1 is"),
]


# --------------------------------------------------------------------------- normalisation


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:  # one converter per process: building it reads OpenCC's dictionaries
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese (OpenCC t2s). Whisper often writes Mandarin in Traditional
    characters (請稍等 for 请稍等); phrase lists are Simplified."""
    return _t2s().convert(text) if any(is_cjk(c) for c in text) else text


def normalize(text: str) -> str:
    """NFKC (full→half width), case-folded, punctuation and symbols to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        out.append(" " if cat[0] in "PSZC" else ch)
    return " ".join("".join(out).split())


def canonical(text: str) -> str:
    """`normalize` plus the rewrites that make ASR output and scripts comparable: English
    contractions expanded (I'm → i am), number words and Chinese numerals as digits."""
    text = to_simplified(unicodedata.normalize("NFKC", text)).casefold().replace("\u2019", "'")
    for pat, rep in _CONTRACTIONS:
        text = pat.sub(rep, text)
    text = cn_numerals_to_arabic(text)
    words = normalize(text).split(" ")
    return " ".join(_EN_NUMBERS.get(w, w) for w in words if w)


def _split_cjk(part: str) -> list[str]:
    toks: list[str] = []
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


def tokens(text: str) -> list[str]:
    """Latin words split on spaces; every CJK character is a token of its own (Chinese has no spaces)."""
    toks: list[str] = []
    for part in normalize(text).split(" "):
        toks.extend(_split_cjk(part))
    return toks


def canonical_tokens(text: str) -> list[str]:
    """Tokens of `canonical(text)`: what phrases and transcripts are compared on."""
    toks: list[str] = []
    for part in canonical(text).split(" "):
        if part:
            toks.extend(_split_cjk(part))
    return toks


def join_tokens(toks: Sequence[str]) -> str:
    out = ""
    for t in toks:
        if out and not (is_cjk(t[0]) and is_cjk(out[-1])):
            out += " "
        out += t
    return out


@lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(ch, style=Style.NORMAL)[0]


# `canonical` has already turned Chinese numerals into digits (后四位 → 后4位), so without their
# readings a digit could never sound like a character: zh_call01's "手机号后四位", heard by Whisper
# base as "手機號後思維" (si wei, the same toneless pinyin), was missed as identity verification.
_DIGIT_PINYIN = dict(zip("0123456789", ("ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu"), strict=True))


def _token_pinyin(t: str) -> str:
    if len(t) == 1 and is_cjk(t):
        return _char_pinyin(t)
    if t.isascii() and t.isdigit():
        return " ".join(_DIGIT_PINYIN[d] for d in t)
    return t


def pinyin_tokens(toks: Sequence[str]) -> list[str]:
    """Toneless pinyin per token: CJK characters, and digit runs read digit by digit (4 → "si"), as
    `canonical` writes Chinese numerals as digits; other tokens unchanged. 稍 and 少 both → "shao"."""
    return [_token_pinyin(t) for t in toks]


def has_cjk(toks: Iterable[str]) -> bool:
    return any(len(t) == 1 and is_cjk(t) for t in toks)


# --------------------------------------------------------------------------- single phrase


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    score: float  # 0..100
    first_token: int
    last_token: int  # inclusive
    matched: str
    method: str = "fuzzy"  # "fuzzy" (characters/words) or "pinyin" (sounds)
    group: str = ""  # the phrase list (detector) the phrase belongs to


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


# --------------------------------------------------------------------------- many phrases at once


@dataclass(frozen=True)
class PhraseIndex:
    """Phrase lists compiled once per worker: canonical tokens, grouped by length for batched scoring.

    `groups[i]` names the list phrase i came from (an event type), so one pass over an utterance's
    windows scores every detector's phrases together (rapidfuzz `cdist`, in C) instead of one
    Python loop per phrase and window.
    """

    phrases: tuple[str, ...]
    groups: tuple[str, ...]
    texts: tuple[str, ...]  # canonical joined tokens
    pinyin: tuple[str | None, ...]  # pinyin joined by spaces; None where the phrase is too short or not Chinese
    lengths: np.ndarray
    by_length: dict[int, np.ndarray]

    @classmethod
    def build(cls, lists: Mapping[str, Sequence[str]], *, min_pinyin_tokens: int = 2) -> PhraseIndex:
        phrases, groups, texts, pys, lens = [], [], [], [], []
        for group, plist in lists.items():
            for p in plist:
                toks = canonical_tokens(p)
                if not toks:
                    continue
                phrases.append(p)
                groups.append(group)
                texts.append(join_tokens(toks))
                # Single characters are left to the characters: too many unrelated words share a sound.
                pys.append(" ".join(pinyin_tokens(toks)) if has_cjk(toks) and len(toks) >= min_pinyin_tokens else None)
                lens.append(len(toks))
        lengths = np.asarray(lens, dtype=np.int32)
        by_length = {int(n): np.flatnonzero(lengths == n) for n in np.unique(lengths)}
        return cls(tuple(phrases), tuple(groups), tuple(texts), tuple(pys), lengths, by_length)

    def __len__(self) -> int:
        return len(self.phrases)

    def match(
        self,
        toks: Sequence[str],
        threshold: float,
        *,
        groups: set[str] | None = None,
        pinyin_threshold: float | None = None,
        short_cjk: tuple[int, float] = (4, 88.0),
    ) -> dict[str, PhraseMatch]:
        """Best match per group among windows of n-1..n+2 tokens around each phrase length n.

        `short_cjk` = (n, t): Chinese phrases of at most n characters need a score of at least t.
        At ratio 80 a four-character phrase would match any three of its characters (身份验证 in
        带身份证到), so short ones may only gain a character, never lose or change one.
        """
        short_n, short_t = short_cjk
        if not toks or not self.phrases:
            return {}
        py_toks = pinyin_tokens(toks) if has_cjk(toks) else None
        pth = threshold if pinyin_threshold is None else pinyin_threshold
        win_cache: dict[int, list[str]] = {}
        py_cache: dict[int, list[str]] = {}

        def windows(size: int) -> list[str]:
            if size not in win_cache:
                win_cache[size] = [join_tokens(toks[i : i + size]) for i in range(len(toks) - size + 1)]
            return win_cache[size]

        def py_windows(size: int) -> list[str]:
            if size not in py_cache:
                assert py_toks is not None
                py_cache[size] = [" ".join(py_toks[i : i + size]) for i in range(len(py_toks) - size + 1)]
            return py_cache[size]

        best: dict[str, PhraseMatch] = {}
        best_len: dict[str, int] = {}

        def consider(
            idx: np.ndarray, queries: list[str], wins: list[str], size: int, cutoff: float, method: str
        ) -> None:
            scores = process.cdist(queries, wins, scorer=fuzz.ratio, score_cutoff=cutoff, dtype=np.float32)
            if method == "pinyin" and scores.size:
                # the same sounds split into other syllables: Whisper base heard the Kokoro agent's
                # 满意吗 (man yi ma) as 嘛你嘛 (ma ni ma), 94.7 with the syllables spaced, 97.8 run together
                joined = process.cdist(
                    [q.replace(" ", "") for q in queries],
                    [w.replace(" ", "") for w in wins],
                    scorer=fuzz.ratio,
                    score_cutoff=cutoff,
                    dtype=np.float32,
                )
                scores = np.maximum(scores, joined)
            if not scores.size:
                return
            cols = scores.argmax(axis=1)
            for row, col in enumerate(cols):
                s = float(scores[row, col])
                if s < cutoff or s <= 0:
                    continue
                i = int(idx[row])
                if method == "pinyin" and self.lengths[i] <= 2 and s < 100:
                    continue  # two syllables: only an exact homophone (少等 for 稍等), never a near one
                if self.lengths[i] <= short_n and s < short_t and is_cjk(self.texts[i][0]):
                    continue
                g = self.groups[i]
                cur = best.get(g)
                n_i = int(self.lengths[i])
                # prefer the higher score; on a tie the characters over the sounds, then the longer
                # phrase (its evidence says more: "please hold the line" over "please hold")
                if (
                    cur is None
                    or s > cur.score
                    or (
                        s == cur.score
                        and (
                            (method == "fuzzy" and cur.method != "fuzzy")
                            or (method == cur.method and n_i > best_len[g])
                        )
                    )
                ):
                    best_len[g] = n_i
                    best[g] = PhraseMatch(
                        self.phrases[i],
                        s,
                        int(col),
                        int(col) + size - 1,
                        join_tokens(toks[int(col) : int(col) + size]),
                        method,
                        g,
                    )

        for n, idx in self.by_length.items():
            if groups is not None:
                idx = np.asarray([i for i in idx if self.groups[i] in groups], dtype=np.int64)
                if not idx.size:
                    continue
            # n+2: a two-character insertion (理解您着急的心情 for 理解您的心情) still scores 86
            for size in sorted({max(1, n - 1), n, n + 1, n + 2}):
                if size > len(toks):
                    continue
                consider(idx, [self.texts[i] for i in idx], windows(size), size, threshold, "fuzzy")
                if py_toks is not None:
                    pidx = np.asarray([i for i in idx if self.pinyin[i] is not None], dtype=np.int64)
                    if pidx.size:
                        consider(pidx, [self.pinyin[i] for i in pidx], py_windows(size), size, pth, "pinyin")
        return best
