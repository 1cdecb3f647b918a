"""The redact stage: find PII in what a call's transcript says and replace it by its type.

What is found (type kept in the replacement, e.g. ``[CARD]``):

- ``CARD``        payment card numbers, 13-19 digits passing the Luhn check
- ``PHONE``       phone numbers: international (+CC / 00CC), North American, UK (0...), Chinese
                  mobiles (1[3-9] + 9 digits) and landlines (0 + area + 7-8 digits); shorter local
                  numbers when the sentence talks about a phone
- ``NATIONAL_ID`` US SSN (3-2-4 written, or 9 digits next to "social security"), UK National
                  Insurance numbers (AB123456C, also spelled out letter by letter) and Chinese
                  18-digit resident ID numbers (身份证, ISO 7064 checksum and a real birth date)
- ``EMAIL``       e-mail addresses, written (a@b.com) or spoken ("john dot smith at gmail dot com",
                  "zhangsan 艾特 qq 点 com")
- ``DIGITS``      any other digit string of at least ``min_digits`` digits (account numbers, PINs
                  read out, a card number the Luhn check rejects because ASR misheard one digit)

Digit strings are read the way callers say them and ASR writes them: numerals ("4472 1234"),
English digit words ("four four seven two", "oh", "double seven", "triple zero") and Mandarin digits
("幺三八", "一二三", "两", "零"/"〇"), in groups separated by spaces, hyphens, dots or commas, mixed
freely. Amounts ("1,250.00", "3.5") are not digit strings.

Where it is applied: `redact_call` rewrites a CallResult before it leaves the worker, so with
redaction on (the default) the raw text never reaches the writer or DuckDB: utterance text, every
word (each word inside a PII span becomes the type token, its timing kept), event evidence and every
string in event data, and criterion rationales. Optionally it writes a redacted audio copy with the
PII word spans silenced or beeped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from callqa.pipeline.textmatch import is_cjk
from callqa.pipeline.types import CallQAError, CallResult, CallScore, DecodedAudio, Event, Utterance, Word

PII_TYPES: tuple[str, ...] = ("CARD", "PHONE", "NATIONAL_ID", "EMAIL", "DIGITS")
PIIType = Literal["CARD", "PHONE", "NATIONAL_ID", "EMAIL", "DIGITS"]


class RedactionError(CallQAError):
    stage = "redact"


@dataclass(frozen=True)
class PIISpan:
    """A PII occurrence in a text: [start, end) character offsets, its type and the digits read."""

    start: int
    end: int
    type: str
    value: str  # canonical form (digits / letters, or the address for EMAIL): for tests and audits only

    @property
    def token(self) -> str:
        return f"[{self.type}]"


@dataclass(frozen=True)
class RedactionOptions:
    """What to redact; mirrors config.settings.RedactionSettings without importing it."""

    types: frozenset[str] = frozenset(PII_TYPES)
    min_digits: int = 6


# ------------------------------------------------------------------------------------------------
# validators


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


def cn_id_ok(s: str) -> bool:
    """Chinese resident ID: 17 digits + check character (ISO 7064 MOD 11-2) and a real birth date."""
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    if _CN_ID_CHECK[sum(int(c) * w for c, w in zip(s[:17], _CN_ID_WEIGHTS)) % 11] != s[17]:
        return False
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


def ssn_ok(d: str) -> bool:
    return len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"


_NI_RE = re.compile(r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")


def ni_ok(s: str) -> bool:
    return bool(_NI_RE.match(s))


# ------------------------------------------------------------------------------------------------
# tokenising digit strings

_EN_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_ZH_DIGITS = {
    "零": "0", "〇": "0", "洞": "0", "幺": "1", "一": "1", "壹": "1", "二": "2", "两": "2", "贰": "2", "三": "3",
    "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6", "陆": "6", "七": "7", "柒": "7", "拐": "7",
    "八": "8", "捌": "8", "九": "9", "玖": "9", "勾": "9",
}
_ZH_CLASS = "".join(k for k in _ZH_DIGITS if k not in "洞拐勾")  # radio-speak digits only next to others

_TOKEN_RE = re.compile(
    r"(?P<amount>(?<![\d,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\d.])\d+\.\d{1,2}(?![\d.]))"
    r"|(?P<num>\+?[0-9０-９]+)"
    rf"|(?P<zh>[{_ZH_CLASS}]+)"
    r"|(?P<mult>(?<![A-Za-z])(?:double|triple)(?![A-Za-z]))"
    r"|(?P<en>(?<![A-Za-z'])(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine)(?![A-Za-z']))"
    r"|(?P<letter>(?<![A-Za-z'])[A-Za-z](?![A-Za-z']))"
    r"|(?P<zhx>叉)",
    re.IGNORECASE,
)
# what may stand between two pieces of one digit string
_SEP_RE = re.compile(r"^[\s\-–—.,/()（）、，·]{0,4}$")

_CTX_PHONE = re.compile(r"phone|mobile|cell|number to call|call (?:me|you|back)|landline|ring|电话|手机|号码|联系方式|座机", re.I)
_CTX_SSN = re.compile(r"social security|\bssn\b|\bsocial\b", re.I)
_CTX_NI = re.compile(r"national insurance|\bni number\b|\bnino\b", re.I)
_CTX_CN_ID = re.compile(r"身份证|证件号|id card|identity card|\bid number\b", re.I)


@dataclass
class _Tok:
    start: int
    end: int
    kind: str  # digit | letter | mult
    chars: str  # digits (or one upper-case letter; or '2'/'3' for double/triple)
    plus: bool = False
    group: int = 0  # digits in this token as written (for 3-2-4 SSN grouping)


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        s, e = m.start(), m.end()
        if kind == "amount":
            out.append(_Tok(s, e, "break", ""))
        elif kind == "num":
            raw = m.group()
            plus = raw.startswith("+")
            digits = "".join(str(unicodedata.digit(c)) for c in raw.lstrip("+"))
            out.append(_Tok(s, e, "digit", digits, plus=plus, group=len(digits)))
        elif kind == "zh":
            digits = "".join(_ZH_DIGITS[c] for c in m.group())
            out.append(_Tok(s, e, "digit", digits, group=len(digits)))
        elif kind == "en":
            out.append(_Tok(s, e, "digit", _EN_DIGITS[m.group().lower()], group=1))
        elif kind == "mult":
            out.append(_Tok(s, e, "mult", "2" if m.group().lower() == "double" else "3"))
        elif kind == "letter":
            out.append(_Tok(s, e, "letter", m.group().upper()))
        elif kind == "zhx":
            out.append(_Tok(s, e, "letter", "X"))
    return out


def _runs(text: str, toks: list[_Tok]) -> list[list[_Tok]]:
    """Maximal sequences of digit/letter tokens with only separators between them."""
    runs: list[list[_Tok]] = []
    cur: list[_Tok] = []
    for t in toks:
        if t.kind == "break":
            if cur:
                runs.append(cur)
            cur = []
            continue
        if cur and not _SEP_RE.match(text[cur[-1].end:t.start]):
            runs.append(cur)
            cur = []
        cur.append(t)
    if cur:
        runs.append(cur)
    return runs


@dataclass
class _Sym:
    ch: str  # one digit or one letter
    tok: int  # index of the token it came from


def _expand(run: list[_Tok]) -> list[_Sym]:
    """Symbols of a run: digits with double/triple applied, letters kept; 'O' between digits is zero."""
    syms: list[_Sym] = []
    pending = 1
    for i, t in enumerate(run):
        if t.kind == "mult":
            pending = int(t.chars)
            continue
        if t.kind == "digit":
            first, rest = t.chars[0], t.chars[1:]
            syms.extend(_Sym(first, i) for _ in range(pending))
            syms.extend(_Sym(c, i) for c in rest)
        else:
            syms.extend(_Sym(t.chars, i) for _ in range(pending))
        pending = 1
    for k, s in enumerate(syms):
        if s.ch == "O" and 0 < k < len(syms) - 1 and syms[k - 1].ch.isdigit() and syms[k + 1].ch.isdigit():
            s.ch = "0"
    return syms


def _classify_digits(d: str, plus: bool, groups: list[int], context: str, opts: RedactionOptions) -> str | None:
    n = len(d)
    if n == 18 and cn_id_ok(d):
        return "NATIONAL_ID"
    if 13 <= n <= 19 and luhn_ok(d) and not plus:
        return "CARD"
    if n == 9 and ssn_ok(d) and (groups == [3, 2, 4] or _CTX_SSN.search(context)):
        return "NATIONAL_ID"
    if plus or (d.startswith("00") and 10 <= n <= 15):
        if 8 <= n <= 15:
            return "PHONE"
    if n == 10 and d[0] in "23456789" and d[3] in "23456789":
        return "PHONE"  # North American number without the country code
    if n == 11 and d[0] == "1" and (d[1] in "3456789" or (d[1] == "2" and d[4] in "23456789")):
        return "PHONE"  # a Chinese mobile (1[3-9] + 9 digits), or 1 + a North American number
    if d[0] == "0" and 10 <= n <= 12:
        return "PHONE"  # UK national format, Chinese landline with area code
    if 7 <= n <= 8 and _CTX_PHONE.search(context):
        return "PHONE"
    if n >= opts.min_digits:
        return "DIGITS"
    return None


def _digit_spans(text: str, opts: RedactionOptions) -> list[PIISpan]:
    toks = _tokens(text)
    spans: list[PIISpan] = []
    for run in _runs(text, toks):
        syms = _expand(run)
        if not syms:
            continue
        canon = "".join(s.ch for s in syms)
        taken = [False] * len(syms)
        context = text[max(0, run[0].start - 60):run[-1].end + 20]

        def emit(a: int, b: int, type_: str) -> None:  # symbols [a, b)
            ia = syms[a].tok
            if ia > 0 and run[ia - 1].kind == "mult":
                ia -= 1  # "double four ...": the multiplier belongs to the span
            start, end = run[ia].start, run[syms[b - 1].tok].end
            if start > 0 and text[start - 1] == "(" and ")" in text[start:end]:
                start -= 1  # "(555) 234-5678"
            spans.append(PIISpan(start, end, type_, canon[a:b]))
            for k in range(a, b):
                taken[k] = True

        # IDs with letters first: a UK NI number anywhere in the run, a Chinese ID ending in X
        for m in re.finditer(r"[A-Z]{2}\d{6}[A-D]", canon):
            if ni_ok(m.group()):
                emit(m.start(), m.end(), "NATIONAL_ID")
        for m in re.finditer(r"\d{17}X", canon):
            if not any(taken[m.start():m.end()]) and cn_id_ok(m.group()):
                emit(m.start(), m.end(), "NATIONAL_ID")
        # what is left: digit-only stretches (letters split them)
        k = 0
        while k < len(syms):
            if taken[k] or not syms[k].ch.isdigit():
                k += 1
                continue
            j = k
            while j < len(syms) and not taken[j] and syms[j].ch.isdigit():
                j += 1
            d = canon[k:j]
            tok_ids = sorted({syms[x].tok for x in range(k, j)})
            groups = [len(run[t].chars) for t in tok_ids if run[t].kind == "digit"]
            type_ = _classify_digits(d, run[tok_ids[0]].plus, groups, context, opts)
            if type_ is not None:
                emit(k, j, type_)
            k = j
    return spans


# ------------------------------------------------------------------------------------------------
# e-mail

_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w])")
_TLD = r"(?:com|net|org|co|uk|cn|io|edu|gov|info|biz|de|fr|me|us|ca|au|in|jp|hk|tw)"
_DOT = r"\s*(?:\.|\bdot\b|点)\s*"
_UNDERSCORE = r"\s*(?:_|\bunderscore\b|下划线)\s*"
_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_SPOKEN_EMAIL_RE = re.compile(
    rf"(?<![A-Za-z0-9])(?P<local>{_LABEL}(?:(?:{_DOT}|{_UNDERSCORE}){_LABEL})*)"
    rf"\s*(?:@|\bat\b|艾特|at sign)\s*"
    rf"(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}{_TLD})(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def _email_spans(text: str) -> list[PIISpan]:
    spans = [PIISpan(m.start(), m.end(), "EMAIL", m.group()) for m in _EMAIL_RE.finditer(text)]
    for m in _SPOKEN_EMAIL_RE.finditer(text):
        if any(s.start < m.end() and m.start() < s.end for s in spans):
            continue
        local = re.sub(_DOT, ".", m.group("local"), flags=re.I)
        domain = re.sub(_DOT, ".", m.group("domain"), flags=re.I)
        spans.append(PIISpan(m.start(), m.end(), "EMAIL", f"{local}@{domain}".replace(" ", "")))
    return spans


# ------------------------------------------------------------------------------------------------
# public text API


# a UK National Insurance number as written: "AB123456C", "AB 12 34 56 C"
_NI_WRITTEN_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})\s?(\d{2})\s?(\d{2})\s?(\d{2})\s?([A-Da-d])(?![A-Za-z0-9])")


def _ni_written_spans(text: str) -> list[PIISpan]:
    out = []
    for m in _NI_WRITTEN_RE.finditer(text):
        canon = "".join(m.groups()).upper()
        if ni_ok(canon):
            out.append(PIISpan(m.start(), m.end(), "NATIONAL_ID", canon))
    return out


def find_pii(text: str, opts: RedactionOptions = RedactionOptions()) -> list[PIISpan]:
    """Every PII span in `text`, sorted, non-overlapping (e-mail addresses and written NI numbers win
    over the digit strings inside them)."""
    if not text:
        return []
    found: list[PIISpan] = []
    first = (_email_spans(text) if "EMAIL" in opts.types else []) + (
        _ni_written_spans(text) if "NATIONAL_ID" in opts.types else [])
    found.extend(first)
    for s in _digit_spans(text, opts):
        if s.type in opts.types and not any(e.start < s.end and s.start < e.end for e in first):
            found.append(s)
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[PIISpan] = []
    for s in found:
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def redact_text(text: str, opts: RedactionOptions = RedactionOptions(),
                known: Iterable[tuple[str, str]] = ()) -> tuple[str, list[PIISpan]]:
    """`text` with every PII span replaced by its type token. `known` (raw string, token) pairs found
    elsewhere in the call are replaced too: a quote that cut a card number in half must not show the half."""
    spans = find_pii(text, opts)
    out, pos = [], 0
    for s in spans:
        out.append(text[pos:s.start])
        out.append(s.token)
        pos = s.end
    out.append(text[pos:])
    red = "".join(out)
    for raw, token in _known_pairs(known):
        if raw in red:
            red = red.replace(raw, token)
    return red, spans


def _known_pairs(known: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    # longest first, so a whole number is replaced before the groups inside it
    return sorted({(raw, token) for raw, token in known if len(raw) >= 3}, key=lambda p: -len(p[0]))


# ------------------------------------------------------------------------------------------------
# call-level


def _tight(ch: str) -> bool:
    # the same rule as speakers.join_words: CJK and full-width characters are joined without spaces
    return is_cjk(ch) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def _joined_with_offsets(words: Sequence[Word]) -> tuple[str, list[tuple[int, int] | None]]:
    """The utterance text as the speakers stage joins words, with each word's character span."""
    out = ""
    offs: list[tuple[int, int] | None] = []
    for w in words:
        t = w.text.strip()
        if not t:
            offs.append(None)
            continue
        if out and not (_tight(out[-1]) and _tight(t[0])):
            out += " "
        offs.append((len(out), len(out) + len(t)))
        out += t
    return out, offs


