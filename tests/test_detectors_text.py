"""Text detectors (scripts, conduct, hold cues) on labelled transcripts and on targeted lines."""

from __future__ import annotations

import pytest

from callqa.config.phrases import PHRASE_LISTS, PhraseBook, load_phrasebook
from callqa.config.settings import DetectSettings, load_settings
from callqa.evaluation.metrics import evaluate_text_detectors, load_text_dataset
from callqa.pipeline.detectors import EVENT_TYPES
from callqa.pipeline.detectors.text import TEXT_DETECTORS, build_text_kit, detect_text_events
from callqa.pipeline.types import ConfigError, Utterance, Word


@pytest.fixture(scope="module")
def fuzzy_kit():
    """The same detectors without the embedding models (what role evidence uses)."""
    det = DetectSettings()
    return build_text_kit(det.model_copy(update={"text": det.text.model_copy(update={"semantic": False})}))


def utt(seq: int, role: str, text: str, start: float, dur: float | None = None, words: bool = True) -> Utterance:
    """A turn with evenly spaced words (CJK: one word per two characters, as Whisper splits it)."""
    if any("\u4e00" <= c <= "\u9fff" for c in text):
        pieces = [text[i : i + 2] for i in range(0, len(text), 2)]
    else:
        pieces = text.split()
    dur = dur or 0.3 * len(pieces)
    step = dur / len(pieces)
    ws = [
        Word(start + i * step, start + (i + 1) * step, p, 0.9, 0 if role == "agent" else 1)
        for i, p in enumerate(pieces)
    ]
    speaker = {"agent": "ch0", "customer": "ch1"}.get(role, "spk0")
    return Utterance(seq, speaker, start, start + dur, text, ws if words else [], role=role)


def types_of(events, role=None):
    return sorted({e.type for e in events if role is None or e.role == role})


# --------------------------------------------------------------------------- labelled sets


@pytest.fixture(scope="module")
def reports(text_kit):
    return {lang: evaluate_text_detectors(lang, text_kit) for lang in ("zh", "en")}


def test_datasets_are_big_enough_and_cover_every_detector():
    for lang, min_calls in (("zh", 20), ("en", 20)):
        calls = load_text_dataset(lang)
        assert len(calls) >= min_calls
        labelled = {lb.type for c in calls for lb in c.labels}
        assert labelled == {d.type for d in TEXT_DETECTORS}, f"{lang}: detectors without positives"
        for d in TEXT_DETECTORS:  # and negatives: calls where the event must not appear
            assert any(all(lb.type != d.type for lb in c.labels) for c in calls), f"{lang}: {d.type} in every call"
        assert all(w.end >= w.start for c in calls for u in c.utterances for w in u.words)


# The labelled-set evaluation embeds every sentence of ~50 calls (~25 s of CPU); the unit tests below
# keep the text detectors, semantic matching included, in the quick subset.
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_precision_and_recall_per_detector(reports, lang):
    rep = reports[lang]
    print(f"\n{lang}: {rep.n_calls} calls, detect {rep.detect_s:.2f} s for {rep.audio_s:.0f} s of calls")
    low = []
    for name, s in sorted(rep.scores.items()):
        print(f"  {name:<24} P={s.precision:.2f} R={s.recall:.2f} (tp {s.tp} fp {s.fp} fn {s.fn})")
        # Measured shortfall, kept visible rather than tuned away: English implicit complaints
        # ("It's flooding the street!") carry no marker phrase (11/13 on this hand-written set; the
        # synthesised audio set of `callqa eval detectors` finds 20/20).
        floor_r = {("en", "complaint"): 0.8}.get((lang, name), 0.9)
        if s.precision < 0.9 or s.recall < floor_r:
            low.append(name)
    assert not low, f"{lang}: below target: {low}\n" + "\n".join(rep.errors)


# --------------------------------------------------------------------------- behaviour


