"""Run every transcript-based detector (scripts, conduct, hold cues) over a call's utterances.

Matching, per utterance and phrase list, in two layers:

1. **fuzzy**: canonical tokens (case, punctuation, width, contractions, numerals) compared with
   each phrase over word windows (rapidfuzz), and for Mandarin again on toneless pinyin so
   homophone ASR errors still match;
2. **semantic**: each sentence is embedded once (never per word window) and compared with every
   phrase of the speaker's lists, embedded once per worker in the kit. A sentence counts for the
   list of its nearest phrase when the similarity clears the language's threshold and beats the
   nearest phrase of every other list by a margin: the other lists act as contrast, so "what can
   I help you with today" goes to need_discovery, not to further_help_offered.
3. **statement** (solution_explained only): an agent sentence of at least N tokens that is not a
   question or a request and that no other list claimed; explanations are open-ended and mostly
   carry no cue phrase ("the courier says it's at the local depot…"). Confidence 0.5.

Between 2 and 3, rules over the sentence and the turn (callqa.pipeline.detectors.scripts): an
explanation is no question and no announcement of the agent's own next step, an identity check
asks, a hold cue is not followed by a question to the customer, and an offer of help in the
agent's opening is its greeting. A greeting is "formal" (the company or an offer of help) or
informal (a salutation, small talk, a bare name): callers say the latter too, so with the roles
still unknown only a formal one is role evidence. Measured on ../shared/data/QA_TRUTH.yaml with
`callqa eval real`.

Measured on tests/data (hand-labelled transcripts): the semantic layer, at thresholds that keep
precision, adds little over fuzzy matching with rich phrase lists; MiniLM-L6 knows no Mandarin
and USE's Mandarin similarities are dominated by shared characters, so Mandarin relies on
normalisation + fuzzy + pinyin + phrase lists.

`TextDetectorKit` holds what is compiled once per worker: phrase indexes, regexes, the embedding
models and the phrase embeddings. `detect_text_events` is a pure function of the utterances.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from callqa.config.phrases import PHRASE_LISTS, SUPPORTED_LANGUAGES, PhraseBook, load_phrasebook
from callqa.config.settings import DetectSettings, Settings, TextSettings
from callqa.pipeline.detectors import EVENT_TYPES
from callqa.pipeline.detectors.conduct import CONDUCT_DETECTORS, HOLD_CUE_DETECTORS
from callqa.pipeline.detectors.restate import detect_customer_repeats
from callqa.pipeline.detectors.scripts import (
    SCRIPT_DETECTORS,
    TextDetector,
    asks_customer,
    asks_for_details,
    explains,
    greeting_details,
    greeting_is_formal,
)
from callqa.pipeline.detectors.turns import has_negation, join, n_tokens, negated, prepare, resolve_overlaps, sentences
from callqa.pipeline.evidence import quote
from callqa.pipeline.textmatch import PhraseIndex, PhraseMatch, canonical, canonical_tokens, to_simplified
from callqa.pipeline.types import ConfigError, Event, Utterance, new_event_id

if TYPE_CHECKING:  # the models are loaded only when semantic matching is on
    from callqa.models.embeddings import SentenceEmbedder


class EmbedderSource(Protocol):
    """What build_text_kit needs from `models.embeddings.EmbedderPool` (tests pass their own)."""

    def for_language(self, language: str) -> SentenceEmbedder: ...


TEXT_DETECTORS: tuple[TextDetector, ...] = SCRIPT_DETECTORS + CONDUCT_DETECTORS + HOLD_CUE_DETECTORS
_BY_TYPE = {d.type: d for d in TEXT_DETECTORS}
_POSITIONAL = {d.type for d in TEXT_DETECTORS if d.position != "any"}
_MIN_SEMANTIC_TOKENS = 3
_FIRST_TURN_SLACK = 5.0  # fuzzy points the need-discovery phrases lose in the agent's first turn


# --------------------------------------------------------------------------- the kit


@dataclass
class LanguageKit:
    language: str
    book: PhraseBook
    index: PhraseIndex
    name_patterns: list[re.Pattern[str]]
    name_stopwords: frozenset[str]
    company_patterns: list[re.Pattern[str]]
    negations: list[list[str]]  # canonical tokens of each negation cue
    embedder: SentenceEmbedder | None = None
    embedder_name: str | None = None
    phrase_vecs: np.ndarray | None = None  # (n_phrases, dim), rows aligned with phrase_groups
    phrase_groups: np.ndarray | None = None
    phrase_texts: tuple[str, ...] = ()


@dataclass
class TextDetectorKit:
    """Compiled once per worker and shared by every call it processes."""

    settings: TextSettings
    fuzzy_threshold: float
    languages: dict[str, LanguageKit]
    notes: list[str] = field(default_factory=list)  # e.g. why semantic matching is off for a language

    def for_language(self, language: str | None) -> LanguageKit:
        base = (language or "").split("-")[0].lower()
        # a language without its own lists falls back to English rather than detecting nothing
        return self.languages.get(base) or self.languages["en"]

    @property
    def description(self) -> str:
        parts = []
        for lang, lk in sorted(self.languages.items()):
            parts.append(
                f"{lang}: fuzzy{'+pinyin' if lang == 'zh' else ''}"
                + (f"+semantic[{lk.embedder_name}]" if lk.embedder is not None else "")
            )
        return f"{','.join(sorted({d.version for d in TEXT_DETECTORS}))} ({'; '.join(parts)})"


def _check_settings(ts: TextSettings) -> None:
    for key in list(ts.fuzzy_overrides) + list(ts.semantic_events):
        if key not in _BY_TYPE:
            raise ConfigError(None, f"detect.text: {key!r} is not a text event type (have {sorted(_BY_TYPE)})")
    for key in ts.fuzzy_overrides:
        if key not in EVENT_TYPES:  # pragma: no cover - _BY_TYPE is a subset of EVENT_TYPES
            raise ConfigError(None, f"detect.text.fuzzy_overrides: unknown event type {key!r}")


def build_language_kit(
    book: PhraseBook, embedder: SentenceEmbedder | None = None, embedder_name: str | None = None
) -> LanguageKit:
    lists = book.lists()
    index = PhraseIndex.build(lists)
    lk = LanguageKit(
        language=book.language,
        book=book,
        index=index,
        name_patterns=[re.compile(p) for p in book.name_patterns],
        name_stopwords=frozenset(canonical(w) for w in book.name_stopwords),
        company_patterns=[re.compile(p) for p in book.company_patterns],
        negations=[canonical_tokens(n) for n in book.negations if canonical_tokens(n)],
    )
    if embedder is not None:
        texts = [p for name in PHRASE_LISTS for p in lists[name]]
        groups = [name for name in PHRASE_LISTS for _ in lists[name]]
        lk.embedder = embedder
        lk.embedder_name = embedder_name or getattr(embedder, "name", type(embedder).__name__)
        lk.phrase_vecs = embedder.encode(texts)
        lk.phrase_groups = np.asarray(groups)
        lk.phrase_texts = tuple(texts)
    return lk


def build_text_kit(
    settings: Settings | DetectSettings | None = None,
    *,
    phrasebooks: dict[str, PhraseBook] | None = None,
    embedders: EmbedderSource | None = None,
    cache_dir: Path | str | None = None,
    embeddings_model: str | None = None,
    hf_token: str | None = None,
) -> TextDetectorKit:
    """Compile phrase lists and load/embed with the sentence-embedding models (once per worker).

    `embedders`: an `EmbedderPool` (or anything with `for_language(lang)`); by default one is made
    from `models.embeddings` and `models.cache_dir`. A language whose model cannot be loaded runs
    fuzzy-only, and `notes` says why.
    """
    if isinstance(settings, Settings):
        det = settings.detect
        cache_dir = cache_dir or settings.models.cache_dir
        embeddings_model = embeddings_model or settings.models.embeddings
        hf_token = hf_token or settings.models.hf_token
    else:
        det = settings or DetectSettings()
    ts = det.text
    _check_settings(ts)
    books = phrasebooks or {lang: load_phrasebook(lang) for lang in SUPPORTED_LANGUAGES}
    notes: list[str] = []
    if ts.semantic and embedders is None:
        from callqa.models.embeddings import EmbedderPool

        embedders = EmbedderPool(embeddings_model, Path(cache_dir or Path.home() / ".cache" / "callqa"), hf_token)
    languages: dict[str, LanguageKit] = {}
    for lang, book in books.items():
        emb = None
        if ts.semantic and embedders is not None:
            from callqa.pipeline.types import ModelUnavailable

            try:
                emb = embedders.for_language(lang)
            except ModelUnavailable as e:
                notes.append(f"{lang}: semantic matching off, fuzzy only ({e})")
        languages[lang] = build_language_kit(book, emb)
    if "en" not in languages:
        raise ConfigError(None, "the text detectors need an English phrase list (the fallback language)")
    return TextDetectorKit(ts, det.fuzzy_threshold, languages, notes)


# --------------------------------------------------------------------------- per call


def _applicable(det: TextDetector, role: str) -> bool:
    return role == det.role or role == "unknown"


def detect_text_events(
    call_id: str, utterances: Sequence[Utterance], language: str | None, kit: TextDetectorKit
) -> list[Event]:
    """All script, conduct and hold-cue events of one call, in time order.

    `kit`: built once per worker (`build_text_kit`; the worker's Toolkit holds it), never per call:
    building one loads the embedding models and embeds every phrase.
    """
    ts = kit.settings
    utts = [prepare(u) for u in sorted(utterances, key=lambda u: (u.start, u.seq))]
    # each turn with its own language's lists (callqa.pipeline.writing.tag_languages: a code-switched
    # call's English greeting and Mandarin conversation); positions are the call's, over all turns
    lks = [kit.for_language(u.utt.language or language) for u in utts]

    # Where the opening and the closing can be: the agent's first and last turns (every turn
    # counts as the agent's when roles are unknown, e.g. a mono call without diarization).
    agentish = [i for i, u in enumerate(utts) if u.utt.role == "agent" and u.toks]
    if not agentish:
        agentish = [i for i, u in enumerate(utts) if u.utt.role == "unknown" and u.toks]
    opening = {i for i in agentish[: ts.opening_turns] if utts[i].utt.start <= ts.opening_window_s}
    closing = {i for i in agentish[-ts.closing_turns :] if i not in opening}

    def position_ok(det: TextDetector, i: int) -> bool:
        return (
            det.position == "any"
            or (det.position == "opening" and i in opening)
            or (det.position == "closing" and i in closing)
        )

    def thresholds_for(lang: str) -> dict[str, float]:
        base_thr = ts.fuzzy_threshold_by_language.get(lang, kit.fuzzy_threshold)
        return {d.type: ts.fuzzy_overrides.get(d.type, base_thr) for d in TEXT_DETECTORS}

    by_lang = {lk.language: thresholds_for(lk.language) for lk in lks}

    # (utterance index, type) -> (match info, word range, score, method)
    found: dict[tuple[int, str], tuple[str, str, int, int, float, str]] = {}

    # 1. fuzzy / pinyin over word windows
    for i, u in enumerate(utts):
        if not u.toks:
            continue
        # every list the speaker may say competes for the words (position is applied after the
        # contrast: "thank you for calling" mid-call is still not "thank you for waiting")
        groups = {d.type for d in TEXT_DETECTORS if _applicable(d, u.utt.role)}
        if not groups:
            continue
        lk, thresholds = lks[i], by_lang[lks[i].language]
        floor = min(thresholds.values())
        kept: list[PhraseMatch] = []
        # an offer of help is expected in the agent's first turn, so there its wording may be a little
        # further from the phrase: Whisper garbles a turn's first words on mono mixes ("how can I help
        # you today" heard as "...how and I help you today")
        slack = _FIRST_TURN_SLACK if agentish and i == agentish[0] else 0.0
        for typ, m in lk.index.match(
            u.toks, floor - slack, groups=groups, pinyin_threshold=max(floor, ts.pinyin_threshold)
        ).items():
            thr = thresholds[typ] if m.method == "fuzzy" else max(thresholds[typ], ts.pinyin_threshold)
            thr -= slack if typ == "need_discovery" else 0.0
            if m.score < thr:
                continue
            if _BY_TYPE[typ].negatable and negated(lk.negations, u.toks, m):
                continue
            kept.append(m)
        for m in resolve_overlaps(kept, _POSITIONAL):
            if not position_ok(_BY_TYPE[m.group], i):
                continue
            found[(i, m.group)] = (
                m.phrase,
                m.matched,
                u.owner[m.first_token],
                u.owner[m.last_token] + 1,
                m.score / 100.0,
                m.method,
            )

    # 2. semantic: every sentence embedded once, compared with all phrases of the speaker's lists
    sem_types = set(ts.semantic_events)
    for lk in {id(x): x for x in lks}.values():
        if lk.embedder is None or not sem_types:
            continue
        sents: list[tuple[int, int, int]] = []
        for i, u in enumerate(utts):
            if lks[i] is not lk or not u.toks or not any(_applicable(_BY_TYPE[t], u.utt.role) for t in sem_types):
                continue
            # "Okay." "Yes." carry no script and only ever land near some phrase by chance
            sents.extend((i, a, b) for a, b in sentences(u) if n_tokens(u, a, b) >= _MIN_SEMANTIC_TOKENS)
        if sents:
            assert lk.phrase_vecs is not None and lk.phrase_groups is not None  # build_language_kit sets all three
            vecs = lk.embedder.encode([to_simplified(join(utts[i].words[a:b])) for i, a, b in sents])
            sims = vecs @ lk.phrase_vecs.T
            groups_arr = lk.phrase_groups
            thr = ts.semantic_threshold.get(lk.language, max(ts.semantic_threshold.values(), default=0.8))
            masks: dict[str, np.ndarray] = {}
            for (i, a, b), row in zip(sents, sims):
                role = utts[i].utt.role
                if role not in masks:
                    masks[role] = np.array([_applicable(_BY_TYPE[g], role) for g in groups_arr])
                allowed = masks[role]
                if not allowed.any():
                    continue
                scores = np.where(allowed, row, -np.inf)
                j = int(scores.argmax())
                best, typ = float(scores[j]), str(groups_arr[j])
                if best < thr or typ not in sem_types or not position_ok(_BY_TYPE[typ], i):
                    continue
                other = scores[(groups_arr != typ) & allowed]
                if other.size and best - float(other.max()) < ts.semantic_margin:
                    continue
                if (i, typ) in found:
                    continue  # the wording matched already: keep the fuzzy evidence
                if _BY_TYPE[typ].negatable and has_negation(
                    lks[i].negations, [t for w in utts[i].words[a:b] for t in canonical_tokens(w.text)]
                ):
                    continue  # "I'm not complaining, just asking": the sentence is close in meaning, not in intent
                found[(i, typ)] = (lk.phrase_texts[j], join(utts[i].words[a:b]), a, b, best, "semantic")

    # 2b. sentence form and turn position (the rules are in callqa.pipeline.detectors.scripts)
    for (i, typ), v in list(found.items()):
        sa, sb = next(((sa, sb) for sa, sb in sentences(utts[i]) if sa <= v[2] < sb), (v[2], v[3]))
        # the sentence without what other detectors claimed: "已经给您退订成功了 还有其他问题吗" is an
        # explanation followed by an offer of further help, not a question
        others = [(w[2], w[3]) for (k, t), w in found.items() if k == i and t != typ]
        sentence = join([w for j, w in enumerate(utts[i].words[sa:sb], sa) if not any(c <= j < d for c, d in others)])
        if (
            (typ == "solution_explained" and not explains(sentence))
            or (typ == "identity_verification" and not asks_for_details(v[0], sentence))
            or (typ == "hold_announced" and asks_customer(join(utts[i].words[v[3] : max(sb, v[3])])))
        ):
            del found[(i, typ)]
    # an offer of help in an opening turn opens the call even without a salutation ("Service
    # desk, how can I help?"); the agent's greeting is then that offer
    for i in sorted(opening):
        same = [k for k in opening if utts[k].utt.speaker == utts[i].utt.speaker]
        if (i, "need_discovery") in found and not any((k, "greeting") in found for k in same):
            found[(i, "greeting")] = found[(i, "need_discovery")][:5] + ("opening-offer",)

    def greeting_info(i: int) -> tuple[bool, list]:
        """(formal?, details) of a greeting in turn i, read over its speaker's opening turns."""
        same = [k for k in sorted(opening | {i}) if utts[k].utt.speaker == utts[i].utt.speaker]
        details = [
            greeting_details(
                utts[k].utt.text,
                lks[k].name_patterns,
                lks[k].name_stopwords,
                lks[k].company_patterns,
                ts.company_names,
            )
            for k in same
        ]
        return greeting_is_formal(details, any((k, "need_discovery") in found for k in same)), details

    # one greeting per call: the first formal one, else the first informal one (a caller's "hello"
    # must not stand for the call's greeting when the agent's "thanks for calling" follows it). With
    # two voices and no roles yet (role evidence), an informal one tells nothing about who the agent is.
    greetings = {k: greeting_info(k) for k, t in sorted(found) if t == "greeting"}
    unattributed = len({u.utt.speaker for u in utts if u.toks}) > 1 and all(u.utt.role == "unknown" for u in utts)
    greeting_at = next(
        (k for k, (formal, _d) in greetings.items() if formal), None if unattributed else next(iter(greetings), None)
    )

    # 3. explanations without a cue phrase: a long agent statement (not a question) that no other
    # detector claimed is, in a service call, the agent explaining the cause or the fix
    for i, u in enumerate(utts):
        min_stmt = ts.statement_min_tokens.get(lks[i].language)
        if min_stmt:
            if (
                not u.toks
                or i in opening
                or (i, "solution_explained") in found
                or not _applicable(_BY_TYPE["solution_explained"], u.utt.role)
            ):
                continue
            claimed = [(v[2], v[3]) for (k, _t), v in found.items() if k == i]
            # sentences around these cues are about the wait or the goodbye, not the customer's issue
            not_explaining = [
                (v[2], v[3])
                for (k, t), v in found.items()
                if k == i and t in ("hold_announced", "closing", "satisfaction_check", "greeting")
            ]
            for a, b in sentences(u):
                # "I'm going to put you on hold for a moment while I look into it", "Lovely, enjoy
                # your trip and have a lovely evening, goodbye": no explanation in the rest either
                if any(ca < b and cb > a for ca, cb in not_explaining):
                    continue
                # the longest stretch no detector claimed: "让您久等了，<explanation>", "<explanation>，
                # 这种问题别打电话了", "非常理解您的心情，<explanation>，您看可以接受吗？" all keep the explanation
                stretches, pos = [], a
                for ca, cb in sorted((max(ca, a), min(cb, b)) for ca, cb in claimed if ca < b and cb > a):
                    if ca > pos:
                        stretches.append((pos, ca))
                    pos = max(pos, cb)
                if pos < b:
                    stretches.append((pos, b))
                if not stretches:
                    continue
                fa, fb = max(stretches, key=lambda st: n_tokens(u, *st))
                text = join(u.words[fa:fb])
                # a question, a request for information (麻烦您提供一下…) or the agent's own next step
                if not explains(text) or n_tokens(u, fa, fb) < min_stmt:
                    continue
                found[(i, "solution_explained")] = ("(statement)", text, fa, fb, 0.5, "statement")
                break

    # 4. events; greeting and closing once per call (the first opening, the last closing)
    events: list[Event] = []
    once_done: set[str] = set()
    order = sorted(found.items(), key=lambda kv: kv[0][0])
    for (i, typ), (phrase, matched, a, b, score, method) in order:
        det = _BY_TYPE[typ]
        if det.once and typ == "closing" and any(k[1] == typ and k[0] > i for k in found):
            continue
        if (det.once and typ in once_done) or (typ == "greeting" and i != greeting_at):
            continue
        once_done.add(typ)
        u = utts[i]
        words = u.words[a:b]
        start = words[0].start
        end = max(words[-1].end, start + 0.01)
        sent = next(((sa, sb) for sa, sb in sentences(u) if sa <= a < sb), (a, b))
        evidence = quote(join(u.words[sent[0] : max(sent[1], b)]), 240) or matched or phrase
        data: dict = {
            "phrase": phrase,
            "matched": matched,
            "score": round(score, 3),
            "method": method,
            "utt_seq": u.utt.seq,
        }
        if typ == "greeting":
            # the name and the company may come in either of the opening turns ("Acme Energy." /
            # "Hi, Sarah speaking"); each turn is read on its own so patterns anchored at a turn's end work
            formal, details = greetings[i]
            name = next((d.name for d in details if d.has_name), None)
            company = next((d.company for d in details if d.has_company), None)
            data.update(
                has_name=name is not None,
                agent_name=name,
                has_company=company is not None,
                company=company,
                formal=formal,
            )
            # an informal opening says less about who the agent is (role evidence weighs by confidence)
            score = score if formal else 0.5 * score
        events.append(
            Event(
                type=typ,
                start=start,
                end=end,
                speaker=u.utt.speaker,
                role=u.utt.role,
                evidence=evidence,
                confidence=round(min(1.0, score), 3),
                detector_version=det.version,
                data=data,
                event_id=new_event_id(call_id, typ, start, end, u.utt.speaker),
            )
        )
    # the customer repeating themselves: sentence pairs, not phrase lists (callqa.pipeline.detectors.restate)
    events += detect_customer_repeats(call_id, [u.utt for u in utts], ts.customer_repeat)
    events.sort(key=lambda e: (e.start, e.type))
    return events
