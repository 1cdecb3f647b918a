"""PII redaction: a labelled set of synthetic utterances in English and Mandarin (templates x random
values), the word/evidence/score rewriting of a whole call, and the redacted audio copy."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

import qa_data
from callqa.config.settings import load_settings
from callqa.pipeline.pii import PII_TYPES, RedactionOptions, cn_id_ok, find_pii, luhn_ok, redact_text
from callqa.pipeline.redact import apply_redaction, redact_audio, redact_call, redact_utterance, write_redacted_audio
from callqa.pipeline.types import ConfigError, DecodedAudio

EN_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ZH_WORDS = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# ------------------------------------------------------------------------------------------------
# value generators: real formats with valid check digits


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def card_number(rng: random.Random) -> str:
    kind = rng.choice(["visa", "mc", "amex", "unionpay"])
    if kind == "visa":
        return luhn_complete("4", 16, rng)
    if kind == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16, rng)
    if kind == "amex":
        return luhn_complete(rng.choice(["34", "37"]), 15, rng)
    return luhn_complete("62", rng.choice([16, 19]), rng)


def cn_id(rng: random.Random) -> str:
    body = (
        f"{rng.choice(['110105', '310104', '440305', '510107'])}{rng.randint(1950, 2004)}"
        f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]
    assert cn_id_ok(body + check)
    return body + check


def ssn(rng: random.Random) -> str:
    while True:
        a = rng.randint(1, 899)
        if a != 666:
            return f"{a:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def ni_number(rng: random.Random) -> str:
    first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = rng.choice(first) + rng.choice(second)
        if p not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            return p + "".join(rng.choice("0123456789") for _ in range(6)) + rng.choice("ABCD")


def group(d: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(d[i : i + s])
        i += s
    if i < len(d):
        out.append(d[i:])
    return sep.join(x for x in out if x)


def spoken_en(d: str, rng: random.Random) -> str:
    words = []
    i = 0
    while i < len(d):
        if i + 1 < len(d) and d[i] == d[i + 1] and rng.random() < 0.4:
            words.append("double " + EN_WORDS[int(d[i])])
            i += 2
            continue
        words.append("oh" if d[i] == "0" and rng.random() < 0.5 else EN_WORDS[int(d[i])])
        i += 1
    # callers pause in groups of three or four; ASR writes the pauses as commas
    sep = rng.choice([" ", ", "])
    chunks, k = [], 0
    while k < len(words):
        n = rng.choice([3, 4])
        chunks.append(" ".join(words[k : k + n]))
        k += n
    return sep.join(chunks)


def spoken_zh(d: str, rng: random.Random) -> str:
    return "".join(
        ("幺" if c == "1" and rng.random() < 0.5 else "两" if c == "2" and rng.random() < 0.2 else ZH_WORDS[int(c)])
        for c in d
    )


@dataclass(frozen=True)
class Sample:
    text: str
    value: str  # the PII as it appears in text
    type: str
    lang: str


EN_TEMPLATES = {
    "CARD": [
        "My card number is {v}.",
        "Sure, it's {v}, and the expiry is next March.",
        "The long number on the front is {v}",
    ],
    "PHONE": ["You can reach me on {v} after six.", "Call me back on {v} please.", "my mobile is {v}"],
    "NATIONAL_ID": ["My social security number is {v}.", "the national insurance number is {v}", "ID {v}, I think"],
    "EMAIL": ["Send it to {v} please.", "my email is {v}", "It's {v}, all lower case."],
    "DIGITS": ["The account number is {v}.", "My reference is {v}, does that help?", "member number {v}"],
}
ZH_TEMPLATES = {
    "CARD": ["我的卡号是{v}。", "卡号{v}，您查一下。"],
    "PHONE": ["你可以打我手机{v}。", "我的电话是{v}，谢谢。"],
    "NATIONAL_ID": ["身份证号码是{v}。", "我的身份证号{v}"],
    "EMAIL": ["我的邮箱是{v}。", "发到{v}就行"],
    "DIGITS": ["我的账号是{v}。", "会员号{v}，您核对一下。"],
}


def make_value(kind: str, lang: str, rng: random.Random) -> str:
    if kind == "CARD":
        d = card_number(rng)
        forms = {
            # as ASR writes dictated digits: grouped, dashed, run together, one numeral per word, words
            "en": [
                group(d, [4, 4, 4, 4], " "),
                group(d, [4, 4, 4, 4], "-"),
                d,
                " ".join(d),
                spoken_en(d, rng),
                group(d, [4, 4, 4, 4], ", "),
            ],
            "zh": [d, group(d, [4, 4, 4, 4], " "), spoken_zh(d, rng), d.translate(FULLWIDTH)],
        }[lang]
        return rng.choice(forms)
    if kind == "PHONE":
        if lang == "en":
            n = rng.choice(["us", "uk", "ukmob", "intl"])
            if n == "us":
                d = f"{rng.randint(2, 9)}{rng.randint(0, 99):02d}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"
                return rng.choice(
                    [
                        f"({d[:3]}) {d[3:6]}-{d[6:]}",
                        f"{d[:3]}-{d[3:6]}-{d[6:]}",
                        f"+1 {d[:3]} {d[3:6]} {d[6:]}",
                        f"{d[:3]}.{d[3:6]}.{d[6:]}",
                        spoken_en(d, rng),
                        " ".join(d),
                    ]
                )
            if n == "uk":
                d = f"020{rng.randint(0, 99999999):08d}"
                return rng.choice([f"{d[:3]} {d[3:7]} {d[7:]}", spoken_en(d, rng)])
            if n == "ukmob":
                d = f"07{rng.randint(0, 999999999):09d}"
                return rng.choice([f"{d[:5]} {d[5:]}", d, spoken_en(d, rng)])
            d = f"7{rng.randint(0, 999999999):09d}"
            return rng.choice([f"+44 {d[:4]} {d[4:]}", f"+44{d}"])
        d = f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}"
        return rng.choice(
            [
                d,
                f"{d[:3]} {d[3:7]} {d[7:]}",
                f"+86 {d}",
                spoken_zh(d, rng),
                d.translate(FULLWIDTH),
                f"{d[:3]}-{d[3:7]}-{d[7:]}",
            ]
        )
    if kind == "NATIONAL_ID":
        if lang == "en":
            which = rng.choice(["ssn", "ni", "ni_spoken"])
            if which == "ssn":
                d = ssn(rng)
                return rng.choice([f"{d[:3]}-{d[3:5]}-{d[5:]}", f"{d[:3]} {d[3:5]} {d[5:]}"])
            ni = ni_number(rng)
            if which == "ni":
                return rng.choice([ni, f"{ni[:2]} {ni[2:4]} {ni[4:6]} {ni[6:8]} {ni[8]}"])
            return f"{ni[0]} {ni[1]} {' '.join(EN_WORDS[int(c)] for c in ni[2:8])} {ni[8]}"
        d = cn_id(rng)
        return rng.choice([d, spoken_zh(d[:17], rng) + ("叉" if d[17] == "X" else ZH_WORDS[int(d[17])])])
    if kind == "EMAIL":
        user = rng.choice(["john.smith", "sarah_lee", "wang.wei", "li.na88", "m.jones", "zhangsan"])
        dom = rng.choice(["gmail.com", "example.co.uk", "qq.com", "163.com", "outlook.com"])
        if lang == "en":
            spoken = f"{user.replace('.', ' dot ').replace('_', ' underscore ')} at {dom.replace('.', ' dot ')}"
            return rng.choice([f"{user}@{dom}", spoken])
        return rng.choice([f"{user}@{dom}", f"{user.replace('.', '点')} 艾特 {dom.replace('.', ' 点 ')}"])
    d = "".join(rng.choice("0123456789") for _ in range(rng.randint(7, 10)))
    d = d if not luhn_ok(d) or len(d) < 13 else d + "1"
    return spoken_en(d, rng) if lang == "en" else rng.choice([d, spoken_zh(d, rng)])


def labelled_set(n_per: int = 24, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for lang, templates in (("en", EN_TEMPLATES), ("zh", ZH_TEMPLATES)):
        for kind, tpls in templates.items():
            for i in range(n_per):
                v = make_value(kind, lang, rng)
                out.append(Sample(tpls[i % len(tpls)].format(v=v), v, kind, lang))
    return out


NEGATIVES = [
    "Your bill is 1,250.00 pounds this quarter, up 3.5 percent.",
    "The engineer is booked for Monday at 10:30.",
    "Oh, hello. It is one two three four five.",
    "I have two or three questions about the 2024 tariff.",
    "Room 12, flat 4B, and the postcode is on the letter.",
    "That will be 42 dollars and 99 cents.",
    "We spoke on the 3rd of March, around 9 o'clock.",
    "Please hold for one moment while I check.",
    "我要两个，一共一百二十三元。",
    "第一个月免费，第二个月开始收费。",
    "您好，请问有什么可以帮您？一下子说不清楚。",
    "三到五个工作日内到账。",
]


# ------------------------------------------------------------------------------------------------


def _covered(text: str, value: str, spans) -> bool:
    start = text.index(value)
    end = start + len(value)
    pos = start
    for s in sorted(spans, key=lambda s: s.start):
        if s.start <= pos < s.end:
            pos = s.end
    return pos >= end


def test_labelled_set_recall_at_least_098_in_both_languages():
    samples = labelled_set()
    assert len(samples) == 240
    stats: dict[tuple[str, str], list[int]] = {}
    misses, wrong_type = [], []
    for s in samples:
        spans = find_pii(s.text)
        hit = _covered(s.text, s.value, spans)
        red, _ = redact_text(s.text)
        if hit:
            assert s.value not in red
            typed = [
                p for p in spans if p.start < s.text.index(s.value) + len(s.value) and s.text.index(s.value) < p.end
            ]
            if not any(p.type == s.type for p in typed):
                wrong_type.append((s, [p.type for p in typed]))
        else:
            misses.append((s, red))
        st = stats.setdefault((s.lang, s.type), [0, 0])
        st[0] += hit
        st[1] += 1
    for lang in ("en", "zh"):
        got = sum(v[0] for k, v in stats.items() if k[0] == lang)
        total = sum(v[1] for k, v in stats.items() if k[0] == lang)
        print(
            f"{lang}: recall {got / total:.3f} ({got}/{total}); per type "
            + ", ".join(f"{k[1]} {v[0]}/{v[1]}" for k, v in sorted(stats.items()) if k[0] == lang)
        )
        assert got / total >= 0.98, misses
    type_acc = 1 - len(wrong_type) / len(samples)
    print(f"type accuracy {type_acc:.3f}")
    assert type_acc >= 0.95, wrong_type[:10]


def test_ordinary_numbers_are_left_alone():
    flagged = [(t, find_pii(t)) for t in NEGATIVES if find_pii(t)]
    assert not flagged


@pytest.mark.parametrize(
    "text,token,value",
    [
        ("card 4111 1111 1111 1111 thanks", "[CARD]", "4111111111111111"),
        (
            "it's four five three nine, one four eight eight, oh three four three, six four six seven",
            "[CARD]",
            "4539148803436467",
        ),
        (
            "double four seven two triple zero one two three four five six seven",
            "[CARD]",
            "44720001234567",
        ),  # Luhn-valid
        ("call 07700 900123", "[PHONE]", "07700900123"),
        ("幺三八幺二三四五六七八", "[PHONE]", "13812345678"),
        ("身份证号码是11010519491231002X。", "[NATIONAL_ID]", "11010519491231002X"),
        ("my NI number is AB 12 34 56 C", "[NATIONAL_ID]", "AB123456C"),
        ("SSN 123-45-6789", "[NATIONAL_ID]", "123456789"),
        ("write to john dot smith at gmail dot com", "[EMAIL]", "john.smith@gmail.com"),
        ("邮箱是zhangsan艾特qq点com", "[EMAIL]", "zhangsan@qq.com"),
    ],
)
def test_examples(text, token, value):
    red, spans = redact_text(text)
    assert token in red, (red, spans)
    if value is not None:
        assert any(s.value == value for s in spans), spans


def test_luhn_and_checksums_decide_the_type():
    assert redact_text("4111 1111 1111 1111")[0] == "[CARD]"
    assert redact_text("4111 1111 1111 1112")[0] == "[DIGITS]"  # one misheard digit: still redacted
    assert redact_text("11010519491231002X")[0] == "[NATIONAL_ID]"
    assert redact_text("110105194912310021")[0] == "[DIGITS]"  # bad check digit


def test_types_can_be_narrowed():
    opts = RedactionOptions(types=frozenset({"EMAIL"}))
    red, _ = redact_text("card 4111 1111 1111 1111, mail a.b@example.com", opts)
    assert "4111 1111 1111 1111" in red and "[EMAIL]" in red


def test_utterance_words_become_the_type_token_and_keep_their_times():
    u = qa_data.utt(0, "ch1", "customer", 10.0, 16.0, "my card is 4111 1111 1111 1111 okay", 1)
    red, spans, raws = redact_utterance(u)
    assert red.text == "my card is [CARD] okay"
    assert [w.text.strip() for w in red.words] == ["my", "card", "is", "[CARD]", "[CARD]", "[CARD]", "[CARD]", "okay"]
    assert [(w.start, w.end) for w in red.words] == [(w.start, w.end) for w in u.words]
    assert len(spans) == 1 and spans[0].type == "CARD"
    assert spans[0].start == u.words[3].start and spans[0].end == u.words[6].end
    assert u.text == "my card is 4111 1111 1111 1111 okay"  # the input is not modified


def test_a_whole_call_has_no_raw_pii_left_in_text_evidence_data_or_rationales():
    base = qa_data.stereo_call()
    pii_utt = qa_data.utt(
        6, "ch1", "customer", 50.0, 54.0, "it is 4111 1111 1111 1111 and my mobile is 07700 900123", 1
    )
    ev = qa_data.ev(
        base.source.call_id,
        "identity_verification",
        50.0,
        54.0,
        "ch1",
        "customer",
        "is 4111 1111 1111 1111 and my mobile",
        quote="07700 900123",
    )
    from dataclasses import replace

    from callqa.pipeline.types import CriterionResult

    crit = CriterionResult(
        "s", "identity_verified", "pass", 10, 10, False, (ev.event_id,), "customer gave 4111 1111 1111 1111"
    )
    score = replace(base.scores[0], criteria=base.scores[0].criteria + (crit,))
    call = replace(base, utterances=base.utterances + [pii_utt], events=base.events + [ev], scores=[score])
    red, spans = redact_call(call)
    blob = repr(red)
    for raw in ("4111 1111 1111 1111", "4111", "07700 900123", "900123"):
        assert raw not in blob, raw
    assert {s.type for s in spans} == {"CARD", "PHONE"}
    assert "[CARD]" in red.utterances[-1].text and "[PHONE]" in red.utterances[-1].text
    assert red.events[-1].data["quote"] == "[PHONE]"
    assert "[CARD]" in red.scores[0].criteria[-1].rationale
    # what had no PII is untouched
    assert red.utterances[0] == call.utterances[0] and red.events[0] == call.events[0]


def _audio(seconds: float = 3.0, channels: int = 2) -> DecodedAudio:
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    chans = [(0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t)).astype(np.float32) for c in range(channels)]
    return DecodedAudio("x.wav", chans, sr, 8000, channels, "pcm_s16le", seconds)


def test_audio_spans_are_silenced_or_beeped_on_every_channel_and_nothing_else_changes():
    from callqa.pipeline.redact import RedactedSpan

    audio = _audio()
    spans = [RedactedSpan(1.0, 1.5, "CARD", "ch1", 1)]
    silent = redact_audio(audio, spans, "silence", pad_s=0.1)
    beeped = redact_audio(audio, spans, "beep", pad_s=0.1)
    a, b = int(0.9 * 16000), int(1.6 * 16000)
    for ch in range(2):
        assert np.all(silent[ch][a:b] == 0)
        np.testing.assert_array_equal(silent[ch][:a], audio.channels[ch][:a])
        np.testing.assert_array_equal(silent[ch][b:], audio.channels[ch][b:])
        spec = np.abs(np.fft.rfft(beeped[ch][a + 800 : b - 800]))
        freq = np.fft.rfftfreq(b - a - 1600, 1 / 16000)[np.argmax(spec)]
        assert abs(freq - 1000) < 5
    assert not np.all(audio.channels[0][a:b] == 0)  # the decoded audio itself is not modified


def test_redacted_copy_is_written_and_recorded_in_metadata(tmp_path):
    from dataclasses import replace

    settings = load_settings(overrides={"redaction": {"audio": "beep", "audio_dir": str(tmp_path / "red")}}).redaction
    call = qa_data.stereo_call()
    pii = qa_data.utt(6, "ch1", "customer", 1.0, 2.5, "my number is 07700 900123", 1)
    call = replace(call, utterances=call.utterances + [pii])
    out = apply_redaction(call, settings, _audio())
    path = out.source.metadata["redacted_audio"]
    from scipy.io import wavfile

    sr, data = wavfile.read(path)
    assert sr == 16000 and data.shape == (48000, 2) and data.dtype == np.int16
    assert out.source.metadata["redaction"] == {"spans": 1, "types": {"PHONE": 1}}
    assert "[PHONE]" in out.utterances[-1].text


def test_redaction_can_be_turned_off_and_audio_needs_a_folder():
    off = load_settings(overrides={"redaction": {"enabled": False}}).redaction
    call = qa_data.stereo_call()
    assert apply_redaction(call, off) is call
    with pytest.raises(ConfigError, match="audio_dir"):
        load_settings(overrides={"redaction": {"audio": "silence"}})
    assert set(load_settings().redaction.types) == set(PII_TYPES)


def test_write_redacted_audio_names_the_file_on_error(tmp_path):
    from callqa.pipeline.redact import RedactionError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RedactionError, match="cannot write"):
        write_redacted_audio(_audio(), [], blocker / "sub" / "x.wav")
