"""The customer repeating themselves: a customer sentence that restates one the customer said earlier.

A customer effort cue (issue 19, 费力度: "repeated explanations"). Per call, every customer sentence is
compared with the customer's sentences of earlier turns; it is a restatement (event `customer_repeat`,
evidence: both sentences) when

- an agent turn with words lies between the two: the customer explains again after the agent answered,
  which keeps out a turn split in two by the ASR or by a pause, and Whisper's repetition loops (the same
  text emitted twice in a row);
- both carry enough content: at least `min_content_tokens` words (English) / characters (Mandarin) once
  function words, fillers, politeness, digits and redaction placeholders are dropped ("yes", "thank you
  very much", "okay okay", a number read out twice when the agent asks for it again carry no explanation);
- their content matches: English, rapidfuzz `token_set_ratio` of the two content-word strings (word order
  free, so "like I said, my router keeps dropping the connection" restates "the router keeps dropping the
  connection"), with at least `min_content_tokens` content words shared (fuzzy, per word, 85:
  "droping"/"dropping"), covering 80 % of the shorter sentence's and half of the longer one's; Mandarin,
  the better of `partial_ratio` (the shorter inside the longer) and `ratio` of the two content-character
  strings (Chinese has no spaces to sort), the shorter at least half as long as the longer.

Thresholds (settings `detect.text.customer_repeat`): 85 on both ratios. On the hand-written cases of
tests/test_customer_repeat.py a restatement scores 91-100 and two different requests of one call (the same
bill for another month, another booking) 0-57, or carry too little content to be judged. On the 11
recordings of `callqa eval real` the version without the longer-sentence coverage fired twice, in one
SpokenWOZ booking call, on answers that named the route or the party size again on their way to new
facts; with it, none fire there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from callqa.config.settings import CustomerRepeatSettings
from callqa.pipeline.evidence import quote
from callqa.pipeline.textmatch import canonical_tokens, has_cjk, is_cjk
from callqa.pipeline.types import Event, Utterance, new_event_id

DETECTOR_VERSION = "restate/1"
_WORD_MATCH = 85.0  # rapidfuzz ratio at which two English words count as the same word (ASR spelling)
_SENTENCE_END = re.compile(r"(?<=[.?!。？！；;])\s*|\n+")

# English words that carry no part of what the customer explains: function words, pronouns, fillers,
# politeness, and the discourse markers of restating itself ("as I said", "again", "already")
_EN_STOP = frozenset(
    """a an the and or but if so then than that this these those there here it its is am are was were be been
    being do does did doing have has had having i me my mine myself you your yours we us our they them their he
    him his she her to of in on at for with from by about as into over up down out off just also too very really
    not no yes yeah yep okay ok alright right well oh um uh uhm hmm mm like so sorry please thank thanks hi hello
    bye goodbye sure can could would will should shall may might must what which who whom when where why how all
    any some again already said say saying told tell telling mean meant know see get got go going gonna want
    wanna one still even only now time times make made need looking look hoping hope actually perfect great
    fine good""".split()
)
# Mandarin characters that carry no content: particles, pronouns, copulas, measure words, politeness,
# question words (什么时候能收到退款 / 什么时候能收到发票 differ in two characters of eight), and the markers of
# restating itself (我刚才说过, 已经)
_ZH_STOP = frozenset(
    "的了吗呢吧啊呀哦嗯么嘛我你您他她它们是在就都也还和跟这那个一有没不要请谢好对啦哈喂"
    "什时候怎样为能可以想问下刚才说过已经"
)
_PLACEHOLDER = re.compile(r"\[(?:CARD|PHONE|NATIONAL_ID|EMAIL|DIGITS)\]")  # callqa.pipeline.redact
# share of the shorter sentence's content words the other must have: "charged twice on my October bill"
# and "charged twice on the November bill" share 3 of 4 (0.75) and are two questions, not one restated
_MIN_COVERAGE = 0.8
# ... and of the longer one's: an answer that names the route again on its way to new facts ("leave Norwich
# on Friday, arrive in Cambridge by one", after "a train from Norwich to Cambridge") explains something new
# (SpokenWOZ MUL2195 in `callqa eval real`: two such pairs before this rule, none after)
_MIN_COVERAGE_LONGER = 0.5


@dataclass(frozen=True)
class _Sentence:
    turn: int  # index of the customer's turn among all turns (time order)
    utt: Utterance
    text: str
    content: tuple[str, ...]
    zh: bool


def _content(text: str) -> tuple[tuple[str, ...], bool]:
    toks = [t for t in canonical_tokens(_PLACEHOLDER.sub(" ", text)) if not t.isdigit()]
    zh = has_cjk(toks)
    if zh:
        return tuple(t for t in toks if is_cjk(t) and t not in _ZH_STOP), True
    return tuple(t for t in toks if t not in _EN_STOP and len(t) > 1), False


def _shared_words(a: Sequence[str], b: Sequence[str]) -> int:
    """Words of the shorter found (fuzzily) in the other."""
    short, other = (a, b) if len(a) <= len(b) else (b, a)
    return sum(1 for w in short if any(w == o or fuzz.ratio(w, o) >= _WORD_MATCH for o in other))


def restatement_score(a: str, b: str, settings: CustomerRepeatSettings) -> float | None:
    """How well sentence `b` restates sentence `a` (0-100), or None when either is too short to say."""
    ca, za = _content(a)
    cb, zb = _content(b)
    zh = za or zb
    need = settings.min_content_tokens["zh" if zh else "en"]
    if len(ca) < need or len(cb) < need:
        return None
    if zh:
        short, long_ = sorted(("".join(ca), "".join(cb)), key=len)
        if len(short) < _MIN_COVERAGE_LONGER * len(long_):
            return 0.0
        # partial: the shorter inside the longer (a restatement with more around it); plain ratio: one
        # character more or less in the middle (就是上个月电费扣了两次 / 上个月的电费被扣了两次)
        return float(max(fuzz.partial_ratio(short, long_), fuzz.ratio(short, long_)))
    shared = _shared_words(ca, cb)
    if (
        shared < need
        or shared < _MIN_COVERAGE * min(len(ca), len(cb))
        or shared < _MIN_COVERAGE_LONGER * max(len(ca), len(cb))
    ):
        return 0.0
    return float(fuzz.token_set_ratio(" ".join(ca), " ".join(cb)))


def _sentences(utts: Sequence[Utterance]) -> list[_Sentence]:
    out = []
    for i, u in enumerate(utts):
        if u.role != "customer":
            continue
        for part in _SENTENCE_END.split(u.text):
            part = part.strip()
            if part:
                content, zh = _content(part)
                out.append(_Sentence(i, u, part, content, zh))
    return out


def detect_customer_repeats(
    call_id: str, utterances: Sequence[Utterance], settings: CustomerRepeatSettings
) -> list[Event]:
    """One `customer_repeat` event per customer sentence restating an earlier one (its best match)."""
    if not settings.enabled:
        return []
    utts = sorted(utterances, key=lambda u: (u.start, u.seq))
    agent_turns = [i for i, u in enumerate(utts) if u.role == "agent" and u.text.strip()]
    sents = _sentences(utts)
    events: list[Event] = []
    for j, later in enumerate(sents):
        best: tuple[float, _Sentence] | None = None
        for earlier in sents[:j]:
            if earlier.turn == later.turn or not any(earlier.turn < k < later.turn for k in agent_turns):
                continue
            score = restatement_score(earlier.text, later.text, settings)
            thr = settings.threshold["zh" if earlier.zh or later.zh else "en"]
            if score is not None and score >= thr and (best is None or score > best[0]):
                best = (score, earlier)
        if best is None:
            continue
        score, earlier = best
        u = later.utt
        events.append(
            Event(
                type="customer_repeat",
                start=u.start,
                end=max(u.end, u.start + 0.01),
                speaker=u.speaker,
                role="customer",
                evidence=quote(f"{later.text} (earlier: {earlier.text})", 240),
                confidence=round(score / 100.0, 3),
                detector_version=DETECTOR_VERSION,
                data={
                    "sentence": quote(later.text, 240),
                    "earlier": quote(earlier.text, 240),
                    "earlier_start_s": round(earlier.utt.start, 2),
                    "earlier_utt_seq": earlier.utt.seq,
                    "utt_seq": u.seq,
                    "score": round(score, 1),
                    "method": "partial_ratio" if later.zh or earlier.zh else "token_set_ratio",
                },
                event_id=new_event_id(call_id, "customer_repeat", u.start, u.end, u.speaker, j),
            )
        )
    return events
