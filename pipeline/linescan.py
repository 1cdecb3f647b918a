"""The line scan: what the audio says about a call before any word is transcribed.

`scan_line` (before transcription): per channel, 20 ms frames with their in-band energy and a
*tonal persistence* measure: the share of a frame's power in spectral peaks that stay on the
same frequency for >= 240 ms. Held notes and tones do that; speech does not (its harmonics
glide with intonation, vowels last ~100 ms). Active frames whose 1 s neighbourhood is mostly
tonal are music. The music spans are masked out of the audio Whisper sees (`muted`) and
any word that still lands inside them is dropped (`drop_words_in_spans`): Whisper invents
words on music even with its VAD on.

The frames serve the detectors after ASR too: holds and dead air start from `quiet_spans`, and
overtalk and interruptions on stereo calls are checked where both channels are active (`both_active`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from callqa.config.settings import HoldSettings
from callqa.pipeline.spans import Span, merge_spans, midpoint_inside, runs, subtract_spans
from callqa.pipeline.types import HOP_S, SAMPLE_RATE, DecodedAudio, LineScan, Transcript, Utterance

_HOP = int(SAMPLE_RATE * HOP_S)  # 320 samples
_NFFT = 1024  # 64 ms: 15.6 Hz bins separate the semitones of hold-music chords above ~250 Hz
_BAND = (150.0, 3600.0)  # telephone band: everything a narrowband line can carry
_PEAK_DB = 15.0  # a spectral peak stands this far above the frame's median in-band level
_PERSIST_FRAMES = 12  # 240 ms: longer than a vowel's steady part, shorter than a held note
_ACTIVE_DB = 12.0  # above the channel's own noise floor
_ACTIVE_MIN_DBFS = -55.0  # and never quieter than this, whatever the floor
_CHUNK_FRAMES = 3000  # one minute of frames per FFT batch bounds memory on hour-long calls
_SMOOTH_FRAMES = 50  # 1 s neighbourhood for the music decision
_GAP_FILL_S = 1.0  # rests in the music shorter than this do not split a hold
_EDGE_REACH_S = 0.5  # music edges are refined this far out over active frames
_MIN_ACTIVITY_S = 0.25  # clicks and pops shorter than this are not someone talking


def both_active(active: np.ndarray, ch_a: int, ch_b: int, a: int, b: int, bridge_s: float) -> np.ndarray:
    """Frames a..b where channels a and b are both active, dips shorter than bridge_s bridged
    (the pauses between syllables and words are still talking)."""
    bridge = max(1, int(round(bridge_s / HOP_S))) | 1
    act_a = maximum_filter1d(active[ch_a, a:b].view(np.uint8), bridge).astype(bool)
    act_b = maximum_filter1d(active[ch_b, a:b].view(np.uint8), bridge).astype(bool)
    return act_a & act_b


def _fill_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Close False runs shorter than max_gap frames that have True on both sides."""
    if max_gap <= 0 or not mask.any():
        return mask
    closed = minimum_filter1d(maximum_filter1d(mask.astype(np.uint8), max_gap + 1), max_gap + 1).astype(bool)
    first, last = np.flatnonzero(mask)[[0, -1]]
    closed[:first] = False
    closed[last + 1 :] = False
    return closed | mask


