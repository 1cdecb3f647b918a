"""Holds, measured from the audio and paired with what the agent said around them.

A hold is where the line carries no conversation: hold music (or tones) or a muted, silent line.
Text alone cannot time a hold ("please hold" says one is coming, not how long it lasted), so the
span comes from the audio and the text cues only say whether it was announced and thanked.

Two stages, because the first must run before ASR:

1. `scan_line` (before transcription): per channel, 20 ms frames with their in-band energy and a
   *tonal persistence* measure: the share of a frame's power in spectral peaks that stay on the
   same frequency for >= 240 ms. Held notes and tones do that; speech does not (its harmonics
   glide with intonation, vowels last ~100 ms). Active frames whose 1 s neighbourhood is mostly
   tonal are music. The music spans are masked out of the audio Whisper sees (`muted`) and
   any word that still lands inside them is dropped (`drop_words_in_spans`): Whisper invents
   words on music even with its VAD on.
2. `detect_holds` (after the text detectors): music spans and long quiet spans (no words, no
   non-music activity on any channel) become holds when long enough; `hold_announced` events
   before and `hold_thanked` events after are linked; unannounced holds are flagged.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from callqa.config.settings import HoldSettings
from callqa.pipeline.types import SAMPLE_RATE, DecodedAudio, Event, Transcript, Utterance, new_event_id

DETECTOR_VERSION = "hold/1"

HOP_S = 0.02
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


Span = tuple[float, float]


@dataclass
class LineScan:
    """Frame features of every channel (hop HOP_S) and the music spans found in them."""

    duration_s: float
    energy_db: np.ndarray  # [channels, frames] in-band level, dBFS
    active: np.ndarray  # [channels, frames] bool: above the channel's noise floor
    tonal: np.ndarray  # [channels, frames] 0..1 share of power in persistent peaks
    music: np.ndarray  # [channels, frames] bool
    noise_floor_db: list[float]
    music_spans: list[Span] = field(default_factory=list)  # any channel, merged, seconds
    music_channels: list[list[int]] = field(default_factory=list)  # which channels carry each span

    @property
    def n_frames(self) -> int:
        return int(self.energy_db.shape[1])

    def frame(self, t: float) -> int:
        return int(min(max(round(t / HOP_S), 0), self.n_frames))

    def activity_spans(self, min_s: float = _MIN_ACTIVITY_S) -> list[Span]:
        """Runs where some channel is active with something other than music (speech, mostly)."""
        act = np.any(self.active & ~self.music, axis=0)
        return [s for s in runs(act, HOP_S) if s[1] - s[0] >= min_s]


def both_active(active: np.ndarray, ch_a: int, ch_b: int, a: int, b: int, bridge_s: float) -> np.ndarray:
    """Frames a..b where channels a and b are both active, dips shorter than bridge_s bridged
    (the pauses between syllables and words are still talking)."""
    bridge = max(1, int(round(bridge_s / HOP_S))) | 1
    act_a = maximum_filter1d(active[ch_a, a:b].view(np.uint8), bridge).astype(bool)
    act_b = maximum_filter1d(active[ch_b, a:b].view(np.uint8), bridge).astype(bool)
    return act_a & act_b


def runs(mask: np.ndarray, hop_s: float) -> list[Span]:
    """(start, end) seconds of each run of True frames."""
    if mask.size == 0:
        return []
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(round(float(a) * hop_s, 3), round(float(b) * hop_s, 3)) for a, b in zip(d[::2], d[1::2])]


def _fill_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Close False runs shorter than max_gap frames that have True on both sides."""
    if max_gap <= 0 or not mask.any():
        return mask
    closed = minimum_filter1d(maximum_filter1d(mask.astype(np.uint8), max_gap + 1), max_gap + 1).astype(bool)
    first, last = np.flatnonzero(mask)[[0, -1]]
    closed[:first] = False
    closed[last + 1:] = False
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
    frames = sliding_window_view(x, _NFFT)[:: _HOP][:n_frames]
    energy = np.empty(n_frames)
    tonal = np.empty(n_frames)
    pad = _PERSIST_FRAMES
    # Chunks overlap by the persistence length so peak runs crossing a chunk edge are still seen.
    for a in range(0, n_frames, _CHUNK_FRAMES):
        b = min(n_frames, a + _CHUNK_FRAMES)
        a0, b0 = max(0, a - pad), min(n_frames, b + pad)
        spec = scipy.fft.rfft(frames[a0:b0] * win, axis=1, workers=1)[:, lo:hi]
        power = spec.real ** 2 + spec.imag ** 2 + 1e-12
        total = power.sum(axis=1)
        level = 10.0 * np.log10(power)
        median = np.mean(level, axis=1, keepdims=True)  # mean log level: as robust here, 5x cheaper than a median
        peak = np.zeros(power.shape, dtype=bool)
        peak[:, 1:-1] = (level[:, 1:-1] > level[:, :-2]) & (level[:, 1:-1] >= level[:, 2:]) & (level[:, 1:-1] > median + _PEAK_DB)
        # a peak may drift by one bin between frames (vibrato, window edges) and still be "the same"
        near = maximum_filter1d(peak.view(np.uint8), 3, axis=1)
        lasting = maximum_filter1d(minimum_filter1d(near, _PERSIST_FRAMES, axis=0), _PERSIST_FRAMES, axis=0).astype(bool)
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
    for i, (e, t) in enumerate(feats):
        energy[i, : e.size] = e
        tonal[i, : t.size] = t
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
    chans = [[i for i in range(len(channels)) if music[i, int(round(s / HOP_S)): int(round(e / HOP_S))].any()] for s, e in spans]
    return LineScan(duration, energy, active, tonal, music, floors, spans, chans)