def test_roles_decide_who_may_say_what(fuzzy_kit):
    calls = [
        utt(0, "agent", "您好，欢迎致电招商银行，请问有什么可以帮您？", 0.5),
        utt(1, "customer", "你好，请稍等，我找一下卡。", 6.0),  # a customer's "please hold" is not a hold
        utt(2, "agent", "您的投诉我们已经受理了。", 10.0),  # the agent saying 投诉 is not an escalation
        utt(3, "customer", "我要投诉，找你们领导。", 14.0),
    ]
    ev = detect_text_events("c1", calls, "zh", fuzzy_kit)
    assert not [e for e in ev if e.type == "hold_announced"]
    esc = [e for e in ev if e.type == "escalation_request"]
    assert len(esc) == 1 and esc[0].role == "customer" and esc[0].data["utt_seq"] == 3


def test_greeting_details_name_and_company(text_kit, fuzzy_kit):
    zh = [
        utt(0, "agent", "您好，欢迎致电招商银行，工号一二三四五，请问有什么可以帮您？", 0.4),
        utt(1, "customer", "你好。", 8.0),
    ]
    g = [e for e in detect_text_events("c", zh, "zh", fuzzy_kit) if e.type == "greeting"]
    assert len(g) == 1 and g[0].data["has_name"] and g[0].data["has_company"]
    assert 0.4 <= g[0].start < g[0].end < 3.0 and g[0].evidence.startswith("您好")

    en = [utt(0, "agent", "Thanks for calling Brightline, you're speaking with Daniel, what can I do for you?", 0.5)]
    g = [e for e in detect_text_events("c", en, "en", text_kit) if e.type == "greeting"][0]
    assert g.data["has_name"] and g.data["agent_name"] == "daniel" and g.data["has_company"]

    bare = [utt(0, "agent", "Good morning, how can I help you?", 0.5)]
    g = [e for e in detect_text_events("c", bare, "en", fuzzy_kit) if e.type == "greeting"][0]
    assert not g.data["has_name"] and not g.data["has_company"]

    # configured brand names are matched fuzzily, even when ASR garbles them a little
    det = DetectSettings()
    kit = build_text_kit(
        det.model_copy(
            update={"text": det.text.model_copy(update={"semantic": False, "company_names": ["Acme Energy"]})}
        )
    )
    named = [utt(0, "agent", "Hello, this is Acme Energie, Sarah speaking.", 0.5)]
    g = [e for e in detect_text_events("c", named, "en", kit) if e.type == "greeting"][0]
    assert g.data["company"] == "Acme Energy" and g.data["agent_name"] == "sarah"


def test_garbled_name_before_speaking_is_still_a_self_introduction():
    # measured on the labelled calls: Whisper base heard "Emma speaking" as "I'm a speaking"
    from callqa.config.settings import DetectSettings
    from callqa.pipeline.detectors.scripts import greeting_details

    kit = build_text_kit(
        DetectSettings().model_copy(update={"text": DetectSettings().text.model_copy(update={"semantic": False})})
    )
    lk = kit.for_language("en")

    def got(t):
        return greeting_details(t, lk.name_patterns, lk.name_stopwords, lk.company_patterns, [])

    assert got("Hi there, you've reached Parcelway customer support. I'm a speaking.").has_name
    assert got("You've reached CitiWater Customer Support. Pre -A speaking.").has_name
    assert not got("Hello, you're speaking with a specialist today.").has_name
    assert got("Good morning, Daniel speaking.").name == "daniel"


def test_greeting_opens_and_closing_closes(fuzzy_kit):
    calls = [
        utt(0, "agent", "Thank you for calling Acme, my name is Sarah.", 0.5),
        utt(1, "customer", "Hi, I need to check my balance.", 4.0),
        utt(2, "agent", "Your balance is forty pounds.", 7.0),
        utt(3, "customer", "Great, thanks.", 10.0),
        utt(4, "agent", "Thank you for calling, goodbye.", 12.0),
    ]
    ev = detect_text_events("c", calls, "en", fuzzy_kit)
    greet = [e for e in ev if e.type == "greeting"]
    close = [e for e in ev if e.type == "closing"]
    assert [e.data["utt_seq"] for e in greet] == [0] and [e.data["utt_seq"] for e in close] == [4]
    # no greeting when the agent never greets
    rude = [utt(0, "agent", "Yeah, account number?", 0.5), utt(1, "customer", "One two three.", 3.0)]
    assert "greeting" not in types_of(detect_text_events("c", rude, "en", fuzzy_kit))


