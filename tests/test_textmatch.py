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
