from callqa.pipeline.textmatch import best_match, normalize, tokens


def test_normalize_case_punctuation_width():
    assert normalize("Thank-you, for CALLING!!") == "thank you for calling"
    # full-width Latin letters and digits fold to ASCII (NFKC)
    assert normalize("ＡＣＭＥ　Ｂａｎｋ１２３") == "acme bank123"
    assert normalize("您好，欢迎致电！") == "您好 欢迎致电"


def test_tokens_split_cjk_characters_and_latin_words():
    assert tokens("您好，VIP客户 hello") == ["您", "好", "vip", "客", "户", "hello"]


def test_short_phrase_does_not_match_inside_a_word():
    assert best_match("hi", tokens("which account is it"), 80) is None
    assert best_match("hi", tokens("hi there"), 80) is not None


def test_fuzzy_match_survives_asr_errors():
    m = best_match("thank you for calling", tokens("Thank you for callin' Acme Energy"), 80)
    assert m is not None and m.score >= 80
    assert (m.first_token, m.last_token) == (0, 3)


def test_unrelated_text_does_not_match():
    assert best_match("thank you for calling", tokens("what do you want"), 80) is None


def test_mandarin_match_with_width_and_punctuation_noise():
    m = best_match("欢迎致电", tokens("您好！欢迎 致电ＸＸ银行"), 80)
    assert m is not None and m.matched == "欢迎致电"
    assert best_match("欢迎致电", tokens("我要投诉你们"), 80) is None


# --- canonical forms: numerals, contractions, Traditional characters, pinyin -------------------

from callqa.pipeline.textmatch import PhraseIndex, canonical, canonical_tokens, cn_numerals_to_arabic, pinyin_tokens  # noqa: E402


def test_chinese_numerals_become_digits():
    assert cn_numerals_to_arabic("工号一二三四五") == "工号12345"
    assert cn_numerals_to_arabic("尾号幺三八") == "尾号138"  # 幺: how 1 is read in phone numbers
    assert cn_numerals_to_arabic("两百块") == "200块"
    assert cn_numerals_to_arabic("三十五元") == "35元"
    assert cn_numerals_to_arabic("一千零五") == "1005"
    assert cn_numerals_to_arabic("两百五") == "250"
    assert cn_numerals_to_arabic("三万五") == "35000"
    assert cn_numerals_to_arabic("二零二四年") == "2024年"
    # a lone 一 is a word part far more often than a number
    assert cn_numerals_to_arabic("等一下，一直这样") == "等一下，一直这样"


def test_both_numeral_forms_and_widths_compare_equal():
    assert canonical("工号一二三四五") == canonical("工号１２３４５") == canonical("工号12345")
    assert canonical("I'm sorry, it's one two three") == "i am sorry it is 1 2 3"
    assert canonical("We can't, you won't") == "we can not you will not"


def test_traditional_characters_are_simplified():
    # Whisper base writes Mandarin in Traditional characters more often than not
    assert canonical("請稍等，感謝您的耐心等待") == canonical("请稍等，感谢您的耐心等待")


def test_pinyin_tokens_make_homophones_equal():
    assert pinyin_tokens(canonical_tokens("请少等")) == pinyin_tokens(canonical_tokens("请稍等"))


def test_phrase_index_matches_homophones_but_not_near_misses():
    idx = PhraseIndex.build(
        {"hold_thanked": ["感谢您的耐心等待"], "hold_announced": ["请稍等"], "escalation_request": ["投诉"]}
    )
    m = idx.match(canonical_tokens("感谢您的耐新等待"), 80, pinyin_threshold=92)
    assert m["hold_thanked"].method == "pinyin" and m["hold_thanked"].score == 100
    # 少等 for 稍等: two syllables, exact homophone, matched on sound
    assert "hold_announced" in idx.match(canonical_tokens("好的请少等"), 80, pinyin_threshold=92)
    # a short phrase may not lose a character: 投 alone is not 投诉
    assert idx.match(canonical_tokens("我想投资理财"), 80, pinyin_threshold=92) == {}


def test_numerals_keep_their_sound_for_pinyin_matching():
    # canonical writes 后四位 as 后4位; Whisper heard zh_call01's 手机号后四位 as 手機號後思維 (si wei)
    assert (
        pinyin_tokens(canonical_tokens("后四位")) == pinyin_tokens(canonical_tokens("后思维")) == ["hou", "si", "wei"]
    )
    assert pinyin_tokens(["3721", "ok"]) == ["san qi er yi", "ok"]
    idx = PhraseIndex.build({"identity_verification": ["手机号后四位"]})
    m = idx.match(canonical_tokens("麻煩您報一下機主的姓名和手機號後思維"), 80, pinyin_threshold=92)
    assert m["identity_verification"].method == "pinyin" and m["identity_verification"].matched == "手机号后思维"
    # the sound of one digit is not enough: 手机是四五六 is neither the phrase's characters nor its sounds
    assert idx.match(canonical_tokens("我的手机是四五六"), 80, pinyin_threshold=92) == {}


def test_pinyin_matching_survives_syllables_split_elsewhere():
    # 满意吗 (man yi ma) heard as 嘛你嘛 (ma ni ma): the same sounds, another syllable boundary
    idx = PhraseIndex.build({"satisfaction_check": ["您对我的服务满意吗"]})
    m = idx.match(canonical_tokens("请问您对我的服务嘛你嘛"), 80, pinyin_threshold=96)
    assert m["satisfaction_check"].method == "pinyin" and m["satisfaction_check"].score >= 96
    # other sounds after the same characters are still no match
    assert idx.match(canonical_tokens("请问您对我的服务马虎吗"), 80, pinyin_threshold=96) == {}


def test_phrase_index_best_per_group_and_group_filter():
    idx = PhraseIndex.build({"a": ["please hold", "please hold the line"], "b": ["thank you for waiting"]})
    toks = canonical_tokens("Please hold the line, thank you for waiting")
    got = idx.match(toks, 90)
    assert got["a"].phrase == "please hold the line" and (got["a"].first_token, got["a"].last_token) == (0, 3)
    assert got["b"].first_token == 4
    assert set(idx.match(toks, 90, groups={"b"})) == {"b"}