# ------------------------------------------------------------------------------ ASR protection


def _silence(y: np.ndarray, spans: list[Span], fade: int) -> None:
    for s, e in spans:
        a, b = int(s * SAMPLE_RATE), min(y.size, int(e * SAMPLE_RATE))
        if b <= a:
            continue
        y[a:b] = 0.0
        ra = y[max(0, a - fade):a]
        ra *= np.linspace(1.0, 0.0, ra.size, dtype=np.float32)
        rb = y[b:b + fade]
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
            ch[a:a + x.size] = x


def _inside(t0: float, t1: float, spans: list[Span], tol: float = 0.1) -> bool:
    mid = 0.5 * (t0 + t1)
    return any(s - tol <= mid <= e + tol for s, e in spans)


def drop_words_in_spans(transcript: Transcript, spans: list[Span]) -> tuple[Transcript, int]:
    """Remove words whose middle falls inside `spans` (hallucinations on hold music).

    Returns the cleaned transcript and the number of words dropped.
    """
    if not spans:
        return transcript, 0
    dropped = 0
    segments = []
    for seg in transcript.segments:
        words = tuple(w for w in seg.words if not _inside(w.start, w.end, spans))
        dropped += len(seg.words) - len(words)
        if not words:
            continue
        if len(words) != len(seg.words):
            seg = replace(seg, words=words, start=words[0].start, end=max(w.end for w in words),
                          text=" ".join(w.text for w in words))
        segments.append(seg)
    return replace(transcript, segments=segments), dropped


# ------------------------------------------------------------------------------ quiet spans