@dataclass(frozen=True)
class RedactedSpan:
    """A PII span in time: what the audio copy silences, and what the call's audit records."""

    start: float
    end: float
    type: str
    speaker: str | None
    channel: int | None


def redact_utterance(u: Utterance, opts: RedactionOptions = RedactionOptions()
                     ) -> tuple[Utterance, list[RedactedSpan], list[tuple[str, str]]]:
    """(redacted utterance, PII time spans, (raw string, token) pairs found) — words in a PII span become its token."""
    joined, offs = _joined_with_offsets(u.words)
    spans = find_pii(joined, opts)
    words = list(u.words)
    timed: list[RedactedSpan] = []
    raws: list[tuple[str, str]] = []
    for s in spans:
        hit = [i for i, o in enumerate(offs) if o is not None and o[0] < s.end and s.start < o[1]]
        raws.append((joined[s.start:s.end], s.token))
        for i in hit:
            w = words[i]
            if any(c.isdigit() for c in w.text):  # a numeral group may be quoted on its own elsewhere
                raws.append((w.text.strip(), s.token))
            words[i] = replace(w, text=(" " if w.text.startswith(" ") else "") + s.token)
        if hit:
            timed.append(RedactedSpan(min(words[i].start for i in hit), max(words[i].end for i in hit), s.type, u.speaker,
                                      u.channel))
    if u.text == joined:
        text = "".join(_splice(joined, spans))
        text_spans = spans
    else:  # text built some other way (e.g. a diarizer's own join): redact it on its own
        text, text_spans = redact_text(u.text, opts, raws)
        raws.extend((u.text[s.start:s.end], s.token) for s in text_spans)
    if not spans and not text_spans:
        return u, [], []
    return replace(u, text=text, words=words), timed, raws


