"""Stereo cross-channel bleed: keep each party's words on their own channel only.

On real call recordings each leg picks up the other at a lower level (hybrid echo, a headset
near a speaker, a recorder summing a little of the far end). Whisper transcribes that leak, so
the same sentence appears twice, once under each role. This stage, run before ASR on stereo
audio, mutes the frames of a channel that are only a quieter copy of the other channel:

* a frame is a *copy* when its magnitude spectrum correlates with the other channel's at the
  same time (same pitch harmonics and formants; two different people talking at once do not),
* and it is at least `min_db` quieter than the other channel.

Genuine overtalk survives (uncorrelated spectra), as does a quiet customer talking alone (no
louder twin on the other channel).

Two degenerate "stereo" files are turned into mono instead: channels that are the same signal
(correlation ≥ `identical_corr`, e.g. a mono recording saved as stereo), and a file whose second
channel is silent. Both then go through diarization like any mono call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import binary_dilation

from callqa.pipeline.types import DecodedAudio

FRAME = 1024  # 64 ms at 16 kHz
HOP = 512
SILENT_DBFS = -60.0


@dataclass(frozen=True)
class BleedReport:
    action: str  # "none" | "suppressed" | "identical->mono" | "silent-channel->mono"
    correlation: float | None = None
    muted_s: dict[int, float] = field(default_factory=dict)  # channel -> seconds muted as bleed

    def describe(self) -> str:
        if self.action == "suppressed":
            parts = ", ".join(f"ch{c}: {s:.1f} s" for c, s in sorted(self.muted_s.items()))
            return f"cross-channel bleed muted ({parts})"
        if self.action == "identical->mono":
            return f"stereo channels identical (correlation {self.correlation:.3f}): treated as mono"
        if self.action == "silent-channel->mono":
            return "one stereo channel is silent: treated as mono"
        return "no bleed found"


# Samples / frames per block: the working set stays a few tens of MB on an hour-long call instead of
# float64 copies of whole channels (60 min stereo: >3 GB), with the same results.
_BLOCK_SAMPLES = 1 << 20
_BLOCK_FRAMES = 2048


def _rms_db(x: np.ndarray) -> float:
    if not x.size:
        return -120.0
    v = (
        sum(
            float(np.dot(b, b))
            for b in (x[i : i + _BLOCK_SAMPLES].astype(np.float64) for i in range(0, x.size, _BLOCK_SAMPLES))
        )
        / x.size
    )
    return 10 * np.log10(v) if v > 1e-12 else -120.0


def channel_correlation(a: np.ndarray, b: np.ndarray) -> float:
    ma = float(np.mean(a, dtype=np.float64))
    mb = float(np.mean(b, dtype=np.float64))
    saa = sbb = sab = 0.0
    for i in range(0, min(len(a), len(b)), _BLOCK_SAMPLES):
        x = a[i : i + _BLOCK_SAMPLES].astype(np.float64) - ma
        y = b[i : i + _BLOCK_SAMPLES].astype(np.float64) - mb
        saa += float(np.dot(x, x))
        sbb += float(np.dot(y, y))
        sab += float(np.dot(x, y))
    den = float(np.sqrt(saa * sbb))
    return float(sab / den) if den > 0 else 0.0


def _n_frames(x: np.ndarray) -> int:
    return 1 + max(0, len(x) - FRAME) // HOP


def _frames_spectra(x: np.ndarray, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frame energies in dB, magnitude spectra 60 Hz..4 kHz) for 64 ms frames, 32 ms hop
    (frames start..stop, all by default)."""
    n = _n_frames(x)
    stop = n if stop is None else min(stop, n)
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(start, stop)[:, None]
    fr = x[np.minimum(idx, len(x) - 1)] * np.hanning(FRAME)[None, :]
    spec = np.abs(np.fft.rfft(fr, axis=1))
    lo, hi = int(60 * FRAME / 16000), int(4000 * FRAME / 16000)
    energy = 10 * np.log10(np.mean(fr**2, axis=1) + 1e-12)
    return energy, spec[:, lo:hi]


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.maximum(den, 1e-12), 0.0)


