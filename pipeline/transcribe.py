"""Transcribe stage: decoded audio -> Transcript (segments with timed words, per channel).

Stereo call recordings carry one party per channel, so each channel is transcribed on its own
(agent and customer never share a segment) and the segments are merged by time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from callqa.config.settings import ASRSettings, Settings
from callqa.pipeline.types import SAMPLE_RATE, AudioError, ConfigError, DecodedAudio, Segment, Transcript

if TYPE_CHECKING:  # keep this module importable without loading faster-whisper
    from callqa.models.asr import WhisperASR

_FRAME = SAMPLE_RATE * 30 // 1000  # 30 ms
_MIN_SPEECH_RMS = 10 ** (-45 / 20)  # -45 dBFS: quieter than that is line noise, not a talker


def dominant_channel(channels: list[np.ndarray]) -> int:
    """The channel with the most frames where it is audibly active and louder than the others.

    Counting "loudest channel" frames rather than raw energy keeps crosstalk (the other party
    bleeding faintly into this channel) from making a quiet channel look busy. Cheap on purpose:
    it only picks where Whisper detects the call's language.
    """
    n = min(len(c) for c in channels) // _FRAME * _FRAME
    if n == 0:
        return int(np.argmax([len(c) for c in channels]))
    rms = np.stack([np.sqrt(np.mean(np.square(c[:n].reshape(-1, _FRAME), dtype=np.float64), axis=1)) for c in channels])
    floor = np.percentile(rms, 10, axis=1, keepdims=True)
    active = (rms > np.maximum(_MIN_SPEECH_RMS, 3.0 * floor)) & (rms >= rms.max(axis=0, keepdims=True))
    return int(np.argmax(active.sum(axis=1)))


def call_language(settings: ASRSettings, metadata: Mapping[str, Any]) -> str | None:
    """The language to force on this call: the sidecar's `language`, else its queue's
    (models.asr.language_by_queue), else models.asr.language; None: Whisper detects it."""
    queue = metadata.get("queue")
    by_queue = settings.language_by_queue.get(str(queue)) if queue is not None else None
    return metadata.get("language") or by_queue or settings.language


def call_vocabulary(settings: Settings, metadata: Mapping[str, Any], path: str | None = None) -> list[str]:
    """The names Whisper should expect on this call: models.asr.vocabulary (default, then the call's
    queue), the detectors' company names, and the sidecar's `vocabulary` (a list, or one string
    separated by ";" or ","), each once (case ignored), in that order."""
    vocab = settings.models.asr.vocabulary
    queue = metadata.get("queue")
    names = [*vocab.default, *(vocab.queues.get(str(queue), []) if queue is not None else [])]
    names += settings.detect.text.company_names
    own = metadata.get("vocabulary")
    if isinstance(own, str):
        names += re.split(r"[;,]", own)
    elif isinstance(own, list) and all(isinstance(x, (str, int, float)) for x in own):
        names += [str(x) for x in own]
    elif own is not None:
        raise ConfigError(path, f"sidecar vocabulary must be a list of names or one string, got {own!r}")
    out: dict[str, str] = {}
    for n in names:
        n = " ".join(n.split())
        if n and n.casefold() not in out:
            out[n.casefold()] = n
    return list(out.values())


def transcribe(
    audio: DecodedAudio,
    asr: WhisperASR,
    settings: ASRSettings,
    language: str | None = None,
    vocabulary: Sequence[str] = (),
) -> Transcript:
    """Mono: one pass. Stereo (or more): every channel separately, one language for the whole call.

    The language is detected once, on the channel with the most speech, and then forced on the
    other channels: detecting per channel can split a call across languages when one side says
    little. `language` (or settings.language) skips detection. `vocabulary` (call_vocabulary):
    names Whisper is told to expect.
    """
    if audio.sample_rate != SAMPLE_RATE:
        raise AudioError(audio.path, f"transcribe needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate} Hz")
    if audio.n_channels == 0:
        raise AudioError(audio.path, "no audio channels to transcribe")

    lang = language or settings.language
    lang_prob = 1.0 if lang else 0.0
    order = list(range(audio.n_channels))
    if audio.n_channels > 1 and lang is None:
        first = dominant_channel(audio.channels)
        order.remove(first)
        order.insert(0, first)

    segments: list[Segment] = []
    for ch in order:
        segs, detected, prob = asr.transcribe_channel(audio.channels[ch], ch, lang, settings, vocabulary)
        if lang is None and detected:
            lang, lang_prob = detected, prob
        segments.extend(segs)

    segments.sort(key=lambda s: (s.start, s.end, s.channel))
    return Transcript(language=lang or "", language_probability=lang_prob, segments=segments, model=asr.description)
