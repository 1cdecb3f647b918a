"""Mandarin lexicon correction (热词纠错): a homophone of a domain term, written as the term.

Whisper base hears contact-centre words right but writes them with the wrong characters of the same
sound ("公号" for 工号, "快弟" for 快递): the phrase matcher compares characters, and a QA reader
sees a typo. After ASR and OpenCC t2s (callqa.pipeline.writing), a span of Chinese characters whose
toneless pinyin equals that of a lexicon term (the call's vocabulary: configured company/product
names, plus SERVICE_TERMS) is rewritten as the term, unless the span already is, or cuts through, a
common word of jieba's dictionary (公司 reads gong si too, but is never rewritten).

Only spans of at least MIN_TERM_CHARS CJK characters are compared (one syllable has dozens of
characters), so Latin-script text (English calls, English turns of a Mandarin call) is never touched.
A replacement has as many characters as the span, so the words keep their timings and are cut back
at the same character offsets.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from callqa.pipeline.textmatch import is_cjk
from callqa.pipeline.types import Segment, Transcript, Word
from callqa.pipeline.writing import _is_kana_or_hangul

if TYPE_CHECKING:
    from callqa.config.settings import ASRSettings

log = logging.getLogger(__name__)

MIN_TERM_CHARS = 2
# A span (or a word it cuts through) at least this frequent in jieba's dictionary (~60 M tokens in
# all; 公司 45604, 工号 3) is a real word in its own right, not a misheard term.
COMMON_WORD_FREQ = 50

# General Mandarin contact-centre service words (what agents of any mainland service line say: staff
# number, parcel, ID card, verification code, satisfaction survey, complaint, bill, refund ...).
# Chosen as general vocabulary of the trade, not from any test call's script.
SERVICE_TERMS: tuple[str, ...] = (
    "工号",
    "快递",
    "快件",
    "包裹",
    "单号",
    "运单号",
    "订单号",
    "身份证",
    "手机号",
    "验证码",
    "满意度",
    "投诉",
    "账单",
    "账户",
    "账号",
    "退款",
    "退费",
    "缴费",
    "话费",
    "流量",
    "套餐",
    "宽带",
    "电费",
    "燃气费",
    "水费",
    "余额",
    "扣费",
    "发票",
    "客服",
    "来电",
    "户号",
    "户主",
    "机主",
    "工单",
    "售后",
    "维修",
    "信用卡",
    "银行卡",
    "密码",
    "转账",
    "挂失",
    "核实",
    "人工服务",
)


@lru_cache(maxsize=4096)
def _syllables(text: str) -> tuple[str, ...]:
    from pypinyin import lazy_pinyin

    return tuple(lazy_pinyin(text))


def _jieba() -> Any:
    with warnings.catch_warnings():  # jieba 0.42 imports pkg_resources, deprecated in setuptools
        warnings.simplefilter("ignore", UserWarning)
        import jieba

    if not jieba.dt.initialized:
        jieba.setLogLevel(logging.WARNING)  # not its "Building prefix dict" lines on every worker's stderr
        jieba.dt.check_initialized()
    return jieba


def _word_freq(word: str) -> int:
    return int(_jieba().dt.FREQ.get(word, 0))


def _cut(text: str) -> list[str]:
    return list(_jieba().cut(text, HMM=False))


@dataclass(frozen=True)
class Fix:
    """One rewritten span of a text: text[start:start + len(heard)] was `heard`, is now `term`."""

    start: int
    heard: str
    term: str


class LexiconCorrector:
    """Rewrites homophones of lexicon terms in Chinese text (one per worker; terms per call)."""

    def __init__(self, terms: Iterable[str] = SERVICE_TERMS, min_common_freq: int = COMMON_WORD_FREQ) -> None:
        self.min_common_freq = min_common_freq
        self._base = self._index(terms)

    @staticmethod
    def _index(terms: Iterable[str]) -> dict[tuple[str, ...], str]:
        out: dict[tuple[str, ...], str] = {}
        for t in terms:
            t = "".join(t.split())
            if len(t) >= MIN_TERM_CHARS and all(is_cjk(c) for c in t):
                # two terms of one sound: neither is safe to write for the other
                key = _syllables(t)
                out[key] = "" if key in out and out[key] != t else t
        return out

    def index(self, vocabulary: Sequence[str] = ()) -> dict[tuple[str, ...], str]:
        """The call's terms by syllables: the call's vocabulary (names first: they win a tie) and SERVICE_TERMS."""
        own = self._index(vocabulary)
        return {**self._base, **own}

    def fixes(self, text: str, terms: dict[tuple[str, ...], str]) -> list[Fix]:
        """The spans of text to rewrite, left to right, longest term first at each position."""
        out: list[Fix] = []
        i, n = 0, len(text)
        lengths = sorted({len(k) for k in terms}, reverse=True)
        while i < n:
            if not is_cjk(text[i]):
                i += 1
                continue
            j = i
            while j < n and is_cjk(text[j]):
                j += 1
            out += self._run_fixes(text[i:j], i, terms, lengths)
            i = j
        return out

    def _run_fixes(self, run: str, offset: int, terms: dict[tuple[str, ...], str], lengths: list[int]) -> list[Fix]:
        if len(run) < MIN_TERM_CHARS:
            return []
        sylls = _syllables(run)
        if len(sylls) != len(run):  # pypinyin kept something as one token: no safe alignment
            return []
        # the run's jieba words as character spans, for the "cuts through a common word" test
        bounds: list[tuple[int, int, str]] = []
        pos = 0
        for w in _cut(run):
            bounds.append((pos, pos + len(w), w))
            pos += len(w)
        out: list[Fix] = []
        k = 0
        while k < len(run):
            for m in lengths:
                if k + m > len(run):
                    continue
                term = terms.get(sylls[k : k + m])
                span = run[k : k + m]
                if not term or term == span or self._is_common(span, k, k + m, bounds):
                    continue
                out.append(Fix(offset + k, span, term))
                k += m
                break
            else:
                k += 1
        return out

    def _is_common(self, span: str, a: int, b: int, bounds: list[tuple[int, int, str]]) -> bool:
        if _word_freq(span) >= self.min_common_freq:
            return True
        # a frequent word of two or more characters that the span would cut in two (成功好 → 成|功好)
        return any(
            len(w) > 1 and (s < a < e or s < b < e) and _word_freq(w) >= self.min_common_freq for s, e, w in bounds
        )

    def correct(self, text: str, terms: dict[tuple[str, ...], str]) -> str:
        fixes = self.fixes(text, terms)
        if not fixes:
            return text
        chars = list(text)
        for f in fixes:
            chars[f.start : f.start + len(f.term)] = f.term
        return "".join(chars)

    def words(self, words: Sequence[Word], terms: dict[tuple[str, ...], str]) -> tuple[Word, ...]:
        """The words with their homophones rewritten, timings unchanged: corrected joined (a term can
        span two Whisper words) and cut back at the same offsets (a fix keeps the length)."""
        texts = [w.text for w in words]
        joined = "".join(texts)
        fixed = self.correct(joined, terms)
        if fixed == joined:
            return tuple(words)
        out, pos = [], 0
        for t in texts:
            out.append(fixed[pos : pos + len(t)])
            pos += len(t)
        return tuple(w if w.text == t else replace(w, text=t) for w, t in zip(words, out))

    def transcript(self, transcript: Transcript, vocabulary: Sequence[str] = ()) -> Transcript:
        """Chinese segments with the call's lexicon homophones rewritten; others as they were. The
        text as heard is logged (debug) per segment: the stored utterance has no field for it."""
        terms = self.index(vocabulary)
        if not terms or (transcript.language or "").split("-")[0].lower() in ("ja", "ko"):
            return transcript
        segments: list[Segment] = []
        for s in transcript.segments:
            if any(_is_kana_or_hangul(c) for c in s.text):  # Japanese kanji are not Chinese words
                segments.append(s)
                continue
            words = self.words(s.words, terms)
            text = self.correct(s.text, terms)
            if words == s.words and text == s.text:
                segments.append(s)
                continue
            log.debug("lexicon correction %.2f-%.2f s ch%d: %r -> %r", s.start, s.end, s.channel, s.text, text)
            segments.append(replace(s, words=words, text=text))
        return replace(transcript, segments=segments)


def correct_transcript(
    transcript: Transcript, corrector: LexiconCorrector, settings: ASRSettings, vocabulary: Sequence[str] = ()
) -> Transcript:
    """The transcript with lexicon homophones rewritten, or as it was when models.asr.lexicon_correction is off."""
    return corrector.transcript(transcript, vocabulary) if settings.lexicon_correction else transcript
