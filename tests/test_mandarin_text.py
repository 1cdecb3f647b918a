"""Mandarin text: Simplified script after ASR, the language of each utterance, the Mandarin scorecard."""

from __future__ import annotations

from dataclasses import replace

import opencc
import pytest

from callqa.config.settings import DetectSettings
from callqa.pipeline.detectors.text import build_text_kit, detect_text_events
from callqa.pipeline.scoring import ScoringContext, load_scorecard, score_call
from callqa.pipeline.speakers import utterance_of
from callqa.pipeline.types import Event, Segment, Transcript, Word
from callqa.pipeline.writing import Simplifier, script_language, tag_languages

T2S = opencc.OpenCC("t2s")


def words(texts, start=0.0, step=0.3, channel=0):
    return [
        Word(start=start + i * step, end=start + (i + 1) * step, text=t, probability=0.9, channel=channel)
        for i, t in enumerate(texts)
    ]


def test_traditional_words_become_simplified_with_their_timings():
    ws = tuple(words(["感謝", "您的", "耐心", "等待,", "我查到", "您家", "上個月的", "電錶"]))
    seg = Segment(0.0, 2.4, "感謝您的耐心等待,我查到您家上個月的電錶", ws, 0, -0.2, 0.01)
    out = Simplifier().transcript(Transcript("zh", 0.9, [seg], "m")).segments[0]
    assert [w.text for w in out.words] == ["感谢", "您的", "耐心", "等待,", "我查到", "您家", "上个月的", "电表"]
    assert [(w.start, w.end) for w in out.words] == [(w.start, w.end) for w in ws]
    assert out.text == "感谢您的耐心等待,我查到您家上个月的电表"
    assert T2S.convert(out.text) == out.text


def test_a_conversion_that_changes_the_length_falls_back_to_each_word():
    class Longer:  # a phrase mapping to more characters than it had (rare in t2s, but possible)
        def convert(self, text):
            return text.replace("體", "体").replace("乾", "干干")

    s = Simplifier()
    s._cc = Longer()
    out = s.words(words(["乾淨", "身體"]))
    assert [w.text for w in out] == ["干干淨", "身体"]
    assert [w.start for w in out] == [0.0, 0.3]


def test_japanese_text_is_left_alone():
    ws = tuple(words(["お電話", "ありがとう"]))
    seg = Segment(0.0, 0.6, "お電話ありがとう", ws, 0, -0.2, 0.01)
    assert Simplifier().transcript(Transcript("ja", 0.9, [seg], "m")).segments[0] == seg


@pytest.mark.parametrize(
    ("text", "call", "expected"),
    [
        ("请问有什么可以帮您?", "zh", "zh"),
        ("Thank you for calling, how can I help you?", "zh", "en"),
        ("Thank you for calling, how can I help you?", "en", "en"),
        ("您的 ID 是多少", "en", "zh"),
        ("OK", "zh", "zh"),  # too few letters to say: the call's language
        ("123", None, None),
    ],
)
def test_script_language(text, call, expected):
    assert script_language(text, call) == expected


def test_a_code_switched_call_matches_each_turn_with_its_own_phrase_lists():
    kit = build_text_kit(
        DetectSettings().model_copy(update={"text": DetectSettings().text.model_copy(update={"semantic": False})})
    )
    turns = [
        ("ch0", ["Thank", "you", "for", "calling", "Acme", "Bank,", "how", "can", "I", "help", "you?"]),
        ("ch1", ["我", "想", "查", "一下", "话费"]),
        ("ch0", ["好的,", "请", "稍", "等,", "我", "帮", "您", "查询", "一下"]),
        ("ch0", ["感谢", "您", "的", "耐心", "等待"]),
        ("ch0", ["还有", "其他", "问题", "吗?"]),
    ]
    utts, t = [], 0.0
    for i, (spk, ws) in enumerate(turns):
        u = utterance_of(spk, int(spk[-1]), words(ws, start=t), i)
        utts.append(replace(u, role="agent" if spk == "ch0" else "customer"))
        t = u.end + 1.0
    tagged = tag_languages(utts, "zh")
    assert [u.language for u in tagged] == ["en", "zh", "zh", "zh", "zh"]
    types = {e.type for e in detect_text_events("c", tagged, "zh", kit)}
    # the English opening is found with the English lists, the Mandarin cues with the Mandarin ones
    assert {"greeting", "need_discovery", "hold_announced", "hold_thanked", "further_help_offered"} <= types
    # untagged (one language for the call), the English greeting is matched with Mandarin lists only
    assert "greeting" not in {e.type for e in detect_text_events("c", utts[:1], "zh", kit)}


