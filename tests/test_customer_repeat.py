"""The customer repeating themselves (pipeline/detectors/restate.py): restatements found in English and
Mandarin, look-alikes left alone, the event through the text detectors and into the effort macro."""

from __future__ import annotations

from datetime import date

import pytest

from callqa.config.settings import CustomerRepeatSettings, TextSettings
from callqa.pipeline import store
from callqa.pipeline.detectors import EVENT_TYPES
from callqa.pipeline.detectors.restate import detect_customer_repeats, restatement_score
from callqa.pipeline.types import Utterance

S = CustomerRepeatSettings()

RESTATED = [  # (earlier, later): the customer explaining the same thing again
    (
        "My internet keeps dropping every evening around eight.",
        "Like I said, the internet keeps dropping every evening.",
    ),
    ("I was charged twice for my October bill.", "As I told you, I got charged twice on the October bill."),
    ("I want to cancel my gym membership.", "Look, I just want to cancel the gym membership."),
    ("The delivery driver left the parcel outside.", "The driver just left my parcel outside the door."),
    ("我的宽带每天晚上都断网。", "我刚才说了，宽带每天晚上都会断网。"),
    ("我上个月的电费被扣了两次。", "就是上个月电费扣了两次嘛。"),
    ("我的快递到现在还没有送到。", "我已经说过了，快递到现在都没送到！"),
]
DIFFERENT = [  # two sentences of one call that share words but are no restatement
    ("I want to cancel my gym membership.", "I want to cancel my phone contract."),
    ("I was charged twice for my October bill.", "Was I also charged twice on the November bill?"),
    ("I need to reset my password.", "I need to reset my voicemail pin."),
    ("Thank you very much.", "Thank you very much, bye."),  # too little content to say
    ("Yes, that is right.", "Yes, that's correct."),
    ("My card number is [CARD].", "The card is [CARD]."),  # a number read out again
    ("我想改一下账单地址。", "我想查一下上个月的电费账单。"),
    ("那我什么时候能收到退款？", "我什么时候能收到发票？"),
    ("好的好的，谢谢。", "好的，谢谢您。"),
    ("我想问一下电费。", "我想问一下话费。"),
    # an answer naming the route again on its way to new facts, and a second booking of another kind (the
    # shapes of the two pairs the first version found in a real call, in words of our own)
    ("The train I want should go from Leeds to York.", "I'd like to leave Leeds on Saturday and get to York by noon."),
    (
        "That's perfect, I would like to book a table for four people tonight at that restaurant.",
        "Yes that's perfect, could you book four people on that bus?",
    ),
]


@pytest.mark.parametrize(("earlier", "later"), RESTATED)
def test_restatements_score_over_the_threshold(earlier, later):
    lang = "zh" if ord(earlier[0]) > 0x2E80 else "en"
    score = restatement_score(earlier, later, S)
    assert score is not None and score >= S.threshold[lang]


@pytest.mark.parametrize(("earlier", "later"), DIFFERENT)
def test_look_alikes_stay_under_it(earlier, later):
    lang = "zh" if ord(earlier[0]) > 0x2E80 else "en"
    score = restatement_score(earlier, later, S)
    assert score is None or score < S.threshold[lang]


def _u(seq, role, start, text, speaker=None):
    return Utterance(seq, speaker or ("ch0" if role == "agent" else "ch1"), start, start + 3.0, text, [], role=role)


def _call(customer_first, customer_again, lang_agent=("How can I help?", "Let me check that for you.")):
    return [
        _u(0, "agent", 0.0, lang_agent[0]),
        _u(1, "customer", 4.0, f"Hi. {customer_first}"),
        _u(2, "agent", 8.0, lang_agent[1]),
        _u(3, "customer", 12.0, customer_again),
    ]


