"""PII in text: the spans of a transcript line that must not be stored, found by their type.

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

The redact stage (callqa.pipeline.redact) applies these finders to a whole call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from callqa.pipeline.textmatch import EN_DIGIT_WORDS

PII_TYPES: tuple[str, ...] = ("CARD", "PHONE", "NATIONAL_ID", "EMAIL", "DIGITS")


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

_EN_DIGITS = {**EN_DIGIT_WORDS, "o": "0", "nought": "0"}
_ZH_DIGITS = {
    "零": "0",
    "〇": "0",
    "洞": "0",
    "幺": "1",
    "一": "1",
    "壹": "1",
    "二": "2",
    "两": "2",
    "贰": "2",
    "三": "3",
    "叁": "3",
    "四": "4",
    "肆": "4",
    "五": "5",
    "伍": "5",
    "六": "6",
    "陆": "6",
    "七": "7",
    "柒": "7",
    "拐": "7",
    "八": "8",
    "捌": "8",
    "九": "9",
    "玖": "9",
    "勾": "9",
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

_CTX_PHONE = re.compile(
    r"phone|mobile|cell|number to call|call (?:me|you|back)|landline|ring"
    r"|电话|手机|号码|联系方式|座机",
    re.I,
)
_CTX_SSN = re.compile(r"social security|\bssn\b|\bsocial\b", re.I)


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
        if cur and not _SEP_RE.match(text[cur[-1].end : t.start]):
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
    spans: list[PIISpan] = []
    for run in _runs(text, _tokens(text)):
        spans.extend(_run_spans(text, run, opts))
    return spans


def _run_spans(text: str, run: list[_Tok], opts: RedactionOptions) -> list[PIISpan]:
    """The PII spans of one run of digit/letter tokens."""
    spans: list[PIISpan] = []
    syms = _expand(run)
    if not syms:
        return spans
    canon = "".join(s.ch for s in syms)
    taken = [False] * len(syms)
    context = text[max(0, run[0].start - 60) : run[-1].end + 20]

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
        if not any(taken[m.start() : m.end()]) and cn_id_ok(m.group()):
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

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,}(?![\w])"
)
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
        _ni_written_spans(text) if "NATIONAL_ID" in opts.types else []
    )
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


def redact_text(
    text: str, opts: RedactionOptions = RedactionOptions(), known: Iterable[tuple[str, str]] = ()
) -> tuple[str, list[PIISpan]]:
    """`text` with every PII span replaced by its type token. `known` (raw string, token) pairs found
    elsewhere in the call are replaced too: a quote that cut a card number in half must not show the half."""
    spans = find_pii(text, opts)
    out, pos = [], 0
    for s in spans:
        out.append(text[pos : s.start])
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