def ev(type_, start, role="agent", **data):
    return Event(type_, start, start + 2, "ch0", role, "证据", 0.9, "t", data=data, event_id=f"{type_}-{start}")


def test_mandarin_scorecard_bands_hold_and_call_length_targets_and_forbidden_phrase():
    card = load_scorecard("inbound_service_zh")
    assert [card.grades.label(g) for g in ("excellent", "good", "fair", "poor")] == ["优", "良", "中", "差"]
    script = [
        ev("greeting", 1, has_name=True, has_company=True),
        ev("identity_verification", 10),
        ev("need_discovery", 5),
        ev("understanding_confirmed", 20),
        ev("solution_explained", 30),
        ev("further_help_offered", 100),
        ev("satisfaction_check", 105),
        ev("closing", 110),
    ]
    metrics = {"dead_air_total_s": 0.0, "interruptions_agent": 0, "duration_s": 120.0}
    good = score_call(card, ScoringContext(events=script, duration_s=120, roles_known=True, metrics=metrics))
    assert good.percent == 100 and good.grade == "excellent" and not good.flagged
    # a 90 s hold (over the 60 s 候机时长 target) and a 10-minute call (over the 8-minute 单电时长 target)
    hold = Event("hold", 40, 130, "ch0", "agent", "90 s", 1.0, "t", data={"thanked": True}, event_id="h")
    long_metrics = {**metrics, "duration_s": 600.0, "hold_max_s": 90.0}
    slow = score_call(
        card, ScoringContext(events=[*script, hold], duration_s=600, roles_known=True, metrics=long_metrics)
    )
    results = {r.criterion_id: r.result for r in slow.criteria}
    assert results["hold_length"] == "fail" and results["call_length"] == "fail" and results["hold_etiquette"] == "pass"
    # 禁语 fails the call whatever else it scored
    rude = score_call(
        card,
        ScoringContext(events=[*script, ev("forbidden_phrase", 50)], duration_s=120, roles_known=True, metrics=metrics),
    )
    assert rude.auto_fail and rude.flagged and card.grades.label(rude.grade) == "差"


def test_grade_labels_name_only_known_bands(tmp_path):
    from callqa.pipeline.types import ConfigError

    p = tmp_path / "card.yaml"
    p.write_text(
        "id: x\nversion: 1\ngrades: {excellent: 90, good: 80, fair: 60, labels: {great: 优}}\n"
        "sections: [{id: s, criteria: [{id: c, points: 1, rule: {event: greeting}}]}]\n"
    )
    with pytest.raises(ConfigError, match="great"):
        load_scorecard(p)