def merge_spans(spans: list[Span], gap: float = 0.0) -> list[Span]:
    out: list[list[float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def subtract_spans(spans: list[Span], cut: list[Span]) -> list[Span]:
    out: list[Span] = []
    cut = merge_spans(cut)
    for s, e in spans:
        cur = s
        for a, b in cut:
            if b <= cur or a >= e:
                continue
            if a > cur:
                out.append((cur, a))
            cur = max(cur, b)
        if cur < e:
            out.append((cur, e))
    return out


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
    busy = merge_spans(words + scan.activity_spans() + list(scan.music_spans))
    lo, hi = (words[0][0], words[-1][1]) if within_speech else (0.0, scan.duration_s)
    return [(round(s, 3), round(e, 3)) for s, e in subtract_spans([(lo, hi)], busy) if e - s > 0]


# ------------------------------------------------------------------------------ holds


@dataclass(frozen=True)
class Hold:
    start: float
    end: float
    kind: str  # "music" | "silence"
    announced: Event | None
    thanked: Event | None

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def _quote(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def find_holds(scan: LineScan, utterances: list[Utterance], text_events: list[Event], settings: HoldSettings) -> list[Hold]:
    """Hold spans from the audio, each linked to the announcement before and the thanks after it."""
    quiet = quiet_spans(scan, utterances, within_speech=True)
    music = list(scan.music_spans)
    # A quiet stretch touching a music span is part of that hold when it is long in its own right
    # (the music started late or stopped early); short ones are the pause before the next turn.
    cands: list[list] = [[s, e, "music", e - s] for s, e in music]
    for s, e in quiet:
        touching = [c for c in cands if c[2] == "music" and (abs(c[0] - e) < 0.3 or abs(c[1] - s) < 0.3)]
        if touching and e - s >= 3.0:
            c = touching[0]
            c[0], c[1] = min(c[0], s), max(c[1], e)
        elif not touching and e - s >= min(settings.min_silence_announced_s, settings.min_silence_unannounced_s):
            cands.append([s, e, "silence", 0.0])  # only stretches long enough to be a hold bound the cue search
    cands.sort(key=lambda c: c[0])

    announced = sorted((e for e in text_events if e.type == "hold_announced"), key=lambda e: e.end)
    thanked = sorted((e for e in text_events if e.type == "hold_thanked"), key=lambda e: e.start)
    holds: list[Hold] = []
    used: set[str] = set()
    for i, (s, e, kind, music_s) in enumerate(cands):
        prev_end = cands[i - 1][1] if i else -np.inf
        next_start = cands[i + 1][0] if i + 1 < len(cands) else np.inf
        ann = [a for a in announced if a.event_id not in used and max(prev_end, s - settings.link_window_s) - 1.0 <= a.end <= s + 2.0]
        thx = [t for t in thanked if t.event_id not in used and e - 2.0 <= t.start <= min(next_start, e + settings.link_window_s) + 1.0]
        a_ev = ann[-1] if ann else None  # the announcement closest before the hold
        t_ev = thx[0] if thx else None  # the first thanks after it
        dur = e - s
        if kind == "silence":
            need = settings.min_silence_announced_s if (a_ev or t_ev) else settings.min_silence_unannounced_s
            if dur < need:
                continue
        elif dur < settings.min_music_s:
            continue
        for ev in (a_ev, t_ev):
            if ev is not None:
                used.add(ev.event_id)
        holds.append(Hold(round(s, 3), round(e, 3), "music" if music_s >= 0.5 * dur else "silence", a_ev, t_ev))
    return holds


def detect_holds(
    call_id: str,
    scan: LineScan,
    utterances: list[Utterance],
    text_events: list[Event],
    settings: HoldSettings | None = None,
) -> tuple[list[Event], dict[str, float | None], list[Hold]]:
    """`hold` and `hold_unannounced` events, hold metrics, and the holds themselves (for dead air)."""
    settings = settings or HoldSettings()
    holds = find_holds(scan, utterances, text_events, settings)
    events: list[Event] = []
    for n, h in enumerate(holds):
        parts = [f"{h.duration_s:.1f} s on hold ({h.kind}) from {h.start:.1f} s to {h.end:.1f} s"]
        parts.append(f"announced: \"{_quote(h.announced.evidence)}\"" if h.announced else "not announced")
        parts.append(f"thanked: \"{_quote(h.thanked.evidence)}\"" if h.thanked else "not thanked on return")
        data = {
            "announced": h.announced is not None,
            "thanked": h.thanked is not None,
            "kind": h.kind,
            "duration_s": round(h.duration_s, 2),
            "announced_event_id": h.announced.event_id if h.announced else None,
            "thanked_event_id": h.thanked.event_id if h.thanked else None,
        }
        # Music is unambiguous; a silent line is a hold only by length and context.
        conf = 0.95 if h.kind == "music" else (0.85 if h.announced or h.thanked else 0.7)
        evidence = "; ".join(parts)
        events.append(Event("hold", h.start, h.end, None, "agent", evidence, conf, DETECTOR_VERSION, data,
                            new_event_id(call_id, "hold", h.start, h.end, None, n)))
        if h.announced is None:
            events.append(Event("hold_unannounced", h.start, h.end, None, "agent", evidence, conf, DETECTOR_VERSION,
                                dict(data), new_event_id(call_id, "hold_unannounced", h.start, h.end, None, n)))
    metrics: dict[str, float | None] = {
        "hold_count": float(len(holds)),
        "hold_total_s": round(sum(h.duration_s for h in holds), 2),
        "hold_max_s": round(max((h.duration_s for h in holds), default=0.0), 2),
    }
    return events, metrics, holds