def test_negated_complaints_are_not_complaints(text_kit):
    zh = [
        utt(0, "agent", "您好，请问有什么可以帮您？", 0.5),
        utt(1, "customer", "我不是要投诉啊，就是想问问额度。", 4.0),
    ]
    assert "escalation_request" not in types_of(detect_text_events("c", zh, "zh", text_kit))
    en = [
        utt(0, "agent", "Hello, how can I help?", 0.5),
        utt(1, "customer", "I don't want to make a complaint, I just want to understand why.", 3.0),
        utt(2, "customer", "I'm not complaining, just wondering if there's a problem.", 9.0),
    ]
    assert not {"escalation_request", "complaint"} & set(types_of(detect_text_events("c", en, "en", text_kit)))
    en[1] = utt(1, "customer", "I want to make a complaint about this.", 3.0)
    assert "escalation_request" in types_of(detect_text_events("c", en, "en", text_kit))


def test_polite_lines_one_word_from_a_forbidden_phrase_are_not_forbidden(text_kit):
    # found on the demo call: "That's no problem." matched "that is not my problem" at 90 and auto-failed it
    polite = [utt(0, "agent", "That's no problem.", 1.0), utt(1, "agent", "Young people often ask us that.", 4.0)]
    assert "forbidden_phrase" not in types_of(detect_text_events("c", polite, "en", text_kit))
    rude = [utt(0, "agent", "That's not my problem.", 1.0), utt(1, "agent", "You people never listen.", 4.0)]
    got = [e for e in detect_text_events("c", rude, "en", text_kit) if e.type == "forbidden_phrase"]
    assert [e.data["utt_seq"] for e in got] == [0, 1]


def test_asr_noise_homophones_traditional_and_no_punctuation(fuzzy_kit):
    calls = [
        utt(0, "agent", "您号欢迎至电中国移动我是幺零零八六号客服", 0.5),  # 您号/至电: homophones of 您好/致电
        utt(1, "agent", "好的我帮您查询一下請您稍候", 6.0),  # Traditional characters from Whisper
        utt(2, "agent", "感谢您的耐新等待", 40.0),  # 耐新 for 耐心
        utt(3, "agent", "还有其他问题吗", 50.0),
    ]
    ev = detect_text_events("c", calls, "zh", fuzzy_kit)
    by = {e.type: e for e in ev}
    assert {"greeting", "hold_announced", "hold_thanked", "further_help_offered"} <= set(by)
    assert by["greeting"].data["has_name"] and by["greeting"].data["has_company"]
    assert by["hold_thanked"].data["method"] == "pinyin"
    # evidence times come from the matched words, inside the turn
    h = by["hold_announced"]
    assert 6.0 < h.start < h.end <= calls[1].end and h.end - h.start < calls[1].end - calls[1].start


def test_further_help_is_not_need_discovery(fuzzy_kit):
    # one character apart: 请问有什么可以帮您 (opening) vs 还有什么可以帮您 (before closing)
    calls = [
        utt(0, "agent", "您好，请问有什么可以帮您？", 0.5),
        utt(1, "customer", "查话费。", 4.0),
        utt(2, "agent", "好的，还有什么可以帮您？", 8.0),
    ]
    ev = detect_text_events("c", calls, "zh", fuzzy_kit)
    assert [(e.type, e.data["utt_seq"]) for e in ev if e.type in ("need_discovery", "further_help_offered")] == [
        ("need_discovery", 0),
        ("further_help_offered", 2),
    ]


