"""The names Whisper is told to expect (models.asr.vocabulary, the company names, the sidecar) and
the options that reach faster-whisper; no model is loaded here."""

from __future__ import annotations

import pytest

from callqa.config.settings import ASRSettings, load_settings
from callqa.models.asr import WhisperASR
from callqa.pipeline.transcribe import call_vocabulary
from callqa.pipeline.types import ConfigError


def _settings(**asr):
    return load_settings(
        overrides={
            "models": {"asr": asr},
            "detect": {"text": {"company_names": ["ACME Bank"]}},
        }
    )


def test_vocabulary_joins_default_queue_company_and_sidecar_names_once_in_order():
    s = _settings(vocabulary={"default": ["Rewards card", "acme bank"], "queues": {"billing": ["AutoPay"]}})
    assert call_vocabulary(s, {}) == ["Rewards card", "acme bank"]
    assert call_vocabulary(s, {"queue": "billing"}) == ["Rewards card", "acme bank", "AutoPay"]
    assert call_vocabulary(s, {"queue": "sales", "vocabulary": "Babu; Big  Jim's Auto,"}) == [
        "Rewards card",
        "acme bank",
        "Babu",
        "Big Jim's Auto",
    ]
    assert call_vocabulary(s, {"vocabulary": ["Babu", 7]}) == ["Rewards card", "acme bank", "Babu", "7"]


def test_no_names_configured_means_no_vocabulary():
    assert call_vocabulary(load_settings(), {"queue": "billing"}) == []


def test_a_malformed_sidecar_vocabulary_names_the_file():
    with pytest.raises(ConfigError, match="call.json.*vocabulary"):
        call_vocabulary(load_settings(), {"vocabulary": {"a": 1}}, "call.json")


def test_unknown_vocabulary_keys_are_rejected():
    with pytest.raises(Exception, match="extra|forbidden|permitted"):
        ASRSettings.model_validate({"vocabulary": {"default": [], "queue": {}}})


def test_options_reaching_faster_whisper():
    asr = object.__new__(WhisperASR)  # _options reads only its arguments
    base = ASRSettings()
    opts = asr._options("en", base)
    assert "hotwords" not in opts and "initial_prompt" not in opts
    assert opts["vad_parameters"] == {"min_silence_duration_ms": 500, "speech_pad_ms": 400, "threshold": 0.5}
    assert asr._options("en", base, ["ACME Bank", "Babu"])["hotwords"] == "ACME Bank, Babu"
    prompt = base.model_copy(update={"vocabulary_as": "initial_prompt"})
    opts = asr._options("en", prompt, ["ACME Bank"])
    assert opts["initial_prompt"] == "ACME Bank" and "hotwords" not in opts
    assert "vad_parameters" not in asr._options("en", base.model_copy(update={"vad_filter": False}))
