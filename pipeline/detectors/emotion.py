"""Emotion per utterance: text sentiment (classifier or lexicon) and acoustic arousal.

Text says *what* the caller feels about the call ("this is ridiculous"); the voice says *how
strongly* (louder and higher than their own usual). Arousal is measured against each speaker's
own baseline (median over their turns), never against an absolute scale: one caller's normal
voice is another's shout, and an 8 kHz line moves every absolute level.

Arousal only intensifies a turn whose words are already negative; a loud but neutral turn stays
neutral (people raise their voice on a bad line too). Labels: angry (negative and aroused),
negative, neutral, positive, or a configured classifier's own labels. The method used is stored
with every utterance (`emotion_method`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.fft

from callqa.config.settings import EmotionSettings
from callqa.models.emotion import LexiconSentiment, TransformersEmotion, valence_of
from callqa.pipeline.types import SAMPLE_RATE, DecodedAudio, Event, LineScan, Utterance, new_event_id

DETECTOR_VERSION = "emotion/1"

_F0_MIN, _F0_MAX = 70.0, 400.0
_PITCH_FRAME = 640  # 40 ms: two periods of a 50 Hz voice
_PITCH_HOP = 320
_VOICED_R = 0.5  # normalised autocorrelation peak of a voiced frame
_ENERGY_SPREAD_DB = 2.0  # floors on a speaker's spread, so a monotone speaker's tiny variations
_PITCH_SPREAD_ST = 1.5  # do not read as shouting


def utterance_pitch_st(x: np.ndarray) -> float | None:
    """Median F0 of the voiced frames, in semitones re 100 Hz (autocorrelation pitch), or None."""
    if x.size < _PITCH_FRAME:
        return None
    n = 1 + (x.size - _PITCH_FRAME) // _PITCH_HOP
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float32), _PITCH_FRAME)[::_PITCH_HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.sum(frames.astype(np.float64) ** 2, axis=1)
    loud = energy > 0.1 * np.median(energy[energy > 0]) if np.any(energy > 0) else np.zeros(n, bool)
    if not loud.any():
        return None
    frames = frames[loud]
    spec = scipy.fft.rfft(frames, n=2 * _PITCH_FRAME, axis=1, workers=1)
    ac = scipy.fft.irfft(spec.real**2 + spec.imag**2, axis=1, workers=1)[:, :_PITCH_FRAME]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(SAMPLE_RATE / _F0_MAX), int(SAMPLE_RATE / _F0_MIN)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(ac.shape[0]), lag]
    voiced = peak >= _VOICED_R
    if voiced.sum() < 3:
        return None
    f0 = SAMPLE_RATE / lag[voiced]
    return float(12.0 * np.log2(np.median(f0) / 100.0))


def _utterance_level_db(scan: LineScan | None, channel: int, u: Utterance) -> float | None:
    if scan is None or channel >= scan.energy_db.shape[0]:
        return None
    a, b = scan.frame(u.start), scan.frame(u.end)
    act = scan.active[channel, a:b]
    if act.sum() < 5:
        return None
    return float(np.median(scan.energy_db[channel, a:b][act]))


def arousal_scores(
    utterances: list[Utterance], audio: DecodedAudio | None, scan: LineScan | None
) -> list[float | None]:
    """Per utterance: loudness and pitch above the speaker's own median, in robust z-units (mean of both)."""
    feats: list[tuple[float | None, float | None]] = []
    mono = None
    for u in utterances:
        ch = u.channel if (u.channel is not None and audio is not None and u.channel < audio.n_channels) else 0
        level = _utterance_level_db(scan, ch, u)
        pitch = None
        if audio is not None:
            if u.channel is None and audio.n_channels > 1:
                mono = audio.mono() if mono is None else mono
                sig = mono
            else:
                sig = audio.channels[ch]
            a, b = int(u.start * SAMPLE_RATE), int(u.end * SAMPLE_RATE)
            pitch = utterance_pitch_st(sig[a:b])
        feats.append((level, pitch))
    out: list[float | None] = [None] * len(utterances)
    for spk in {u.speaker for u in utterances}:
        idx = [i for i, u in enumerate(utterances) if u.speaker == spk]
        zs: dict[int, list[float]] = {i: [] for i in idx}
        for k, floor in ((0, _ENERGY_SPREAD_DB), (1, _PITCH_SPREAD_ST)):
            vals = [(i, x) for i in idx if (x := feats[i][k]) is not None]
            if len(vals) < 3:  # no baseline from one or two turns
                continue
            v = np.array([x for _, x in vals])
            med = float(np.median(v))
            spread = max(1.4826 * float(np.median(np.abs(v - med))), floor)
            for i, x in vals:
                zs[i].append((x - med) / spread)
        for i in idx:
            if zs[i]:
                out[i] = float(np.clip(np.mean(zs[i]), -3.0, 3.0))
    return out