@pytest.mark.slow
def test_stored_mandarin_text_is_simplified(real_data, detector_toolkit, tmp_path):
    """The real Mandarin clips through the whole pipeline into DuckDB: OpenCC t2s finds nothing to
    change in any stored utterance, word, evidence quote or rationale (Whisper base writes the
    code-switched Azure clip's Mandarin in Traditional script: 今天天氣怎麼樣, 請問圖書館在哪裡)."""
    from callqa.pipeline import store
    from callqa.pipeline.call import process_call
    from callqa.pipeline.discover import discover

    wanted = {"asr_example.wav", "en-us_zh-cn.wav"}
    sources = [
        s
        for folder in ("funasr", "azure-speech-sdk")
        for s in discover(real_data / "realcalls" / folder, ["wav"])
        if s.path.endswith(tuple(wanted))
    ]
    if len(sources) != len(wanted):
        pytest.skip(f"{sorted(wanted)} not all in {real_data / 'realcalls'}")
    db = tmp_path / "zh.duckdb"
    con = store.connect(db)
    try:
        for src in sources:
            result = process_call(src, detector_toolkit)
            assert hasattr(result, "utterances"), result
            assert result.language == "zh"
            assert store.write_call(con, result, None, "test")
        rows = con.execute(
            """SELECT 'utterance', text FROM utterances UNION ALL SELECT 'word', word FROM words
               UNION ALL SELECT 'evidence', evidence FROM events
               UNION ALL SELECT 'rationale', rationale FROM criterion_results"""
        ).fetchall()
    finally:
        con.close()
    chinese = [(kind, text) for kind, text in rows if text and any("\u4e00" <= c <= "\u9fff" for c in text)]
    assert {k for k, _ in chinese} >= {"utterance", "word"}
    assert [(k, t) for k, t in chinese if T2S.convert(t) != t] == []


def test_mandarin_mono_roles_from_the_agents_script():
    """Diarized Mandarin turns (no channel map): the voice that says 工号 …, 很高兴为您服务, 请问有什么可以帮您
    is the agent, even when the caller speaks first and whatever the speaker labels."""
    from callqa.config.settings import load_settings
    from callqa.pipeline.roles import assign_roles, build_role_text_kit, detect_role_evidence

    kit = build_role_text_kit(load_settings())
    turns = [
        ("SPEAKER_00", ["喂,", "你好"]),
        ("SPEAKER_01", ["您好,", "工号", "8023,", "很高兴", "为您", "服务,", "请问", "有什么", "可以", "帮您?"]),
        ("SPEAKER_00", ["我", "上个月", "的", "话费", "不对,", "我要", "投诉"]),
        ("SPEAKER_01", ["非常", "抱歉,", "请", "稍等,", "我", "帮您", "查询", "一下"]),
        ("SPEAKER_01", ["还有", "其他", "可以", "帮您", "的", "吗?"]),
    ]
    utts, t = [], 0.0
    for i, (spk, ws) in enumerate(turns):
        u = utterance_of(spk, None, words(ws, start=t), i)
        utts.append(u)
        t = u.end + 0.8
    utts = tag_languages(utts, "zh")
    evidence = detect_role_evidence("c", utts, "zh", kit)
    out, decision = assign_roles(utts, 1, None, {}, evidence=evidence)
    assert decision.mapping == {"SPEAKER_01": "agent", "SPEAKER_00": "customer"}
    assert "greeting" in decision.method and decision.confidence >= 0.9
    assert [u.role for u in out] == ["customer", "agent", "customer", "agent", "agent"]


def test_queue_language_and_the_simplified_prompt():
    from callqa.config.settings import ASRSettings
    from callqa.models.asr import WhisperASR
    from callqa.pipeline.transcribe import call_language

    asr = ASRSettings(language_by_queue={"cn_service": "zh"}, prompt_zh="您好，很高兴为您服务。")
    assert call_language(asr, {"queue": "cn_service"}) == "zh"
    assert call_language(asr, {"queue": "cn_service", "language": "en"}) == "en"  # the sidecar wins
    assert call_language(asr, {"queue": "billing"}) is None
    opts = WhisperASR._options(None, "zh", asr, ["星辰银行"])  # type: ignore[arg-type]
    assert opts["initial_prompt"] == "您好，很高兴为您服务。" and opts["hotwords"] == "星辰银行"
    assert "initial_prompt" not in WhisperASR._options(None, "en", asr, ["Acme"])  # type: ignore[arg-type]
    as_prompt = asr.model_copy(update={"vocabulary_as": "initial_prompt"})
    assert WhisperASR._options(None, "zh", as_prompt, ["星辰银行", "安心贷"])["initial_prompt"] == (  # type: ignore[arg-type]
        "您好，很高兴为您服务。星辰银行，安心贷。"
    )
