"""Chinese script of the transcript: Simplified characters, and the language of each utterance.

Whisper base writes Mandarin in Traditional characters about as often as in Simplified ("感謝您的耐心
等待"), and a mainland QA team reads Simplified: every stored utterance, word, evidence quote and
rationale is built from the words, so the words are converted (OpenCC t2s) right after ASR, before
speakers, roles and detectors see them.

A call can switch language (an English greeting, then Mandarin): each utterance is given the
language its script shows (share of CJK characters among its letters), so the text detectors match
it with that language's phrase lists.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from callqa.pipeline.textmatch import is_cjk
from callqa.pipeline.types import Segment, Transcript, Utterance, Word

if TYPE_CHECKING:
    import opencc

# An utterance whose letters are at least this share CJK characters is Chinese; at most
# LATIN_MAX_CJK (and with LATIN_MIN_LETTERS Latin letters), it is in the Latin-script language.
CJK_MIN_SHARE = 0.5
LATIN_MAX_CJK = 0.1
LATIN_MIN_LETTERS = 4


def _is_kana_or_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF


def _letters(text: str) -> tuple[int, int]:
    """(CJK ideographs, Latin letters) in text."""
    cjk = latin = 0
    for ch in text:
        if is_cjk(ch):
            cjk += 1
        elif ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
            latin += 1
    return cjk, latin


def script_language(text: str, call_language: str | None) -> str | None:
    """The language this text's script shows: "zh" when it is mostly Chinese characters; the call's
    language when that is not Chinese and the text is not either; "en" for Latin text in a Mandarin
    call (the other language callqa has phrase lists for); else None (no letters to tell by)."""
    cjk, latin = _letters(text)
    if cjk + latin == 0:
        return None
    base = (call_language or "").split("-")[0].lower()
    if cjk / (cjk + latin) >= CJK_MIN_SHARE:
        return "zh"
    if cjk / (cjk + latin) <= LATIN_MAX_CJK and latin >= LATIN_MIN_LETTERS:
        return base if base and base != "zh" else "en"
    return base or None


def tag_languages(utterances: Sequence[Utterance], call_language: str | None) -> list[Utterance]:
    """Every utterance with `language` set from its script (the call's language where it cannot tell)."""
    base = (call_language or "").split("-")[0].lower() or None
    return [replace(u, language=script_language(u.text, base) or base) for u in utterances]


class Simplifier:
    """OpenCC's Traditional → Simplified converter, built once per worker (it reads dictionaries)."""

    def __init__(self) -> None:
        import opencc

        self._cc: opencc.OpenCC = opencc.OpenCC("t2s")

    def convert(self, text: str) -> str:
        return self._cc.convert(text) if any(is_cjk(c) for c in text) else text

    def words(self, words: Sequence[Word]) -> tuple[Word, ...]:
        """The words in Simplified script, timings unchanged.

        OpenCC converts by phrase, so the words are converted joined (a phrase split across two
        Whisper words converts as it would in the sentence) and cut back at the same character
        offsets; t2s maps one character to one in all but a few phrases, and where the lengths
        differ each word is converted on its own instead."""
        texts = [w.text for w in words]
        if not any(is_cjk(c) for t in texts for c in t):
            return tuple(words)
        joined = "".join(texts)
        converted = self._cc.convert(joined)
        if len(converted) == len(joined):
            out, pos = [], 0
            for t in texts:
                out.append(converted[pos : pos + len(t)])
                pos += len(t)
        else:
            out = [self._cc.convert(t) for t in texts]
        return tuple(w if w.text == t else replace(w, text=t) for w, t in zip(words, out))

    def segment(self, seg: Segment) -> Segment:
        words = self.words(seg.words)
        text = self.convert(seg.text)
        return seg if words == seg.words and text == seg.text else replace(seg, words=words, text=text)

    def transcript(self, transcript: Transcript) -> Transcript:
        """Chinese segments in Simplified script. Japanese and Korean text (kana, hangul) is left as
        it is: t2s would rewrite Japanese kanji that are not Traditional Chinese."""
        segments = [s if any(_is_kana_or_hangul(c) for c in s.text) else self.segment(s) for s in transcript.segments]
        return replace(transcript, segments=segments)