def test_semantic_matching_finds_paraphrases(text_kit, fuzzy_kit):
    lines = [
        ("agent", "Would you mind holding for a couple of minutes?", "hold_announced"),
        ("customer", "I wish to lodge an official complaint.", "escalation_request"),
        ("customer", "Get me someone senior, now.", "escalation_request"),
    ]
    for role, text, typ in lines:
        calls = [
            utt(0, "agent", "Hello.", 0.5),
            utt(1, "customer", "Hi.", 2.0),
            utt(2, role, text, 4.0),
            utt(3, "agent", "Okay.", 9.0),
        ]
        sem = [e for e in detect_text_events("c", calls, "en", text_kit) if e.type == typ]
        assert sem and sem[0].data["method"] == "semantic" and sem[0].confidence >= 0.7, text
        assert not [e for e in detect_text_events("c", calls, "en", fuzzy_kit) if e.type == typ], text
    # unrelated small talk stays quiet (the agent's opening "Hello." is its greeting, an informal one)
    chat = [utt(0, "agent", "Hello.", 0.5), utt(1, "customer", "The weather has been lovely this week.", 2.0)]
    got = detect_text_events("c", chat, "en", text_kit)
    assert [(e.type, e.data["formal"]) for e in got] == [("greeting", False)]


def test_mono_unknown_roles_and_turns_without_word_timings(fuzzy_kit):
    calls = [
        utt(0, "unknown", "Thank you for calling Acme, my name is Sarah, how can I help you?", 0.0, words=False),
        utt(1, "unknown", "I want to speak to a manager.", 5.0, words=False),
    ]
    ev = detect_text_events("c", calls, "en", fuzzy_kit)
    assert {"greeting", "need_discovery", "escalation_request"} <= set(types_of(ev))
    assert all(e.role == "unknown" and e.end > e.start and e.evidence for e in ev)


def test_events_use_the_shared_vocabulary_and_stable_ids(fuzzy_kit):
    calls = load_text_dataset("zh")[:3]
    for c in calls:
        a = detect_text_events(c.call_id, c.utterances, c.language, fuzzy_kit)
        b = detect_text_events(c.call_id, c.utterances, c.language, fuzzy_kit)
        assert a and {e.type for e in a} <= EVENT_TYPES
        assert [e.event_id for e in a] == [e.event_id for e in b]
        assert all(e.evidence.strip() and 0 < e.confidence <= 1 for e in a)
    assert set(PHRASE_LISTS) == {d.type for d in TEXT_DETECTORS}