def _label(sentiment: float, arousal: float | None, settings: EmotionSettings) -> tuple[str, float]:
    if sentiment <= settings.negative_threshold:
        if arousal is not None and arousal >= 0.75:
            return "angry", min(1.0, abs(sentiment))
        return "negative", min(1.0, abs(sentiment))
    if sentiment >= 0.4:
        return "positive", min(1.0, sentiment)
    return "neutral", round(1.0 - abs(sentiment), 3)


def _clip_of(u: Utterance, audio: DecodedAudio) -> np.ndarray:
    sig = audio.channels[u.channel] if (u.channel is not None and u.channel < audio.n_channels) else audio.mono()
    return np.asarray(sig[int(u.start * SAMPLE_RATE) : int(u.end * SAMPLE_RATE)], dtype=np.float32)


def detect_emotion(
    call_id: str,
    utterances: list[Utterance],
    audio: DecodedAudio | None,
    scan: LineScan | None,
    language: str | None,
    lexicon: LexiconSentiment,
    model: TransformersEmotion | None = None,
    settings: EmotionSettings | None = None,
    conduct: list[Event] | None = None,
) -> tuple[list[Utterance], list[Event], dict[str, float | None]]:
    """Utterances with emotion fields filled, `negative_emotion` events (customer), emotion metrics.

    `conduct`: the text detectors' events. A customer turn they mark as a complaint or an escalation
    request voices dissatisfaction, so it is negative even where the lexicon misses it (measured on the
    Mandarin held-out transcripts: SnowNLP alone found 2 of 8 negative turns such as 你们这也太黑了吧,
    with the complaint/escalation cue 8 of 8, no false alarm on either set).
    """
    settings = settings or EmotionSettings()
    complained = {
        e.data.get("utt_seq"): e.type
        for e in (conduct or [])
        if e.type in ("complaint", "escalation_request") and e.role == "customer"
    }
    arousal = arousal_scores(utterances, audio, scan)
    text_scores = [lexicon.score(u.text, language) for u in utterances]
    model_probs: list[dict[str, float] | None] = [None] * len(utterances)
    if model is not None and utterances:
        if model.kind == "text":
            model_probs = list(model.predict_text([u.text for u in utterances]))
        elif audio is not None:
            model_probs = list(model.predict_audio([_clip_of(u, audio) for u in utterances]))

    out: list[Utterance] = []
    events: list[Event] = []
    for i, u in enumerate(utterances):
        ts, ar, probs = text_scores[i], arousal[i], model_probs[i]
        sentiment = ts.sentiment
        method = ts.method
        if probs is not None:
            v = valence_of(probs)
            if v is not None:
                sentiment, method = v, model.method  # type: ignore[union-attr]
            else:
                method = f"{model.method}; sentiment {ts.method}"  # type: ignore[union-attr]
        if ar is not None:
            method += "+arousal"
            if sentiment < 0:  # a raised voice makes negative words angrier, never neutral ones negative
                sentiment = max(-1.0, sentiment - settings.arousal_weight * max(0.0, ar))
        if u.role == "customer" and u.seq in complained and sentiment > settings.negative_threshold:
            sentiment = settings.negative_threshold
            method += f"+{complained[u.seq]}"
        if probs is not None:
            label = max(probs, key=probs.__getitem__)
            score = float(probs[label])
        else:
            label, score = _label(sentiment, ar, settings)
        nu = replace(
            u, emotion=label, emotion_score=round(score, 3), emotion_method=method, sentiment=round(sentiment, 3)
        )
        out.append(nu)
        if u.role == "customer" and sentiment <= settings.negative_threshold and u.words:
            evidence = (
                f'"{" ".join(u.text.split())[:200]}" (sentiment {sentiment:+.2f}'
                + (f", arousal {ar:+.1f}" if ar is not None else "")
                + f"; {method})"
            )
            events.append(
                Event(
                    "negative_emotion",
                    u.start,
                    u.end,
                    u.speaker,
                    u.role,
                    evidence,
                    round(min(1.0, abs(sentiment)), 3),
                    DETECTOR_VERSION,
                    {
                        "emotion": label,
                        "sentiment": round(sentiment, 3),
                        "arousal": None if ar is None else round(ar, 2),
                        "method": method,
                        "utt_seq": u.seq,
                    },
                    new_event_id(call_id, "negative_emotion", u.start, u.end, u.speaker),
                )
            )
    return out, events, emotion_metrics(out, len(events), settings)


def emotion_metrics(utterances: list[Utterance], n_negative: int, settings: EmotionSettings) -> dict[str, float | None]:
    cust = [u.sentiment for u in utterances if u.role == "customer" and u.sentiment is not None and u.words]
    if not cust:
        return {
            "customer_emotion_start": None,
            "customer_emotion_end": None,
            "negative_emotion_count": float(n_negative) if any(u.role == "customer" for u in utterances) else None,
        }
    k = min(settings.edge_turns, max(1, len(cust) // 2))
    return {
        "customer_emotion_start": round(float(np.mean(cust[:k])), 3),
        "customer_emotion_end": round(float(np.mean(cust[-k:])), 3),
        "negative_emotion_count": float(n_negative),
    }