def bleed_masks(
    ch0: np.ndarray, ch1: np.ndarray, min_db: float = 6.0, min_corr: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame booleans: is channel 0 (resp. 1) only an echo of the other here?"""
    n = _n_frames(ch0)
    e0, e1, corr = np.empty(n), np.empty(n), np.empty(n)
    for i in range(0, n, _BLOCK_FRAMES):  # in blocks: whole-call spectra of an hour would be GBs
        j = min(n, i + _BLOCK_FRAMES)
        e0[i:j], s0 = _frames_spectra(ch0, i, j)
        e1[i:j], s1 = _frames_spectra(ch1, i, j)
        corr[i:j] = _row_corr(s0, s1)
    coherent = corr >= min_corr
    bleed0 = coherent & (e0 <= e1 - min_db) & (e1 > SILENT_DBFS)
    bleed1 = coherent & (e1 <= e0 - min_db) & (e0 > SILENT_DBFS)
    # a leak's onset and tail are weaker than its body: widen by one frame either side
    return binary_dilation(bleed0, iterations=1), binary_dilation(bleed1, iterations=1)


_RAMP = 128  # 8 ms gain ramps at 16 kHz: no clicks for the ASR


def _muted_spans(mask: np.ndarray, n: int) -> list[tuple[int, int]]:
    """[a, b) sample spans of the masked frames' hop spans, contiguous frames joined."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    off = (FRAME - HOP) // 2
    return [
        (min(n, i * HOP + off), min(n, j * HOP + off))
        for i, j in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist())
    ]


def apply_mute(x: np.ndarray, mask: np.ndarray) -> None:
    """Silence the masked frames of `x` in place, with ramps either side.

    The gain is 1 except near muted spans, so it is computed only there (span groups closer than
    the ramps are done together): the same result as a whole-channel gain curve without two
    channel-sized buffers, which on an hour-long call are 460 MB each."""
    n = len(x)
    spans = _muted_spans(mask, n)
    kernel = np.ones(_RAMP, np.float32) / _RAMP
    margin = 2 * _RAMP
    i = 0
    while i < len(spans):
        j = i
        while j + 1 < len(spans) and spans[j + 1][0] - spans[j][1] < 2 * margin:
            j += 1
        lo, hi = max(0, spans[i][0] - margin), min(n, spans[j][1] + margin)
        g = np.ones(hi - lo, np.float32)
        for a, b in spans[i : j + 1]:
            g[a - lo : b - lo] = 0.0
        ramped = np.convolve(g, kernel, mode="same")
        # np.convolve pads with zeros: its edge samples are only right at the channel's own ends
        a0 = 0 if lo == 0 else _RAMP
        b0 = len(ramped) if hi == n else len(ramped) - _RAMP
        x[lo + a0 : lo + b0] *= ramped[a0:b0]
        i = j + 1


def suppress_bleed(
    audio: DecodedAudio,
    identical_corr: float = 0.98,
    min_db: float = 6.0,
    min_corr: float = 0.6,
    in_place: bool = False,
) -> tuple[DecodedAudio, BleedReport]:
    """Stereo in; stereo with echoes muted, or mono when the two channels are one signal.

    `in_place`: mute the echoes in `audio`'s own arrays (the flow, which owns the decoded call and
    drops the original) instead of copying the channels that have any."""
    if audio.n_channels != 2:
        return audio, BleedReport("none")
    a, b = audio.channels
    da, db = _rms_db(a), _rms_db(b)
    if min(da, db) < SILENT_DBFS and max(da, db) >= SILENT_DBFS:
        live = a if da >= db else b
        return replace(
            audio, channels=[live], warnings=audio.warnings + ["one stereo channel is silent: processed as mono"]
        ), BleedReport("silent-channel->mono")
    corr = channel_correlation(a, b)
    if corr >= identical_corr:
        mono = (0.5 * (a + b)).astype(np.float32)
        return replace(
            audio,
            channels=[mono],
            warnings=audio.warnings + [f"stereo channels identical (r={corr:.3f}): processed as mono"],
        ), BleedReport("identical->mono", round(corr, 4))
    m0, m1 = bleed_masks(a, b, min_db, min_corr)
    if not m0.any() and not m1.any():
        return audio, BleedReport("none", round(corr, 4))
    out = []
    for x, m in ((a, m0), (b, m1)):
        if m.any():
            if not in_place:
                x = np.array(x, dtype=np.float32, copy=True)
            apply_mute(x, m)
        out.append(x)
    muted = {0: round(float(m0.sum()) * HOP / 16000, 2), 1: round(float(m1.sum()) * HOP / 16000, 2)}
    return replace(audio, channels=out), BleedReport("suppressed", round(corr, 4), muted)
