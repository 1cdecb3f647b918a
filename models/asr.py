"""faster-whisper adapter: load the model once per worker, turn its output into callqa records."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from callqa.config.settings import ASRSettings, ModelSettings
from callqa.models.device import choose_device
from callqa.models.getter import ResolvedModel, resolve_asr
from callqa.pipeline.types import SAMPLE_RATE, ModelUnavailable, Segment, Word

# Below this there is nothing Whisper can transcribe; faster-whisper would still "detect" a language.
_MIN_SAMPLES = SAMPLE_RATE // 10


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class WhisperASR:
    """One loaded faster-whisper model; reuse it for every call a worker processes."""

    def __init__(self, resolved: ResolvedModel, settings: ASRSettings, *, workers: int = 1, num_workers: int = 1):
        from faster_whisper import WhisperModel

        self.resolved = resolved
        self.device, self.compute_type = choose_device(settings)
        # cpu_threads=0 means "share the cores between the batch's workers" rather than
        # CTranslate2's default of 4, which oversubscribes small machines.
        self.cpu_threads = settings.cpu_threads or max(1, _available_cores() // max(1, workers))
        try:
            self.model = WhisperModel(
                str(resolved.location),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=num_workers,
            )
        except (RuntimeError, ValueError, OSError) as e:
            raise ModelUnavailable(resolved.location, f"faster-whisper could not load the model: {e}") from e

    @classmethod
    def from_settings(cls, models: ModelSettings, *, workers: int = 1, num_workers: int = 1) -> WhisperASR:
        resolved = resolve_asr(models.asr, models.cache_dir, hf_token=models.hf_token)
        return cls(resolved, models.asr, workers=workers, num_workers=num_workers)

    @property
    def description(self) -> str:
        """For the calls.models column, e.g. "whisper base (pypi-package:...) int8 cpu"."""
        return f"whisper {self.resolved.name} ({self.resolved.source}) {self.compute_type} {self.device}"

    def _options(self, language: str | None, settings: ASRSettings, vocabulary: Sequence[str] = ()) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "language": language,
            "beam_size": settings.beam_size,
            "word_timestamps": True,
            "vad_filter": settings.vad_filter,
            "condition_on_previous_text": settings.condition_on_previous_text,
            # faster-whisper honours this only with word timestamps, which are always on here.
            "hallucination_silence_threshold": settings.hallucination_silence_threshold,
        }
        if settings.vad_filter:
            opts["vad_parameters"] = {
                "min_silence_duration_ms": settings.vad_min_silence_ms,
                "speech_pad_ms": settings.vad_speech_pad_ms,
                "threshold": settings.vad_threshold,
            }
        prompt = settings.prompt_zh if (language or "").split("-")[0].lower() == "zh" and settings.prompt_zh else None
        if vocabulary:
            # Whisper reads either as text it has just heard: each speech chunk is decoded after it
            names = ("，" if prompt else ", ").join(vocabulary)
            if settings.vocabulary_as == "initial_prompt" and prompt:
                prompt = f"{prompt}{names}。"
            else:
                opts[settings.vocabulary_as] = names
        if prompt:
            opts["initial_prompt"] = prompt
        return opts

    def _detect_language(self, samples: np.ndarray, settings: ASRSettings) -> tuple[str, float]:
        """Whisper's own language detection (first 30 s of speech), run before decoding so that a
        Mandarin call gets the Simplified prompt: transcribe() would detect too late for that."""
        from faster_whisper.vad import VadOptions

        vad = VadOptions(
            min_silence_duration_ms=settings.vad_min_silence_ms,
            speech_pad_ms=settings.vad_speech_pad_ms,
            threshold=settings.vad_threshold,
        )
        try:
            lang, prob, _ = self.model.detect_language(samples, vad_filter=settings.vad_filter, vad_parameters=vad)
        except ValueError:  # no speech at all after VAD: let transcribe() decide as before
            return "", 0.0
        return lang, float(prob)

    def transcribe_channel(
        self,
        samples: np.ndarray,
        channel: int,
        language: str | None,
        settings: ASRSettings,
        vocabulary: Sequence[str] = (),
    ) -> tuple[list[Segment], str, float]:
        """Transcribe one channel of 16 kHz float32 audio; `vocabulary`: names Whisper should expect.

        Returns (segments, language, language_probability). When `language` is None it is detected
        here; if nothing was transcribed the detection is meaningless (Whisper names a language even
        for silence), so "" and 0.0 come back and the caller can detect on another channel.
        """
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"transcribe_channel expects one channel (1-D samples), got shape {samples.shape}")
        if samples.size < _MIN_SAMPLES:
            return [], language or "", 1.0 if language else 0.0

        detected: tuple[str, float] | None = None
        if language is None and settings.prompt_zh:
            detected = self._detect_language(samples, settings)
            if detected[0]:
                language = detected[0]
        opts = self._options(language, settings, vocabulary)
        if settings.batch_size > 0:
            from faster_whisper import BatchedInferencePipeline

            # One pipeline per call: it is a thin wrapper, but it keeps per-transcription state
            # (last_speech_timestamp), and the batch's worker threads share this model.
            pipeline = BatchedInferencePipeline(self.model)
            raw, info = pipeline.transcribe(samples, batch_size=settings.batch_size, **opts)
        else:
            raw, info = self.model.transcribe(samples, **opts)

        segments = [s for s in (_to_segment(r, channel) for r in raw) if s is not None]
        if detected is not None and detected[0]:
            # detected here, forced on the decoder: report the detection, not the forced 1.0
            return (segments, detected[0], detected[1]) if segments else ([], "", 0.0)
        if language is None and not segments:
            return [], "", 0.0
        return segments, info.language, float(info.language_probability)


def _to_segment(raw: Any, channel: int) -> Segment | None:
    start, end = float(raw.start), float(raw.end)
    if end < start:
        end = start
    text = (raw.text or "").strip()
    words = _clean_words(raw.words or (), start, end, channel)
    if not words and text:
        words = _spread_words(text, start, end, float(raw.avg_logprob), channel)
    if not words:
        return None
    return Segment(
        start=start,
        end=end,
        text=text,
        words=tuple(words),
        channel=channel,
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
    )


def _clean_words(raw_words: Iterable[Any], seg_start: float, seg_end: float, channel: int) -> list[Word]:
    """Every word gets non-empty text and a start/end inside its segment.

    Downstream stages assign speakers and cite evidence by word times, so a word without a time
    (faster-whisper can leave them out around numbers) takes its neighbours' bounds instead.
    """
    items = [w for w in raw_words if (w.word or "").strip()]
    out: list[Word] = []
    prev_end = seg_start
    for i, w in enumerate(items):
        start = float(w.start) if w.start is not None else prev_end
        if w.end is not None:
            end = float(w.end)
        else:
            nxt = next((float(x.start) for x in items[i + 1 :] if x.start is not None), seg_end)
            end = max(start, nxt)
        start = min(max(start, seg_start), seg_end)
        end = min(max(end, start), seg_end)
        prob = float(w.probability) if w.probability is not None else 0.0
        out.append(Word(start=start, end=end, text=w.word.strip(), probability=prob, channel=channel))
        prev_end = end
    return out


def _spread_words(text: str, start: float, end: float, avg_logprob: float, channel: int) -> list[Word]:
    """A segment whose alignment produced no words still needs words, or it would vanish from
    utterances: split its text and share the segment's span evenly (probability from the segment)."""
    tokens = text.split()
    step = (end - start) / len(tokens)
    prob = float(min(1.0, math.exp(avg_logprob)))
    return [
        Word(start=start + i * step, end=start + (i + 1) * step, text=t, probability=prob, channel=channel)
        for i, t in enumerate(tokens)
    ]
