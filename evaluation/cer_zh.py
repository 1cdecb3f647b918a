"""Mandarin character error rate after the normalisation that makes ASR output and scripts comparable.

Whisper writes Mandarin in Traditional or Simplified characters, numbers as Arabic digits or
Chinese numerals ("五十元" / "50元", "工号八零二三" / "工号8023"), and punctuates freely; none of
that is a recognition error a QA reader would notice. Before counting character edits, both sides
are converted to Simplified (OpenCC t2s), Chinese numerals are rewritten as Arabic digits with the
same rules the phrase matcher uses (`callqa.pipeline.textmatch.cn_numerals_to_arabic`: digit by
digit for 一二三, by value for 两百五), full-width forms folded (NFKC), and punctuation, symbols
and spaces removed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from callqa.pipeline.textmatch import cn_numerals_to_arabic, to_simplified


def normalize_zh(text: str) -> str:
    """The characters CER counts: Simplified, Arabic digits, lower case, no punctuation or spaces."""
    text = to_simplified(unicodedata.normalize("NFKC", text)).casefold()
    text = cn_numerals_to_arabic(text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


@dataclass(frozen=True)
class CerCount:
    """Character edits against a reference of `ref_chars` characters (CER = errors / ref_chars)."""

    errors: int
    ref_chars: int

    @property
    def cer(self) -> float | None:
        return self.errors / self.ref_chars if self.ref_chars else None

    def __add__(self, other: CerCount) -> CerCount:
        return CerCount(self.errors + other.errors, self.ref_chars + other.ref_chars)


def cer_count(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> CerCount:
    """Normalised character edits (substitutions + deletions + insertions) of hypothesis against reference.

    Sequences are joined in order first (turns of one channel, utterances of one call).
    """
    import jiwer

    ref = normalize_zh(reference if isinstance(reference, str) else "".join(reference))
    hyp = normalize_zh(hypothesis if isinstance(hypothesis, str) else "".join(hypothesis))
    if not ref:
        return CerCount(len(hyp), 0)
    if not hyp:
        return CerCount(len(ref), len(ref))
    out = jiwer.process_characters(ref, hyp)
    return CerCount(out.substitutions + out.deletions + out.insertions, len(ref))


def cer_zh(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float | None:
    """CER after `normalize_zh`; None for an empty reference."""
    return cer_count(reference, hypothesis).cer
