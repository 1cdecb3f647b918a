"""One call through every stage, in the README's order:

discover/sidecar → decode → bleed → hold scan → transcribe → speakers → roles → detect → scorability → score
→ redact

Plain functions with no Prefect in them, so tests and benchmarks can run a call without a flow;
the flow wraps `process_call` in a task. Models are loaded once into a Toolkit (callqa.pipeline.toolkit)
and shared by every call a worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from callqa.pipeline.bleed import suppress_bleed
from callqa.pipeline.decode import decode
from callqa.pipeline.detect import run_detectors
from callqa.pipeline.diarize import run_diarization, utterances_from_diarization
from callqa.pipeline.discover import METADATA_WARNINGS, metadata_error
from callqa.pipeline.lexicon_fix import correct_transcript
from callqa.pipeline.linescan import drop_words_in_spans, muted, scan_line
from callqa.pipeline.redact import apply_redaction
from callqa.pipeline.roles import assign_roles, detect_role_evidence, needs_evidence
from callqa.pipeline.scorability import assess, grade_all
from callqa.pipeline.scoring import ScoringContext, cards_for_language
from callqa.pipeline.speakers import utterances_by_channel
from callqa.pipeline.toolkit import Toolkit
from callqa.pipeline.transcribe import call_language, call_vocabulary, transcribe
from callqa.pipeline.types import CallFailure, CallQAError, CallResult, CallSource
from callqa.pipeline.writing import tag_languages


class Stages:
    """Times each stage and remembers which one is running, so that a failure names it.

    `with stages("detect", timing="detect_text")`: the block fails as stage "detect" but is timed
    under its own key (benches and the detector evaluation read the timings by these names);
    `timed=False` leaves a stage untimed.
    """

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.current = "discover"

    @contextmanager
    def __call__(self, name: str, *, timing: str | None = None, timed: bool = True) -> Iterator[None]:
        self.current = name
        start = time.perf_counter()
        yield
        if timed:
            self.timings[timing or name] = time.perf_counter() - start


def process_call(source: CallSource, kit: Toolkit) -> CallResult | CallFailure:
    """Run one call; any error becomes a CallFailure naming the file and stage (never raises)."""
    stage = Stages()
    try:
        with stage("discover", timed=False):
            bad_sidecar = metadata_error(source)
            if bad_sidecar is not None:
                raise bad_sidecar

        with stage("decode"):
            audio = decode(source.path)

        # Stereo: mute the other party's echo on each leg before ASR hears it twice; channels that
        # are one signal become mono (and are diarized below).
        dia = kit.settings.models.diarization
        if audio.n_channels == 2 and dia.bleed_suppression:
            with stage("bleed"):
                audio, bleed = suppress_bleed(audio, dia.identical_channels_corr, in_place=True)
                if bleed.action == "suppressed":
                    audio.warnings.append(bleed.describe())

        # Holds are found in the audio before ASR: Whisper must never hear hold music (it invents words).
        with stage("hold_scan"):
            scan = scan_line(audio, kit.settings.detect.hold)
            music = scan.music_spans if kit.settings.detect.hold.mask_music_for_asr else []

        # The music is silenced in place for ASR and diarization only (restored after): the audio
        # detectors below still hear the line as it was.
        with muted(audio, music):
            with stage("transcribe"):
                language_hint = call_language(kit.settings.models.asr, source.metadata)
                vocabulary = call_vocabulary(kit.settings, source.metadata, source.path)
                transcript = transcribe(
                    audio, kit.asr, kit.settings.models.asr, language=language_hint, vocabulary=vocabulary
                )
                transcript, _ = drop_words_in_spans(transcript, scan.music_spans)
                # every stored text (utterances, words, evidence, rationales) is built from these words
                transcript = kit.simplifier.transcript(transcript)
                transcript = correct_transcript(transcript, kit.lexicon, kit.settings.models.asr, vocabulary)

            with stage("speakers"):
                annotation, uncertain = None, []
                if audio.n_channels == 1 and kit.diarizer is not None:
                    # hold music must not become a "speaker"
                    diarization = run_diarization(kit.diarizer, audio.channels[0], dia, uri=source.call_id)
                    annotation, uncertain = diarization.annotation, diarization.uncertain
                    utterances = utterances_from_diarization(transcript, annotation, uncertain)
                else:
                    utterances = utterances_by_channel(transcript, audio.n_channels)
                utterances = tag_languages(utterances, transcript.language)

        with stage("roles"):
            # The evidence is detected again, not reused from the detect stage: it is found with the
            # fuzzy-only role kit over every speaker's lines (roles unknown), while the events of the
            # call come from the full kit (semantic matching) with each list applied to its role only
            # and the opening/closing turns taken from the agent's turns; the two sets differ.
            evidence = None
            if needs_evidence(audio.n_channels, kit.settings.channel_map, source.metadata, source.path):
                evidence = detect_role_evidence(source.call_id, utterances, transcript.language, kit.role_text_kit)
            utterances, roles = assign_roles(
                utterances,
                audio.n_channels,
                kit.settings.channel_map,
                source.metadata,
                path=source.path,
                evidence=evidence,
                uncertain=uncertain,
            )

        found = run_detectors(
            source.call_id, audio, scan, utterances, transcript.language, roles, annotation, kit, stage=stage
        )

        # A recording that cannot show how the agent did (cut short, a clip, a tone, one party's leg) is
        # not graded; the agent's leg alone is graded on what it shows (callqa.pipeline.scorability).
        with stage("scorability"):
            scorability = assess(
                audio.duration_s,
                audio.warnings,
                found.utterances,
                found.events,
                roles,
                kit.settings.scorability,
                single_track=audio.n_channels == 1,
                diarized=annotation is not None,
            )

        with stage("score"):
            ctx = ScoringContext(
                events=found.events, duration_s=audio.duration_s, roles_known=bool(roles.mapping), metrics=found.metrics
            )
            scores = grade_all(cards_for_language(kit.scorecards, transcript.language), ctx, scorability)

        result = CallResult(
            source=source,
            duration_s=audio.duration_s,
            channels=audio.source_channels,
            sample_rate=audio.source_sample_rate,
            codec=audio.codec,
            language=transcript.language,
            language_probability=transcript.language_probability,
            utterances=found.utterances,
            events=found.events,
            metrics=found.metrics,
            scores=scores,
            models=kit.models,
            roles=roles,
            timings=stage.timings,
            # decode's, then discovery's about the metadata (a file name not matching the pattern)
            warnings=list(audio.warnings) + list(source.metadata.get(METADATA_WARNINGS, [])),
            scorability=scorability,
        )
        # PII leaves the worker already redacted (unless turned off): the writer never sees raw text.
        with stage("redact"):
            result = apply_redaction(result, kit.settings.redaction, audio)
        return result
    except CallQAError as e:
        msg = str(e) if e.path else f"{source.path}: {e}"
        return CallFailure(
            source.path,
            source.call_id,
            e.stage if e.stage != "pipeline" else stage.current,
            msg,
            permanent=bool(getattr(e, "permanent", False)),
        )
    except Exception as e:  # noqa: BLE001 - one bad call must never stop the batch
        return CallFailure(
            source.path,
            source.call_id,
            stage.current,
            f"{source.path}: {type(e).__name__}: {e}",
            permanent=False,
            transient=isinstance(e, (OSError, MemoryError)),
        )
