"""The Mandarin ASR path on a real Mandarin recording: language detected, Chinese text comes through.

FunASR's asr_example.wav (5.5 s, MIT) is probably the clip whose README output is
"欢迎大家来体验达摩院推出的语音识别模型" (not verified by its authors; ../shared/data/realcalls/SOURCES.md).
Whisper base (int8, language auto) measured CER 0.105 against it: 运营 for 语音, the rest exact.
"""

from __future__ import annotations

import re
import unicodedata

import jiwer
import pytest

from callqa.pipeline.decode import decode
from callqa.pipeline.speakers import utterances_by_channel
from callqa.pipeline.textmatch import canonical_tokens, to_simplified
from callqa.pipeline.transcribe import transcribe

pytestmark = pytest.mark.slow

REFERENCE = "欢迎大家来体验达摩院推出的语音识别模型"


def test_mandarin_clip_is_detected_and_transcribed(real_data, whisper_asr, asr_model_settings):
    clip = real_data / "realcalls" / "funasr" / "asr_example.wav"
    if not clip.is_file():
        pytest.skip(f"{clip} is not in the real-data set")
    audio = decode(clip)
    settings = asr_model_settings.asr.model_copy(update={"language": None})  # auto-detect
    tr = transcribe(audio, whisper_asr, settings)
    assert tr.language == "zh" and tr.language_probability > 0.8
    text = "".join(s.text for s in tr.segments)
    hyp = re.sub(r"\W", "", unicodedata.normalize("NFKC", to_simplified(text)))
    cer = jiwer.cer(REFERENCE, hyp)
    print(f"\nhyp: {text}\nCER {cer:.3f} against {REFERENCE}")
    assert sum("\u4e00" <= c <= "\u9fff" for c in hyp) >= 15
    assert cer <= 0.2
    # the words carry the Chinese text with times, ready for the text detectors
    utts = utterances_by_channel(tr, audio.n_channels)
    toks = [t for u in utts for w in u.words for t in canonical_tokens(w.text)]
    assert "".join(toks).startswith("欢迎") and all(w.end >= w.start for u in utts for w in u.words)