@pytest.mark.parametrize(("earlier", "later"), RESTATED)
def test_event_with_both_sentences(earlier, later):
    [e] = detect_customer_repeats("c", _call(earlier, later), S)
    assert e.type == "customer_repeat" and e.type in EVENT_TYPES and e.role == "customer"
    assert (e.start, e.data["utt_seq"], e.data["earlier_utt_seq"]) == (12.0, 3, 1)
    assert e.data["earlier"] == earlier and e.data["sentence"] == later
    assert earlier in e.evidence and later in e.evidence


@pytest.mark.parametrize(("earlier", "later"), DIFFERENT)
def test_no_event_for_look_alikes(earlier, later):
    assert detect_customer_repeats("c", _call(earlier, later), S) == []


def test_only_after_the_agent_spoke_and_only_the_customer():
    text = "My internet keeps dropping every evening around eight."
    # the same sentence twice in a row (a turn split by a pause, an ASR repetition loop): no agent between
    split = [_u(0, "agent", 0.0, "How can I help?"), _u(1, "customer", 4.0, text), _u(2, "customer", 8.0, text)]
    assert detect_customer_repeats("c", split, S) == []
    within = [_u(0, "agent", 0.0, "How can I help?"), _u(1, "customer", 4.0, f"{text} {text}")]
    assert detect_customer_repeats("c", within, S) == []
    # the agent repeating the customer's words (confirming) is no customer effort
    echo = [_u(0, "customer", 0.0, text), _u(1, "agent", 4.0, "Okay."), _u(2, "agent", 8.0, text)]
    assert detect_customer_repeats("c", echo, S) == []
    # roles unknown (mono, no decision yet): nobody is known to be the customer
    unknown = [_u(i, "unknown", 4.0 * i, t) for i, t in enumerate([text, "Let me check.", text])]
    assert detect_customer_repeats("c", unknown, S) == []
    # three times: the second and the third are restatements, each of its best earlier match
    thrice = _call(text, text) + [_u(4, "agent", 16.0, "One moment."), _u(5, "customer", 20.0, text)]
    assert [e.start for e in detect_customer_repeats("c", thrice, S)] == [12.0, 20.0]


def test_settings_turn_it_off_or_stricter():
    earlier, later = RESTATED[3]  # scores 91
    assert detect_customer_repeats("c", _call(earlier, later), CustomerRepeatSettings(enabled=False)) == []
    strict = CustomerRepeatSettings(threshold={"en": 95.0, "zh": 85.0})
    assert detect_customer_repeats("c", _call(earlier, later), strict) == []
    assert TextSettings().customer_repeat == S


def test_text_detectors_emit_it_and_the_effort_macro_counts_it(tmp_path):
    from callqa.config.phrases import load_phrasebook
    from callqa.config.settings import DetectSettings
    from callqa.pipeline.detectors.text import build_text_kit, detect_text_events

    det = DetectSettings(text=TextSettings(semantic=False))
    kit = build_text_kit(det, phrasebooks={"en": load_phrasebook("en")})
    earlier, later = RESTATED[0]
    events = detect_text_events("c" * 64, _call(earlier, later), "en", kit)
    [rep] = [e for e in events if e.type == "customer_repeat"]
    con = store.connect(tmp_path / "effort.duckdb")
    try:
        con.execute(
            "INSERT INTO calls (call_id, source_path, file_name, duration_s, channels, sample_rate, processed_at, "
            "pipeline_version, status, started_at) "
            "VALUES (?, '/r/c.wav', 'c.wav', 20, 2, 8000, ?, 't', 'processed', ?)",
            ["c" * 64, date(2026, 10, 1), date(2026, 10, 1)],
        )
        con.execute(
            "INSERT INTO events (event_id, call_id, type, start_s, end_s, role, evidence, detector_version, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [rep.event_id, "c" * 64, rep.type, rep.start, rep.end, rep.role, rep.evidence, rep.detector_version, "{}"],
        )
        row = con.execute(
            "SELECT customer_repeats, effort_score FROM kpi_call_effort(DATE '2026-10-01', DATE '2026-10-01')"
        ).fetchone()
    finally:
        con.close()
    assert row == (1, 1)
