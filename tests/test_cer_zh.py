"""The Mandarin CER normaliser of `callqa eval detectors --lang zh` (evaluation/cer_zh.py)."""

from __future__ import annotations

import pytest

from callqa.evaluation.cer_zh import CerCount, cer_count, cer_zh, normalize_zh


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("感謝您的耐心等待，我查到您家上個月的電費。", "感谢您的耐心等待我查到您家上个月的电费"),  # t2s
        ("工号八零二三", "工号8023"),  # read digit by digit
        ("一共五十元", "一共50元"),  # by value
        ("两百五十块", "250块"),
        ("稍等 一下！", "稍等一下"),  # a lone 一 is a word, spaces and punctuation go
        ("ＡＢＣ１２３？", "abc123"),  # full width folded
        ("", ""),
    ],
)
def test_normalize_zh(text, want):
    assert normalize_zh(text) == want


def test_what_is_no_error_and_what_is():
    ref = "您好，工号八零二三，很高兴为您服务。一共五十元。"
    assert cer_zh(ref, "您好工號8023很高興為您服務, 一共50元") == 0.0
    # 稍 heard as 少: one substitution in four characters
    assert cer_zh("请稍等吧", "请少等吧") == pytest.approx(0.25)
    # a dropped and an inserted character
    assert cer_count("请您稍等", "请稍等啊") == CerCount(2, 4)
    # sequences are joined in order (one channel's turns)
    assert cer_count(["好的。", "再见。"], ["好的", "再见"]) == CerCount(0, 4)


def test_empty_sides():
    assert cer_count("请稍等", "") == CerCount(3, 3) and cer_zh("请稍等", "") == 1.0
    assert cer_count("", "多余") == CerCount(2, 0) and cer_zh("", "多余") is None
    assert (CerCount(1, 10) + CerCount(2, 5)).cer == pytest.approx(0.2)
