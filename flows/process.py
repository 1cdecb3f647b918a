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
from callqa.models.emotion import LexiconSentiment, TransformersEmotion, load_emotion_model
from callqa.pipeline.decode import decode
from callqa.pipeline.discover import metadata_error
from callqa.pipeline.detectors.text import TextDetectorKit, build_text_kit, detect_text_events
from callqa.pipeline.detectors.emotion import detect_emotion
from callqa.pipeline.detectors.hold import detect_holds, drop_words_in_spans, muted, scan_line
from callqa.pipeline.detectors.pace import detect_pace
from callqa.pipeline.detectors.silence import detect_dead_air
from callqa.pipeline.metrics import talk_metrics
from callqa.pipeline.roles import assign_roles, detect_role_evidence, needs_evidence
from callqa.pipeline.bleed import suppress_bleed
from callqa.pipeline.diarize import (confirm_overtalk_in_audio, find_overtalk, overtalk_events, overtalk_total, run_diarization,
                                     speaker_timelines, timelines_from_utterances, utterances_from_diarization)
from callqa.pipeline.redact import apply_redaction
from callqa.pipeline.scoring import Scorecard, ScoringContext, cards_for_language, load_scorecard, score_call
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
    # emotion: lexicon sentiment always (offline); a transformers classifier when models.emotion is set
    sentiment: LexiconSentiment = field(default_factory=LexiconSentiment)
    emotion: TransformersEmotion | None = None
    # mono calls: pyannote or the offline diarizer (callqa.models.diarization); None: one speaker
    diarizer: object | None = None
    role_text_kit: object | None = None  # fuzzy-only text detectors, for role evidence
    # scripts, conduct, hold cues: phrase indexes and phrase embeddings built once per worker
    text_kit: TextDetectorKit | None = None

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
    from callqa.models.diarization import load_diarizer
    from callqa.pipeline.roles import build_role_text_kit

    diarizer = load_diarizer(settings.models)
    bleed = "with bleed suppression" if settings.models.diarization.bleed_suppression else "no bleed suppression"
    models = {
        "asr": asr.description,
        "diarization": f"stereo: by channel, {bleed}; mono: {diarizer.method}: {diarizer.description}",
    }
    text_kit = build_text_kit(settings, phrasebooks=phrasebooks)
    models["detectors"] = text_kit.description + "".join(f"; {n}" for n in text_kit.notes)
    emotion = load_emotion_model(settings.models)
    models["emotion"] = (f"{emotion.method} ({emotion.resolved.source}) + acoustic arousal" if emotion else
                         "lexicon: vader (en) / snownlp (zh) + domain lexicon + acoustic arousal")
    return Toolkit(settings, asr, scorecards, phrasebooks, models, emotion=emotion, diarizer=diarizer,
                   role_text_kit=build_role_text_kit(settings), text_kit=text_kit)


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

        # Stereo: mute the other party's echo on each leg before ASR hears it twice; channels that
        # are one signal become mono (and are diarized below).
        dia = kit.settings.models.diarization
        if audio.n_channels == 2 and dia.bleed_suppression:
            stage = "bleed"
            audio, bleed = suppress_bleed(audio, dia.identical_channels_corr, in_place=True)
            if bleed.action == "suppressed":
                audio.warnings.append(bleed.describe())
            lap("bleed")

        # Holds are found in the audio before ASR: Whisper must never hear hold music (it invents words).
        stage = "hold_scan"
        scan = scan_line(audio, kit.settings.detect.hold)
        music = scan.music_spans if kit.settings.detect.hold.mask_music_for_asr else []
        lap("hold_scan")

        # The music is silenced in place for ASR and diarization only (restored after): the audio
        # detectors below still hear the line as it was.
        with muted(audio, music):
            stage = "transcribe"
            language_hint = source.metadata.get("language") or kit.settings.models.asr.language
            transcript = transcribe(audio, kit.asr, kit.settings.models.asr, language=language_hint)
            transcript, _ = drop_words_in_spans(transcript, scan.music_spans)
            lap("transcribe")

            stage = "speakers"
            annotation, uncertain = None, []
            if audio.n_channels == 1 and kit.diarizer is not None:
                # hold music must not become a "speaker"
                diarization = run_diarization(kit.diarizer, audio.channels[0], dia, uri=source.call_id)
                annotation, uncertain = diarization.annotation, diarization.uncertain
                utterances = utterances_from_diarization(transcript, annotation)
            else:
                utterances = utterances_by_channel(transcript, audio.n_channels)
        lap("speakers")

        stage = "roles"
        evidence = None
        if needs_evidence(audio.n_channels, kit.settings.channel_map, source.metadata, source.path):
            evidence = detect_role_evidence(source.call_id, utterances, transcript.language, kit.role_text_kit)
        utterances, roles = assign_roles(
            utterances, audio.n_channels, kit.settings.channel_map, source.metadata, path=source.path,
            evidence=evidence, uncertain=uncertain,
        )
        overtalk = find_overtalk(speaker_timelines(annotation) if annotation is not None
                                 else timelines_from_utterances(utterances))
        if annotation is None and audio.n_channels > 1:
            overtalk = confirm_overtalk_in_audio(overtalk, scan.active,
                                                 {u.speaker: u.channel for u in utterances if u.channel is not None})
        lap("roles")

        stage = "detect"
        det = kit.settings.detect
        if kit.text_kit is None:  # a hand-made Toolkit: compile the text detectors once, here
            kit.text_kit = build_text_kit(kit.settings, phrasebooks=kit.phrasebooks)
        events = detect_text_events(source.call_id, utterances, transcript.language, kit.text_kit)
        lap("detect_text")  # timed apart from the audio/timing detectors below (both count as "detectors")
        metrics = talk_metrics(utterances, audio.duration_s)
        # audio/timing detectors after the text ones: holds pair with their hold_announced/hold_thanked events
        hold_events, hold_metrics, holds = detect_holds(source.call_id, scan, utterances, events, det.hold)
        dead_events, dead_metrics = detect_dead_air(source.call_id, scan, utterances, holds, det.silence)
        pace_events, pace_metrics = detect_pace(source.call_id, utterances, scan, transcript.language, det.pace)
        utterances, emo_events, emo_metrics = detect_emotion(
            source.call_id, utterances, audio, scan, transcript.language, kit.sentiment, kit.emotion, det.emotion,
            conduct=events,
        )
        events = events + hold_events + dead_events + pace_events + emo_events
        events += overtalk_events(source.call_id, overtalk, utterances, dict(roles.mapping))
        metrics["overtalk_total_s"] = overtalk_total(overtalk)
        for extra in (hold_metrics, dead_metrics, pace_metrics, emo_metrics):
            metrics.update(extra)
        lap("detect")

        stage = "score"
        ctx = ScoringContext(events=events, duration_s=audio.duration_s, roles_known=bool(roles.mapping), metrics=metrics)
        scores = [score_call(card, ctx) for card in cards_for_language(kit.scorecards, transcript.language)]
        lap("score")

        result = CallResult(
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
        # PII leaves the worker already redacted (unless turned off): the writer never sees raw text.
        stage = "redact"
        result = apply_redaction(result, kit.settings.redaction, audio)
        lap("redact")
        return result
    except CallQAError as e:
        msg = str(e) if e.path else f"{source.path}: {e}"
        return CallFailure(source.path, source.call_id, e.stage if e.stage != "pipeline" else stage, msg,
                           permanent=bool(getattr(e, "permanent", False)))
    except Exception as e:  # noqa: BLE001 - one bad call must never stop the batch
        return CallFailure(source.path, source.call_id, stage, f"{source.path}: {type(e).__name__}: {e}", permanent=False,
                           transient=isinstance(e, (OSError, MemoryError)))
