"""The offline diarizer: no hub, no pyannote weights, only what ships in the wheels.

Silero VAD (the ONNX model bundled in faster-whisper) finds speech; a GE2E speaker encoder
(Resemblyzer's weights, see speaker_embedding.py) embeds 1.6 s windows sliding over the speech;
the embeddings are centred on the call's mean (voices on one line share a lot) and grouped by
spectral clustering (clustering.py) with the speaker count from config (or chosen by silhouette
between min and max); centroid refinement, a per-frame re-scoring with windows weighted towards
their centre, Viterbi smoothing with a switch penalty, and snapping changes to a nearby pause put
the boundaries back at 10 ms resolution. The frames next to a pause are also judged by a window
that stops there (a stretch between two pauses shorter than the window: by its own embedding),
since the sliding windows reach across the pause into the neighbouring turns. Where the speaker
changes with no pause at all, the frames that cannot be told apart are labelled with both speakers
(overlapped speech).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pyannote.core import Annotation, Segment

from callqa.config.settings import DiarizationSettings
from callqa.models.clustering import center, cluster_embeddings, two_voices_supported, unit
from callqa.models.diarization import relabel
from callqa.pipeline.types import SAMPLE_RATE, ModelUnavailable

if TYPE_CHECKING:  # importing it loads torch; load() imports it when it builds one
    from callqa.models.speaker_embedding import SpeakerEncoder

FRAME_S = 0.01  # mel frame hop: the offline diarizer's time resolution
VAD_CHUNK = 512  # Silero's window at 16 kHz (32 ms)


@dataclass(frozen=True)
class OfflineParams:
    vad_onset: float = 0.5
    vad_offset: float = 0.35
    min_speech_s: float = 0.1
    min_silence_s: float = 0.2
    speech_pad_s: float = 0.04
    window_frames: int = 160  # 1.6 s, what GE2E was trained on
    step_frames: int = 40
    switch_penalty: float = 6.0  # Viterbi: cost of a speaker change, in units of frame log-score
    temperature: float = 0.05  # cosine differences → log-scores
    # overlap: at a change with no pause, frames whose top-two score gap is under this share of
    # the call's median gap count as both speakers
    overlap_rel: float = 0.3
    # uncertain: a turn whose mean top-two gap is under this share of the call's median is
    # reported as not attributable (roles then give less weight to what was said there)
    uncertain_rel: float = 0.3
    overlap_max_s: float = 2.5
    snap_s: float = 0.6  # a change this close to a pause moves to the pause (and is no overlap)
    overlap_min_s: float = 0.2
    # Frames next to a pause also count a window that stops there (a stretch shorter than the window:
    # its own embedding), weighted this many times the sliding windows over them, which reach across
    # the pause into the neighbours' speech; under own_min_frames (0.3 s) a GE2E embedding says too
    # little about the voice. On the real AWS PCA call the agent's 1.0 s "How can I help you today?"
    # between his name and the customer's reply went to the customer, and "... before they close."
    # at the end of his long turn too (the windows centred there were mostly her speech).
    own_weight: float = 2.0
    own_min_frames: int = 30
    # a two-way split that is one voice cut in two (clustering.two_voices_supported): one speaker
    # unless min_speakers asks for two. Thresholds measured on real one- and two-voice recordings.
    two_voice_separation: float = 0.2
    min_voice_windows: int = 3
    # ... and a split whose halves barely alternate (fewer than this many changes: no turn-taking)
    # needs the separation of clearly different voices (clustering.two_voices_supported)
    two_voice_min_changes: int = 3
    distinct_voice_separation: float = 1.0
    # A pause of one speaker shorter than this, with nobody else speaking in it, stays inside the
    # turn, as turn references mark it (pyannote's dev00 RTTM, the generators' turns): the VAD's
    # breaks at every sentence pause were most of the DER on the synthesised Mandarin mono calls
    # (pooled over the five mono calls of `eval detectors --lang zh --n 20`: 0.164 → 0.019, missed
    # speech 16.1 % → 0.7 %), dev00 0.344 → 0.204, the pyannote sample unchanged (0.092). Only the
    # turns change: words, overtalk and the uncertain spans are as before (no other speaker's turn
    # lies in a bridged pause).
    bridge_pause_s: float = 1.0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs in a boolean array."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def speech_regions(probs: np.ndarray, chunk_s: float, p: OfflineParams, duration_s: float) -> list[tuple[float, float]]:
    """Hysteresis over Silero frame probabilities → padded, merged speech regions in seconds."""
    active = np.zeros(len(probs), bool)
    on = False
    for i, pr in enumerate(probs):
        if not on and pr >= p.vad_onset:
            on = True
        elif on and pr < p.vad_offset:
            on = False
        active[i] = on
    regions = [(a * chunk_s - p.speech_pad_s, b * chunk_s + p.speech_pad_s) for a, b in _runs(active)]
    merged: list[list[float]] = []
    for s, e in regions:
        s, e = max(0.0, s), min(duration_s, e)
        if merged and s - merged[-1][1] < p.min_silence_s:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged if e - s >= p.min_speech_s]


def _viterbi(scores: np.ndarray, penalty: float, breaks: np.ndarray) -> np.ndarray:
    """Best label path over frames; switching costs `penalty`, except right after a silence."""
    n, k = scores.shape
    back = np.zeros((n, k), np.int32)
    acc = scores[0].copy()
    for t in range(1, n):
        pen = 0.0 if breaks[t] else penalty
        stay = acc
        best_prev = int(np.argmax(acc))
        switch = acc[best_prev] - pen
        choose_switch = switch > stay
        back[t] = np.where(choose_switch, best_prev, np.arange(k))
        acc = np.where(choose_switch, switch, stay) + scores[t]
    path = np.zeros(n, np.int32)
    path[-1] = int(np.argmax(acc))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


@dataclass(frozen=True)
class FrameAnalysis:
    regions: list[tuple[float, float]]  # VAD speech, seconds
    speech_frames: np.ndarray  # indices of the 10 ms frames inside speech
    frame_sims: np.ndarray  # (speech frames, k) cosine to each speaker's centroid (call-centred)
    path: np.ndarray  # speaker index per speech frame after Viterbi smoothing
    k: int  # speakers found (0: no speech)
    n_windows: int
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for the bench
    # frame scores from the sliding windows alone (frame_sims adds the windows that stop at pauses,
    # see OfflineDiarizer._with_own_windows); None: the same as frame_sims
    window_sims: np.ndarray | None = None


@dataclass
class OfflineDiarizer:
    encoder: SpeakerEncoder
    vad: Callable[[np.ndarray], Any]  # faster_whisper.vad.SileroVADModel, which ships no types
    description: str
    params: OfflineParams = field(default_factory=OfflineParams)
    method: str = "offline-ge2e"

    @classmethod
    def load(cls, settings: DiarizationSettings | None = None) -> OfflineDiarizer:
        from faster_whisper.vad import SileroVADModel

        from callqa.models.getter import find_bundled_vad
        from callqa.models.speaker_embedding import SpeakerEncoder

        settings = settings or DiarizationSettings()
        onnx = find_bundled_vad()
        if onnx is None:
            raise ModelUnavailable(
                None,
                "offline diarization needs the Silero VAD ONNX bundled with faster-whisper; reinstall faster-whisper",
            )
        encoder = SpeakerEncoder.load(settings.embedding)
        params = OfflineParams(
            window_frames=int(round(settings.window_s / FRAME_S)), step_frames=int(round(settings.step_s / FRAME_S))
        )
        desc = (
            f"offline: Silero VAD ({onnx.name}) + {encoder.description} + spectral clustering + Viterbi resegmentation"
        )
        return cls(encoder, SileroVADModel(str(onnx)), desc, params)

    # -- stages, separately callable for tests and the bench

    def vad_probs(self, wav: np.ndarray) -> np.ndarray:
        pad = (-len(wav)) % VAD_CHUNK
        x = np.pad(wav.astype(np.float32, copy=False), (0, pad))
        return np.asarray(self.vad(x)).reshape(-1)

    def speech(self, wav: np.ndarray) -> list[tuple[float, float]]:
        return speech_regions(self.vad_probs(wav), VAD_CHUNK / SAMPLE_RATE, self.params, len(wav) / SAMPLE_RATE)

    def analyse(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> FrameAnalysis:
        """VAD → window embeddings → clusters → per-frame speaker scores and the smoothed path."""
        from callqa.models.speaker_embedding import loudness_gain

        p = self.params
        tm: dict[str, float] = {}
        t0 = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t0
            now = time.perf_counter()
            tm[name] = tm.get(name, 0.0) + now - t0
            t0 = now

        wav = np.ascontiguousarray(waveform, dtype=np.float32)
        regions = self.speech(wav)
        lap("vad")
        empty = FrameAnalysis(regions, np.zeros(0, np.int64), np.zeros((0, 1)), np.zeros(0, np.int32), 0, 0)
        if not regions:
            return empty
        mel = self.encoder.mel(wav)  # frame i centred at i * 10 ms
        n_mel = mel.shape[0]
        speech_frames = np.concatenate(
            [np.arange(int(round(s / FRAME_S)), min(n_mel, int(round(e / FRAME_S)))) for s, e in regions]
        ).astype(np.int64)
        if speech_frames.size == 0:
            return empty
        lap("mel")
        mask = np.zeros(len(wav), bool)
        for s, e in regions:
            mask[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] = True
        mel = mel * loudness_gain(wav, mask) ** 2  # power spectrogram scales with gain squared
        # Windows slide over the speech-only frame stream, so silences never dilute an embedding.
        stream = mel[speech_frames]
        n = len(stream)
        W = min(p.window_frames, max(n, 1))
        starts = np.arange(0, max(1, n - W + 1), p.step_frames)
        if starts[-1] + W < n:
            starts = np.append(starts, n - W)
        emb = self.encoder.embed_frames(stream, starts, W)
        lap("embeddings")

        labels = cluster_embeddings(emb, num_speakers, min_speakers, max_speakers)
        # num_speakers 2 is "a two-party call", yet a one-sided recording (an agent leg, a clip) has one voice
        if (min_speakers or 1) <= 1 and not two_voices_supported(
            emb,
            labels,
            p.two_voice_separation,
            p.min_voice_windows,
            p.two_voice_min_changes,
            p.distinct_voice_separation,
        ):
            labels = np.zeros(len(emb), int)
        k = int(labels.max()) + 1
        emb_c = center(emb) if k > 1 else emb
        centroids = unit(np.stack([emb_c[labels == c].mean(0) for c in range(k)]))
        for _ in range(5):  # refine: reassign windows to the nearest centroid
            new = np.argmax(emb_c @ centroids.T, axis=1)
            if np.array_equal(new, labels) or len(set(new.tolist())) < k:
                break
            labels = new
            centroids = unit(np.stack([emb_c[labels == c].mean(0) for c in range(k)]))
        sims = emb_c @ centroids.T  # (windows, k)
        lap("clustering")

        # Per-frame score: windows covering the frame, weighted by a Hann bump centred in each window,
        # so a frame is judged mostly by the windows that have it in their middle.
        weight = np.hanning(W + 2)[1:-1]
        acc = np.zeros((n, k))
        wsum = np.zeros(n)
        for i, st in enumerate(starts):
            acc[st : st + W] += weight[:, None] * sims[i][None, :]
            wsum[st : st + W] += weight
        window_sims = acc / np.maximum(wsum, 1e-9)[:, None]
        breaks = np.zeros(n, bool)
        breaks[1:] = np.diff(speech_frames) > 1  # a silence: a change there is free
        if k == 1:
            frame_sims, path = window_sims, np.zeros(n, np.int32)
        else:
            frame_sims = self._with_own_windows(stream, breaks, W, emb.mean(0, keepdims=True), centroids, acc, wsum)
            lap("own_windows")
            path = _snap_to_pauses(
                _viterbi(frame_sims / p.temperature, p.switch_penalty, breaks), breaks, int(round(p.snap_s / FRAME_S))
            )
        lap("resegmentation")
        return FrameAnalysis(regions, speech_frames, frame_sims, path, k, len(starts), tm, window_sims)

    def _with_own_windows(
        self,
        stream: np.ndarray,
        breaks: np.ndarray,
        W: int,
        mean_emb: np.ndarray,
        centroids: np.ndarray,
        acc: np.ndarray,
        wsum: np.ndarray,
    ) -> np.ndarray:
        """Frame scores where the frames next to a pause also count a window that stops at it.

        The windows slide over the speech-only stream, so near a pause they reach across it into
        the next stretch of speech, often the other party's: a 1 s turn between two of theirs is
        then given to them as a whole (Viterbi keeps one label across a stretch with no pause), and
        the last words before a turn change to theirs. So each pause-bounded stretch shorter than
        the window counts its own embedding over all its frames, and a longer one the windows that
        start at its first frame and end at its last, over the half window at each end; each with
        `own_weight` times the sliding windows' weight there (centred like them)."""
        p = self.params
        acc, wsum = acc.copy(), wsum.copy()
        bounds = np.concatenate([[0], np.flatnonzero(breaks), [len(stream)]]).tolist()
        half = W // 2
        blocks, spans = [], []  # W frames each; the frames each one speaks for
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b - a >= W:
                blocks += [stream[a : a + W], stream[b - W : b]]
                spans += [(a, a + half), (b - half, b)]
            elif b - a >= p.own_min_frames:
                # repeated to the window's length: one LSTM batch for all, and better than its exact
                # length or silence after it (synthesised mono DER 0.041 vs 0.043 and 0.042; silence
                # lost the PCA call's "How can I help you today?" again)
                blocks.append(np.resize(stream[a:b], (W, stream.shape[1])))
                spans.append((a, b))
        if blocks:
            embs = self.encoder.embed_frames(np.concatenate(blocks), np.arange(len(blocks)) * W, W)
            for (lo, hi), sim in zip(spans, unit(embs - mean_emb) @ centroids.T):
                w = p.own_weight * float(wsum[lo:hi].mean())
                acc[lo:hi] += w * sim[None, :]
                wsum[lo:hi] += w
        return acc / np.maximum(wsum, 1e-9)[:, None]

    def __call__(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> Annotation:
        return self.diarize(waveform, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)[
            0
        ]

    def diarize(
        self,
        waveform: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> tuple[Annotation, list[tuple[float, float]]]:
        fa = self.analyse(waveform, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)
        return self._annotation(fa), self.uncertain_spans(fa)

    def uncertain_spans(self, fa: FrameAnalysis) -> list[tuple[float, float]]:
        """Turns whose windows sit between the speakers' centroids on average, or favour another
        speaker than the turn got with the windows that stop at its pauses (see _with_own_windows).

        Short turns (a 1-2 s greeting at the very start, a backchannel) are embedded with windows
        that reach into the neighbouring turns or cover them alone at the edge of the stream; on
        one real call (aws-lca Auto_Repairs_49 mixed to mono) the agent's opening line scored 0.06
        vs -0.05 against the two centroids where the call's median gap is ~0.6, and was given to
        the customer. Such spans are labelled all the same (something must be), but reported."""
        p = self.params
        if fa.k < 2 or fa.frame_sims.shape[0] == 0:
            return []
        win = fa.window_sims if fa.window_sims is not None else fa.frame_sims
        gap = _top2_gap(win)
        limit = p.uncertain_rel * float(np.median(gap))
        out = []
        for a, b in _runs_labels(fa.path, fa.speech_frames):  # one turn: a speaker's run up to a pause or a change
            overruled = int(np.argmax(win[a:b].mean(0))) != int(fa.path[a])
            if float(gap[a:b].mean()) < limit or overruled:
                start = float(fa.speech_frames[a] * FRAME_S)
                end = float(fa.speech_frames[b - 1] * FRAME_S + FRAME_S)
                out.append((round(start, 2), round(end, 2)))
        return out

    def _annotation(self, fa: FrameAnalysis) -> Annotation:
        ann = Annotation()
        if fa.k == 0:
            return ann
        times = fa.speech_frames * FRAME_S
        turns: list[list[Any]] = []  # [start, end, speaker], in time order
        for a, b in _runs_labels(fa.path, fa.speech_frames):
            start, end, who = float(times[a]), float(times[b - 1] + FRAME_S), int(fa.path[a])
            if turns and turns[-1][2] == who and start - turns[-1][1] <= self.params.bridge_pause_s:
                turns[-1][1] = end
            else:
                turns.append([start, end, who])
        for start, end, who in turns:
            ann[Segment(start, end)] = f"S{who}"
        if fa.k >= 2:
            for n, (seg, who) in enumerate(self._overlaps(fa.frame_sims, fa.path, fa.speech_frames)):
                ann[seg, f"overlap{n}"] = f"S{who}"
        return relabel(ann)

    def _overlaps(
        self, frame_sims: np.ndarray, path: np.ndarray, speech_frames: np.ndarray
    ) -> list[tuple[Segment, int]]:
        """Both voices at once, estimated where the frame scores cannot tell the two speakers
        apart *and* the speaker changes without any pause in between (in conversation a change
        with no silence at all is mostly one party starting before the other has finished). The
        span is that ambiguous band around the change; returns (segment, label to add) pairs that
        put the missing speaker on each side of the change."""
        p = self.params
        gap = _top2_gap(frame_sims)
        typical = float(np.median(gap)) if gap.size else 0.0
        ambiguous = gap < p.overlap_rel * typical
        contiguous = np.ones(len(path), bool)
        contiguous[1:] = np.diff(speech_frames) == 1
        reach = int(round(p.snap_s / FRAME_S))
        out: list[tuple[Segment, int]] = []
        for c in (np.flatnonzero((np.diff(path) != 0) & contiguous[1:]) + 1).tolist():
            a = c
            while a > 0 and ambiguous[a - 1] and contiguous[a]:
                a -= 1
            b = c
            while b < len(path) and ambiguous[b] and contiguous[b]:
                b += 1
            if not (p.overlap_min_s <= (b - a) * FRAME_S <= p.overlap_max_s):
                continue
            lo, hi = max(0, c - reach), min(len(path), c + reach)
            if not contiguous[lo + 1 : hi].all():
                continue  # a pause nearby: an ordinary turn change blurred by the windows
            before, after = int(path[c - 1]), int(path[c])
            t = lambda i: float(speech_frames[i] * FRAME_S)  # noqa: E731
            if c > a:
                out.append((Segment(t(a), t(c - 1) + FRAME_S), after))  # the newcomer already talking
            if b > c:
                out.append((Segment(t(c), t(b - 1) + FRAME_S), before))  # the first speaker still talking
        return out


def _top2_gap(frame_sims: np.ndarray) -> np.ndarray:
    """Per frame: how far the best speaker's score is ahead of the runner-up's (0 = can't tell)."""
    top2 = np.sort(frame_sims, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _snap_to_pauses(path: np.ndarray, breaks: np.ndarray, reach: int) -> np.ndarray:
    """Move a speaker change that falls inside continuous speech to the nearest pause within
    `reach` frames: 1.6 s windows blur the scores around a change, while people mostly take
    turns at a pause."""
    path = path.copy()
    brk = np.flatnonzero(breaks)
    if brk.size == 0:
        return path
    for c in np.flatnonzero(np.diff(path) != 0) + 1:
        if breaks[c]:
            continue
        j = int(np.searchsorted(brk, c))
        near = [
            b
            for b in (brk[j - 1] if j > 0 else None, brk[j] if j < brk.size else None)
            if b is not None and abs(int(b) - int(c)) <= reach
        ]
        if not near:
            continue
        b = min(near, key=lambda x: abs(int(x) - int(c)))
        before, after = path[c - 1], path[c]
        if b > c and np.all(path[c:b] == after):
            path[c:b] = before
        elif b < c and np.all(path[b:c] == before):
            path[b:c] = after
    return path


def _runs_labels(path: np.ndarray, speech_frames: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) index runs of constant label and contiguous frames."""
    if len(path) == 0:
        return []
    cut = np.flatnonzero((np.diff(path) != 0) | (np.diff(speech_frames) > 1)) + 1
    bounds = np.concatenate([[0], cut, [len(path)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
