"""One call through every stage: decode → transcribe → speakers → roles → detect → score.

Plain functions with no Prefect in them, so tests and benchmarks can run a call without a flow;
the flow wraps `process_call` in a task. Models are loaded once into a Toolkit and shared by every
call a worker processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from callqa.config.phrases import PhraseBook, load_phrasebook
from callqa.config.settings import Settings
from callqa.models.asr import WhisperASR
from callqa.pipeline.decode import decode
from callqa.pipeline.discover import metadata_error
from callqa.pipeline.detectors.scripts import ScriptSettings, detect_greeting
from callqa.pipeline.metrics import talk_metrics
from callqa.pipeline.roles import assign_roles
from callqa.pipeline.scoring import Scorecard, ScoringContext, load_scorecard, score_call
from callqa.pipeline.speakers import utterances_by_channel
from callqa.pipeline.transcribe import transcribe
from callqa.pipeline.types import CallFailure, CallQAError, CallResult, CallSource


@dataclass
class Toolkit:
    """What a worker loads once and reuses for every call."""

    settings: Settings
    asr: WhisperASR
    scorecards: list[Scorecard]
    phrasebooks: dict[str, PhraseBook]
    models: dict[str, str] = field(default_factory=dict)

    def phrasebook(self, language: str) -> PhraseBook:
        base = (language or "").split("-")[0].lower()
        if base in self.phrasebooks:
            return self.phrasebooks[base]
        # a language without its own list: fall back to English rather than detecting nothing
        return self.phrasebooks["en"]


def load_toolkit(settings: Settings, workers: int = 1) -> Toolkit:
    # Scorecards and phrase lists are validated before any model loads or any call is touched.
    scorecards = [load_scorecard(s) for s in settings.scorecards]
    phrasebooks = {lang: load_phrasebook(lang) for lang in ("en", "zh")}
    asr = WhisperASR.from_settings(settings.models, workers=workers, num_workers=workers)
    models = {
        "asr": asr.description,
        "diarization": "by-channel (stereo); single speaker (mono)",
        "detectors": "scripts/1",
    }
    return Toolkit(settings, asr, scorecards, phrasebooks, models)


def process_call(source: CallSource, kit: Toolkit) -> CallResult | CallFailure:
    """Run one call; any error becomes a CallFailure naming the file and stage (never raises)."""
    timings: dict[str, float] = {}
    stage = "discover"
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = now - t
        t = now

    try:
        bad_sidecar = metadata_error(source)
        if bad_sidecar is not None:
            raise bad_sidecar
        stage = "decode"
        audio = decode(source.path)
        lap("decode")

        stage = "transcribe"
        language_hint = source.metadata.get("language") or kit.settings.models.asr.language
        transcript = transcribe(audio, kit.asr, kit.settings.models.asr, language=language_hint)
        lap("transcribe")

        stage = "speakers"
        utterances = utterances_by_channel(transcript, audio.n_channels)
        lap("speakers")

        stage = "roles"
        utterances, roles = assign_roles(
            utterances, audio.n_channels, kit.settings.channel_map, source.metadata, path=source.path
        )
        lap("roles")

        stage = "detect"
        det = kit.settings.detect
        events = detect_greeting(
            source.call_id, utterances, kit.phrasebook(transcript.language),
            ScriptSettings(fuzzy_threshold=det.fuzzy_threshold),
        )
        metrics = talk_metrics(utterances, audio.duration_s)
        lap("detect")

        stage = "score"
        ctx = ScoringContext(events=events, duration_s=audio.duration_s, roles_known=bool(roles.mapping), metrics=metrics)
        scores = [score_call(card, ctx) for card in kit.scorecards]
        lap("score")

        return CallResult(
            source=source,
            duration_s=audio.duration_s,
            channels=audio.source_channels,
            sample_rate=audio.source_sample_rate,
            codec=audio.codec,
            language=transcript.language,
            language_probability=transcript.language_probability,
            utterances=utterances,
            events=events,
            metrics=metrics,
            scores=scores,
            models=kit.models,
            roles=roles,
            timings=timings,
            warnings=list(audio.warnings),
        )
    except CallQAError as e:
        msg = str(e) if e.path else f"{source.path}: {e}"
        return CallFailure(source.path, source.call_id, e.stage if e.stage != "pipeline" else stage, msg,
                           permanent=bool(getattr(e, "permanent", False)))
    except Exception as e:  # noqa: BLE001 - one bad call must never stop the batch
        return CallFailure(source.path, source.call_id, stage, f"{source.path}: {type(e).__name__}: {e}", permanent=False)