def test_bad_settings_and_phrase_lists_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="not a text event type"):
        build_text_kit(
            load_settings(overrides={"detect": {"text": {"semantic": False, "semantic_events": ["greting"]}}})
        )
    with pytest.raises(ConfigError):
        load_settings(overrides={"detect": {"text": {"semantic_thresholds": {"en": 0.5}}}})  # typo: extra=forbid
    bad = tmp_path / "zh.yaml"
    bad.write_text("language: zh\nempathy: [非常抱歉]\nforbidden_phrase: [非常抱歉]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="both"):
        load_phrasebook("zh", bad)
    bad.write_text("language: zh\nname_patterns: ['工号(']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="regular expression"):
        load_phrasebook("zh", bad)
    bad.write_text("language: zh\ngreting: [您好]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="greting"):
        load_phrasebook("zh", bad)
    assert isinstance(load_phrasebook("zh-CN"), PhraseBook)


def test_eval_command_interface(fuzzy_kit):
    """The shape `callqa eval detectors` tallies (evaluation.detectors.run_mandarin)."""
    from callqa.evaluation.text import evaluate_language

    res = evaluate_language("zh", kit=fuzzy_kit)
    assert res["n_calls"] >= 20 and res["audio_s"] > 600 and res["detect_s"] > 0
    row = res["detectors"]["hold_thanked"]
    assert row["n_label"] >= row["tp_label"] > 0 and row["n_pred"] >= row["tp_pred"] > 0
    assert {d.type for d in TEXT_DETECTORS} <= set(res["detectors"])


# --------------------------------------------------------------------------- how real agents speak
# Hand-written lines in the registers of real calls (human agents, non-native speakers, ASR
# garbling), each checked in the place it is said, with negatives that must stay quiet.


def _call_around(line: str, where: str) -> list[Utterance]:
    """A short call with `line` as the agent's opening, a middle turn, or the agent's last turn."""
    opening = (
        [utt(0, "agent", line, 0.5)]
        if where == "opening"
        else [utt(0, "agent", "Thank you for calling Acme Energy, how can I help?", 0.5)]
    )
    # the middle line is the agent's third turn: the first two are the opening's
    middle = [
        utt(1, "customer", "Hi, I have a question about my last bill.", 4.0),
        utt(2, "agent", "Sure.", 7.0),
        utt(3, "customer", "It's much higher than usual.", 8.0),
    ]
    if where == "middle":
        middle += [utt(4, "agent", line, 11.0), utt(5, "customer", "Okay, sure.", 18.0)]
    ending = [
        utt(6, "agent", "Your bill was estimated, the new one will use your reading.", 22.0),
        utt(7, "customer", "Right, thanks.", 28.0),
    ]
    ending += [utt(8, "agent", line, 32.0)] if where == "closing" else [utt(8, "agent", "Goodbye.", 32.0)]
    return opening + middle + ending


REAL_STYLE_LINES = [
    # informal and partial openings
    ("opening", "Customer service, this is Maria, how can I help you?", "greeting", True),
    ("opening", "Billing department, Tom speaking.", "greeting", True),
    ("opening", "Hi, how are you doing today?", "greeting", True),
    ("opening", "Hello, you're through to the help desk.", "greeting", True),
    ("opening", "Technical support, how may I help?", "greeting", True),
    ("opening", "Hey, it's Jake from the service team.", "greeting", True),
    ("opening", "Thank you for call in Acme Energy, Lucy speaking.", "greeting", True),  # ASR
    ("opening", "Yeah, go ahead.", "greeting", False),
    ("opening", "Account number?", "greeting", False),
    ("opening", "Skyway Mobile.", "greeting", False),
    # closings of every register
    ("closing", "Alright, you have a good one.", "closing", True),
    ("closing", "Take care now, bye.", "closing", True),
    ("closing", "Okay. Bye -bye.", "closing", True),  # Whisper's "bye-bye"
    ("closing", "You're welcome, have a great weekend.", "closing", True),
    ("closing", "Thank you so much for calling us today.", "closing", True),
    ("closing", "We look forward to seeing you on Friday.", "closing", True),
    ("closing", "sure no problem thank you for your calling", "closing", True),  # non-native
    ("closing", "Okay, I've sent that over to you now.", "closing", False),
    # identity checks asked as questions about who the caller is
    ("middle", "May I have your full name, please?", "identity_verification", True),
    ("middle", "Could I get your first and last name?", "identity_verification", True),
    (
        "middle",
        "And for verification, do you happen to know the date you bought the car?",
        "identity_verification",
        True,
    ),
    ("middle", "Can I get your member number?", "identity_verification", True),
    ("middle", "and could i please have your id number", "identity_verification", True),
    ("middle", "I've updated your email address.", "identity_verification", False),
    ("middle", "What's the make and model of the car?", "identity_verification", False),
    ("middle", "Your account number is at the top of the letter.", "identity_verification", False),
    # holds announced without the word "hold"
    ("middle", "Let me check that for you.", "hold_announced", True),
    ("middle", "Bear with me one moment.", "hold_announced", True),
    ("middle", "Just a minute, I'll look it up.", "hold_announced", True),
    ("middle", "right i will check that for you hold on one second", "hold_announced", True),
    ("middle", "Give me one second here.", "hold_announced", True),
    ("middle", "Wait a second, I'm pulling up your account.", "hold_announced", True),
    ("middle", "I'm looking that up for you now. It won't take long.", "hold_announced", True),
    ("middle", "May I place you on a brief hold while I check what's available?", "hold_announced", True),
    ("middle", "Let me check that for you. Could you hold for a moment?", "hold_announced", True),
    ("middle", "Let me check, can you confirm the first line of your address?", "hold_announced", False),
    ("middle", "Let me know if that works for you.", "hold_announced", False),
    ("middle", "Would you mind if I put you on a short hold while I set up the transfer?", "hold_announced", True),
    ("middle", "Press and hold the two buttons for ten seconds.", "hold_announced", False),
    ("middle", "Can you hold both buttons down for me?", "hold_announced", False),
    # thanks for holding inside the agent's next, longer turn
    (
        "middle",
        "Thank you for waiting. I've checked with the warehouse and your parcel left this morning, "
        "so it should be with you tomorrow.",
        "hold_thanked",
        True,
    ),
    ("middle", "Thanks so much for holding, I have the answer now.", "hold_thanked", True),
    ("middle", "Sorry about the wait, I found your booking.", "hold_thanked", True),
    ("middle", "Thanks for letting me know.", "hold_thanked", False),
    # need discovery without the script
    ("middle", "So what brings you in today?", "need_discovery", True),
    ("opening", "Switchboard, how may I direct your call?", "need_discovery", True),
    # explanations: small talk, questions and the agent's own next step are none
    (
        "middle",
        "This may sound like an odd question, because the van is new, but how many miles has it done so far?",
        "solution_explained",
        False,
    ),
    (
        "middle",
        "Let me just dig through these papers here and see if I can find their number.",
        "solution_explained",
        False,
    ),
    ("middle", "Let's see what we can do.", "solution_explained", False),
    (
        "middle",
        "The warranty doesn't cover oil changes, so you'd need to use our partner garage.",
        "solution_explained",
        True,
    ),
]


@pytest.mark.parametrize(
    "where,line,typ,present", REAL_STYLE_LINES, ids=[f"{t}:{line[:40]}" for _w, line, t, _p in REAL_STYLE_LINES]
)
def test_real_agent_wording(text_kit, where, line, typ, present):
    calls = _call_around(line, where)
    seq = {"opening": 0, "middle": 4, "closing": 8}[where]
    got = [e for e in detect_text_events("c", calls, "en", text_kit) if e.type == typ and e.data["utt_seq"] == seq]
    assert bool(got) == present, [(e.type, e.data["method"], e.evidence) for e in got]


def test_a_customer_saying_agent_lines_is_not_the_agent(text_kit):
    calls = [
        utt(0, "agent", "Hi, Acme, how can I help?", 0.5),
        utt(1, "customer", "Hello, how are you? Can I help you with the address? Let me check.", 4.0),
        utt(2, "agent", "Sure.", 10.0),
        utt(3, "customer", "Thanks, have a good one, bye.", 14.0),
    ]
    ev = detect_text_events("c", calls, "en", text_kit)
    assert not [e for e in ev if e.role == "customer"]
    assert [e.data["utt_seq"] for e in ev if e.type == "greeting"] == [0]


def test_roles_are_not_taken_from_a_callers_informal_opening(fuzzy_kit):
    """The caller opens ("hey, this is Mark speaking", "hello there, how are you?"); the agent answers as
    informally: the agent is found by its script lines, not by who said a salutation first."""
    from callqa.pipeline.roles import decide_by_evidence

    def turns(lines):
        out, t = [], 0.0
        for k, (spk, text) in enumerate(lines):
            n = len(text.split())
            ws = [Word(t + 0.3 * i, t + 0.3 * (i + 1), w, 0.9) for i, w in enumerate(text.split())]
            out.append(Utterance(k, spk, t, t + 0.3 * n, text, ws))
            t += 0.3 * n + 1.0
        return out

    for opener in ("hey this is mark speaking", "hello there how are you"):
        utts = turns(
            [
                ("A", opener),
                ("B", "hey mark how is it going"),
                ("A", "good thanks i want to book a table"),
                ("B", "sure may i please have your full name"),
                ("A", "mark jones"),
                ("B", "thank you your table is booked for friday at seven"),
                ("A", "great thank you"),
                ("B", "is there anything else i can help you with"),
                ("A", "no that is all thanks"),
                ("B", "okay thank you for calling bye"),
            ]
        )
        ev = detect_text_events("c", utts, "en", fuzzy_kit)
        assert not [e for e in ev if e.type == "greeting" and e.speaker == "A"], opener
        assert decide_by_evidence(utts, ev).mapping == {"A": "customer", "B": "agent"}, opener
    # a formal opening by the second speaker is still the call's greeting
    utts = turns([("A", "hello"), ("B", "hi how can i help you today"), ("A", "i need a train")])
    g = [e for e in detect_text_events("c", utts, "en", fuzzy_kit) if e.type == "greeting"]
    assert [(e.speaker, e.data["formal"]) for e in g] == [("B", True)]
