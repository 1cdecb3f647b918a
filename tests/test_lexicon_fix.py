"""Mandarin lexicon correction: homophones of domain terms written as the terms, nothing else touched."""

from __future__ import annotations

from callqa.config.settings import Settings
from callqa.pipeline.lexicon_fix import LexiconCorrector, correct_transcript
from callqa.pipeline.types import Segment, Transcript, Word

LC = LexiconCorrector()
TERMS = LC.index()


def fix(text: str, vocabulary: tuple[str, ...] = ()) -> str:
    return LC.correct(text, LC.index(vocabulary))


def seg(texts: list[str], channel: int = 0) -> Segment:
    ws = tuple(Word(i * 0.3, (i + 1) * 0.3, t, 0.9, channel) for i, t in enumerate(texts))
    return Segment(0.0, len(texts) * 0.3, "".join(texts), ws, channel, -0.2, 0.01)


def test_a_homophone_of_a_service_word_becomes_the_word() -> None:
    assert fix("您好, 华信电力, 公号 80 23, 很高兴为您服务") == "您好, 华信电力, 工号 80 23, 很高兴为您服务"
    assert fix("我的快弟说好周二到的") == "我的快递说好周二到的"
    assert fix("请提供一下身份正后四位") == "请提供一下身份证后四位"


def test_a_common_word_of_the_same_sound_is_left_alone() -> None:
    # 公司 is gong si, not gong hao; 合适 (he shi, like 核实) is a frequent word in its own right
    assert fix("我们公司的工号是八零二三") == "我们公司的工号是八零二三"
    assert fix("这个时间合适吗") == "这个时间合适吗"
    # 成功好 reads cheng gong hao: 功好 would match 工号 but cuts through the word 成功
    assert fix("已经成功好了") == "已经成功好了"


def test_english_and_single_characters_are_never_touched() -> None:
    text = "Your staff number gong hao is 8023, thanks for calling"
    assert fix(text) == text
    assert fix("宫") == "宫"


def test_the_calls_vocabulary_is_a_lexicon_too() -> None:
    assert fix("您好, 话信电力, 工号八零二三") == "您好, 话信电力, 工号八零二三"  # no such company configured
    assert fix("您好, 话信电力, 工号八零二三", ("华信电力",)) == "您好, 华信电力, 工号八零二三"
    # 致电话信电力: the span would start inside 电话, a common word, so it is not rewritten
    assert fix("欢迎致电话信电力", ("华信电力",)) == "欢迎致电话信电力"
    # Latin names in the vocabulary add no Chinese term and change nothing
    assert LC.index(("Acme Energy",)) == TERMS


def test_words_keep_their_timings_when_a_term_spans_two_words() -> None:
    s = seg(["我是", "公", "号六一五七"])
    out = LC.transcript(Transcript("zh", 0.9, [s], "m")).segments[0]
    assert [w.text for w in out.words] == ["我是", "工", "号六一五七"]
    assert [(w.start, w.end) for w in out.words] == [(w.start, w.end) for w in s.words]
    assert out.text == "我是工号六一五七"


def test_japanese_segments_are_left_alone() -> None:
    s = seg(["こんにちは", "公号"])
    out = LC.transcript(Transcript("zh", 0.9, [s], "m"))
    assert out.segments[0] is s


def test_the_setting_is_on_by_default_and_off_means_no_correction() -> None:
    t = Transcript("zh", 0.9, [seg(["我的", "快弟", "到了"])], "m")
    on = Settings().models.asr
    assert on.lexicon_correction is True
    assert correct_transcript(t, LC, on).segments[0].text == "我的快递到了"
    off = Settings.model_validate({"models": {"asr": {"lexicon_correction": False}}}).models.asr
    assert correct_transcript(t, LC, off) is t