def _channel_features(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(energy dBFS, tonal persistence) per 20 ms frame of one 16 kHz channel."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_frames = 1 + (x.size - _NFFT) // _HOP if x.size >= _NFFT else 0
    if n_frames <= 0:
        return np.full(0, -120.0), np.zeros(0)
    win = np.hanning(_NFFT).astype(np.float32)
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
    band = np.flatnonzero((freqs >= _BAND[0]) & (freqs <= _BAND[1]))
    lo, hi = int(band[0]), int(band[-1]) + 1
    norm = float(np.sum(win.astype(np.float64) ** 2)) * _NFFT / 2.0
    frames = sliding_window_view(x, _NFFT)[::_HOP][:n_frames]
    energy = np.empty(n_frames)
    tonal = np.empty(n_frames)
    pad = _PERSIST_FRAMES
    # Chunks overlap by the persistence length so peak runs crossing a chunk edge are still seen.
    for a in range(0, n_frames, _CHUNK_FRAMES):
        b = min(n_frames, a + _CHUNK_FRAMES)
        a0, b0 = max(0, a - pad), min(n_frames, b + pad)
        spec = scipy.fft.rfft(frames[a0:b0] * win, axis=1, workers=1)[:, lo:hi]
        power = spec.real**2 + spec.imag**2 + 1e-12
        total = power.sum(axis=1)
        level = 10.0 * np.log10(power)
        median = np.mean(level, axis=1, keepdims=True)  # mean log level: as robust here, 5x cheaper than a median
        peak = np.zeros(power.shape, dtype=bool)
        peak[:, 1:-1] = (
            (level[:, 1:-1] > level[:, :-2]) & (level[:, 1:-1] >= level[:, 2:]) & (level[:, 1:-1] > median + _PEAK_DB)
        )
        # a peak may drift by one bin between frames (vibrato, window edges) and still be "the same"
        near = maximum_filter1d(peak.view(np.uint8), 3, axis=1)
        lasting = maximum_filter1d(minimum_filter1d(near, _PERSIST_FRAMES, axis=0), _PERSIST_FRAMES, axis=0).astype(
            bool
        )
        ton = (power * (peak & lasting)).sum(axis=1) / total
        keep = slice(a - a0, a - a0 + (b - a))
        energy[a:b] = 10.0 * np.log10(total[keep] / norm + 1e-12)
        tonal[a:b] = ton[keep]
    return energy, tonal


def scan_line(audio: DecodedAudio | list[np.ndarray], settings: HoldSettings | None = None) -> LineScan:
    """Frame features and music spans of every channel (16 kHz float32)."""
    settings = settings or HoldSettings()
    channels = audio.channels if isinstance(audio, DecodedAudio) else list(audio)
    duration = max((c.size for c in channels), default=0) / SAMPLE_RATE
    feats = [_channel_features(c) for c in channels]
    n = max((e.size for e, _ in feats), default=0)
    energy = np.full((len(channels), n), -120.0)
    tonal = np.zeros((len(channels), n))
    for i, (en, ton) in enumerate(feats):
        energy[i, : en.size] = en
        tonal[i, : ton.size] = ton
    floors, active, music = [], np.zeros(energy.shape, bool), np.zeros(energy.shape, bool)
    min_frames = int(round(settings.min_music_s / HOP_S))
    for i in range(len(channels)):
        floor = float(np.percentile(energy[i], 10)) if n else -120.0
        floors.append(round(floor, 1))
        active[i] = energy[i] > max(floor + _ACTIVE_DB, _ACTIVE_MIN_DBFS)
        act = active[i].astype(float)
        # tonal share averaged over the active frames of a 1 s neighbourhood
        den = uniform_filter1d(act, _SMOOTH_FRAMES, mode="constant")
        num = uniform_filter1d(tonal[i] * act, _SMOOTH_FRAMES, mode="constant")
        smooth = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        cand = active[i] & (den >= 0.6) & (smooth >= settings.music_tonality)
        cand = _fill_gaps(cand, int(round(_GAP_FILL_S / HOP_S)))
        reach = int(_EDGE_REACH_S / HOP_S)
        for s, e in runs(cand, 1.0):
            if e - s < min_frames:
                continue
            a, b = int(s), int(e)
            # The 1 s smoothing clips each edge; walk out over the still-active frames instead.
            while a > 0 and int(s) - a < reach and active[i, a - 1]:
                a -= 1
            while b < n and b - int(e) < reach and active[i, b]:
                b += 1
            music[i, a:b] = True
    spans = runs(np.any(music, axis=0), HOP_S)
    chans = [
        [i for i in range(len(channels)) if music[i, int(round(s / HOP_S)) : int(round(e / HOP_S))].any()]
        for s, e in spans
    ]
    return LineScan(duration, energy, active, tonal, music, floors, spans, chans)


# ------------------------------------------------------------------------------ ASR protection


def _silence(y: np.ndarray, spans: list[Span], fade: int) -> None:
    for s, e in spans:
        a, b = int(s * SAMPLE_RATE), min(y.size, int(e * SAMPLE_RATE))
        if b <= a:
            continue
        y[a:b] = 0.0
        ra = y[max(0, a - fade) : a]
        ra *= np.linspace(1.0, 0.0, ra.size, dtype=np.float32)
        rb = y[b : b + fade]
        rb *= np.linspace(0.0, 1.0, rb.size, dtype=np.float32)


def mask_spans(audio: DecodedAudio, spans: list[Span], fade_s: float = 0.01) -> DecodedAudio:
    """A copy of `audio` with `spans` silenced on every channel (short fades: no clicks for the VAD)."""
    if not spans:
        return audio
    fade = max(1, int(fade_s * SAMPLE_RATE))
    out = []
    for ch in audio.channels:
        y = np.array(ch, dtype=np.float32, copy=True)
        _silence(y, spans, fade)
        out.append(y)
    return replace(audio, channels=out)


@contextmanager
def muted(audio: DecodedAudio, spans: list[Span], fade_s: float = 0.01) -> Iterator[DecodedAudio]:
    """`audio` with `spans` silenced in place for the duration of the block, then restored exactly.

    What `mask_spans` does without a second copy of the call: on an hour-long stereo call that
    copy is 460 MB of a worker's memory, while the saved samples are only the music's."""
    if not spans:
        yield audio
        return
    fade = max(1, int(fade_s * SAMPLE_RATE))
    saved: list[tuple[np.ndarray, int, np.ndarray]] = []
    for ch in audio.channels:
        for s, e in spans:
            a = max(0, int(s * SAMPLE_RATE) - fade)
            b = min(ch.size, int(e * SAMPLE_RATE) + fade)
            if b > a:
                saved.append((ch, a, ch[a:b].copy()))
    try:
        for ch in audio.channels:
            _silence(ch, spans, fade)
        yield audio
    finally:
        for ch, a, x in saved:  # every copy was taken before any span was silenced
            ch[a : a + x.size] = x


def drop_words_in_spans(transcript: Transcript, spans: list[Span]) -> tuple[Transcript, int]:
    """Remove words whose middle falls inside `spans` (hallucinations on hold music).

    Returns the cleaned transcript and the number of words dropped.
    """
    if not spans:
        return transcript, 0
    dropped = 0
    segments = []
    for seg in transcript.segments:
        words = tuple(w for w in seg.words if not midpoint_inside(w.start, w.end, spans))
        dropped += len(seg.words) - len(words)
        if not words:
            continue
        if len(words) != len(seg.words):
            seg = replace(
                seg,
                words=words,
                start=words[0].start,
                end=max(w.end for w in words),
                text=" ".join(w.text for w in words),
            )
        segments.append(seg)
    return replace(transcript, segments=segments), dropped


# ------------------------------------------------------------------------------ quiet spans


def activity_spans(scan: LineScan, min_s: float = _MIN_ACTIVITY_S) -> list[Span]:
    """Runs where some channel is active with something other than music (speech, mostly)."""
    act = np.any(scan.active & ~scan.music, axis=0)
    return [s for s in runs(act, HOP_S) if s[1] - s[0] >= min_s]


def speech_spans(utterances: list[Utterance]) -> list[Span]:
    return merge_spans([(w.start, w.end) for u in utterances for w in u.words if w.end >= w.start])


def quiet_spans(scan: LineScan, utterances: list[Utterance], *, within_speech: bool = True) -> list[Span]:
    """Where nobody is talking: no word on any channel, no non-music activity, no music.

    Words give the conversation; frame activity catches what ASR left out and sharpens the edges
    (a Whisper word end can drift a few hundred ms into the following silence). Only the stretch
    between the first and last word counts when within_speech (ring-in and hang-up are not silence).
    """
    words = speech_spans(utterances)
    if not words:
        return []
    busy = merge_spans(words + activity_spans(scan) + list(scan.music_spans))
    lo, hi = (words[0][0], words[-1][1]) if within_speech else (0.0, scan.duration_s)
    return [(round(s, 3), round(e, 3)) for s, e in subtract_spans([(lo, hi)], busy) if e - s > 0]
