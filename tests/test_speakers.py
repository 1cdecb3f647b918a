from callqa.pipeline.roles import assign_roles
from callqa.pipeline.speakers import join_words, utterances_by_channel
from callqa.pipeline.types import Segment, Transcript, Word


def seg(ch, words):
    ws = tuple(Word(s, e, t, 0.9, ch) for s, e, t in words)
    return Segment(ws[0].start, ws[-1].end, " ".join(w.text for w in ws), ws, ch, -0.2, 0.01)


def test_a_segment_spanning_the_other_partys_turn_is_split_at_the_pause():
    # Whisper ran one agent segment across the customer's 10 s turn; the turn boundary must survive.
    agent = seg(0, [(0.5, 1.0, "Good"), (1.0, 1.5, "morning."), (16.4, 16.8, "Thank"), (16.8, 17.1, "you.")])
    customer = seg(1, [(6.0, 6.5, "Hello,"), (6.5, 7.0, "I'm"), (7.0, 7.5, "locked"), (7.5, 8.0, "out.")])
    utts = utterances_by_channel(Transcript("en", 0.99, [agent, customer], "m"), n_channels=2)
    assert [(u.speaker, u.text) for u in utts] == [
        ("ch0", "Good morning."),
        ("ch1", "Hello, I'm locked out."),
        ("ch0", "Thank you."),
    ]
    assert [u.seq for u in utts] == [0, 1, 2]
    assert utts[2].start == 16.4 and utts[2].end == 17.1


def test_a_turn_ends_where_the_other_party_finished_a_reply_but_not_at_a_backchannel():
    # found on a labelled call: the customer cut in, the agent stopped, let them finish and went on;
    # the agent's two sentences are two turns (the second is the explanation QA scores)
    agent = seg(
        0,
        [
            (24.6, 25.0, "The"),
            (25.0, 25.6, "earliest"),
            (25.6, 26.2, "slot"),
            (26.2, 27.3, "is"),
            (27.75, 28.63, "I"),
            (28.63, 29.1, "understand."),
        ],
    )
    customer = seg(
        1,
        [
            (25.9, 26.3, "Hang"),
            (26.3, 26.6, "on,"),
            (26.8, 27.1, "can't"),
            (27.1, 27.4, "wait"),
            (27.4, 27.77, "long."),
        ],
    )
    utts = utterances_by_channel(Transcript("en", 0.99, [agent, customer], "m"), n_channels=2)
    assert [(u.speaker, u.text) for u in utts] == [
        ("ch0", "The earliest slot is"),
        ("ch1", "Hang on, can't wait long."),
        ("ch0", "I understand."),
    ]
    # a two-word "yeah, sure" in the agent's pause is a backchannel: the agent's turn goes on
    agent = seg(
        0, [(0.0, 0.5, "Your"), (0.5, 1.0, "bill"), (1.0, 1.4, "rose."), (2.2, 2.6, "Because"), (2.6, 3.0, "of")]
    )
    customer = seg(1, [(1.5, 1.8, "yeah,"), (1.8, 2.0, "sure")])
    utts = utterances_by_channel(Transcript("en", 0.99, [agent, customer], "m"), n_channels=2)
    assert [u.text for u in utts if u.speaker == "ch0"] == ["Your bill rose. Because of"]


def test_roles_from_config_channel_map_and_sidecar_override():
    t = Transcript("en", 0.9, [seg(0, [(0.0, 1.0, "hi")]), seg(1, [(2.0, 3.0, "hello")])], "m")
    utts = utterances_by_channel(t, 2)
    out, dec = assign_roles(utts, 2, {0: "agent", 1: "customer"})
    assert [u.role for u in out] == ["agent", "customer"] and dec.method == "channel_map"
    out, dec = assign_roles(utts, 2, {0: "agent", 1: "customer"}, {"agent_channel": 1})
    assert [u.role for u in out] == ["customer", "agent"] and dec.method == "sidecar"


def test_mono_has_one_speaker_and_undetermined_roles():
    t = Transcript("en", 0.9, [seg(0, [(0.0, 1.0, "hi")]), seg(0, [(5.0, 6.0, "bye")])], "m")
    out, dec = assign_roles(utterances_by_channel(t, 1), 1, {0: "agent", 1: "customer"})
    assert {u.speaker for u in out} == {"spk0"} and {u.role for u in out} == {"unknown"}
    assert dec.confidence == 0 and dec.method.startswith("undetermined")


def test_chinese_words_join_without_spaces():
    ws = [
        Word(0, 0.3, "您好", 0.9),
        Word(0.3, 0.6, "，欢迎", 0.9),
        Word(0.6, 0.9, "致电", 0.9),
        Word(0.9, 1.2, " ACME", 0.9),
    ]
    assert join_words(ws) == "您好，欢迎致电 ACME"