def _splice(text: str, spans: list[PIISpan]) -> list[str]:
    out, pos = [], 0
    for s in spans:
        out += [text[pos:s.start], s.token]
        pos = s.end
    out.append(text[pos:])
    return out


def redact_value(v: Any, opts: RedactionOptions, known: Sequence[tuple[str, str]]) -> Any:
    """Redact every string inside a JSON-like value (event data)."""
    if isinstance(v, str):
        return redact_text(v, opts, known)[0]
    if isinstance(v, dict):
        return {k: redact_value(x, opts, known) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(redact_value(x, opts, known) for x in v)
    return v


def redact_events(events: Sequence[Event], opts: RedactionOptions, known: Sequence[tuple[str, str]] = ()) -> list[Event]:
    out = []
    for e in events:
        ev, _ = redact_text(e.evidence, opts, known)
        if not ev.strip():
            ev = f"[{e.type}]"  # evidence must never be empty
        out.append(replace(e, evidence=ev, data=redact_value(e.data, opts, known)))
    return out


def redact_scores(scores: Sequence[CallScore], opts: RedactionOptions,
                  known: Sequence[tuple[str, str]] = ()) -> list[CallScore]:
    return [
        replace(
            s,
            criteria=tuple(replace(c, rationale=redact_text(c.rationale, opts, known)[0]) for c in s.criteria),
            flag_reasons=tuple(redact_text(r, opts, known)[0] for r in s.flag_reasons),
        )
        for s in scores
    ]


def redact_call(result: CallResult, opts: RedactionOptions = RedactionOptions()) -> tuple[CallResult, list[RedactedSpan]]:
    """A copy of the call with no raw PII left in any text it carries, and the PII spans in time."""
    utterances, spans, known = [], [], []
    for u in result.utterances:
        ru, ts, raws = redact_utterance(u, opts)
        utterances.append(ru)
        spans.extend(ts)
        known.extend(raws)
    red = replace(
        result,
        utterances=utterances,
        events=redact_events(result.events, opts, known),
        scores=redact_scores(result.scores, opts, known),
    )
    return red, spans


# ------------------------------------------------------------------------------------------------
# audio


def redact_audio(audio: DecodedAudio, spans: Sequence[RedactedSpan], mode: Literal["silence", "beep"] = "beep",
                 pad_s: float = 0.1, beep_hz: float = 1000.0) -> list[np.ndarray]:
    """Each channel with the PII spans (padded) silenced or replaced by a tone.

    Every channel is treated, not only the speaker's: on a stereo recording the other leg carries
    the speaker's voice as line echo or sidetone.
    """
    sr = audio.sample_rate
    out = [np.array(ch, dtype=np.float32, copy=True) for ch in audio.channels]
    for s in spans:
        a = max(0, int((s.start - pad_s) * sr))
        for ch in out:
            b = min(ch.size, int(np.ceil((s.end + pad_s) * sr)))
            if b <= a:
                continue
            if mode == "silence":
                ch[a:b] = 0.0
            else:
                t = np.arange(b - a) / sr
                tone = 0.25 * np.sin(2 * np.pi * beep_hz * t)
                ramp = min(tone.size // 2, int(0.005 * sr))
                if ramp:
                    tone[:ramp] *= np.linspace(0, 1, ramp)
                    tone[-ramp:] *= np.linspace(1, 0, ramp)
                ch[a:b] = tone.astype(np.float32)
    return out


def write_redacted_audio(audio: DecodedAudio, spans: Sequence[RedactedSpan], out_path: str | Path,
                         mode: Literal["silence", "beep"] = "beep", pad_s: float = 0.1) -> Path:
    """Write a 16-bit PCM WAV copy (16 kHz, the source's channels) with the PII spans treated."""
    from scipy.io import wavfile

    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        chans = redact_audio(audio, spans, mode, pad_s)
        data = np.stack(chans, axis=1) if len(chans) > 1 else chans[0]
        pcm = (np.clip(data, -1.0, 1.0) * 32767).astype(np.int16)
        tmp = out_path.with_name(out_path.name + ".part")
        wavfile.write(str(tmp), audio.sample_rate, pcm)
        tmp.replace(out_path)
    except OSError as e:
        raise RedactionError(out_path, f"cannot write the redacted audio copy: {e}") from e
    return out_path


# ------------------------------------------------------------------------------------------------
# the stage as the flow runs it


def options_from_settings(settings: Any) -> RedactionOptions:
    """RedactionOptions from config.settings.RedactionSettings (duck-typed: no config import here)."""
    return RedactionOptions(types=frozenset(settings.types), min_digits=int(settings.min_digits))


def apply_redaction(result: CallResult, settings: Any, audio: DecodedAudio | None = None) -> CallResult:
    """The redact stage: the call as it may be stored, per `settings` (RedactionSettings).

    With redaction on, no raw PII text survives in the returned result; with `settings.audio` set, a
    redacted copy of the audio is written to `settings.audio_dir` and its path recorded in the call's
    metadata (`redacted_audio`), where the HTML report finds it and plays it instead of the original.
    """
    if not settings.enabled:
        return result
    red, spans = redact_call(result, options_from_settings(settings))
    meta = dict(red.source.metadata)
    counts: dict[str, int] = {}
    for s in spans:
        counts[s.type] = counts.get(s.type, 0) + 1
    meta["redaction"] = {"spans": len(spans), "types": counts}
    if settings.audio != "off" and audio is not None:
        out = Path(settings.audio_dir) / f"{Path(result.source.path).stem}.{result.source.call_id[:12]}.redacted.wav"
        write_redacted_audio(audio, spans, out, mode=settings.audio, pad_s=settings.audio_pad_s)
        meta["redacted_audio"] = str(out.resolve())
    return replace(red, source=replace(red.source, metadata=meta))
