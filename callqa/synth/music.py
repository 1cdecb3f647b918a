"""Hold music: a real (if modest) piece -- chords, bass and a melody -- so hold detectors and the
ASR's music handling see tonal, rhythmic audio as on a real line, not white noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_PROGRESSION = [  # I - V - vi - IV in C major, as MIDI notes of each triad
    (60, 64, 67),
    (55, 59, 62),
    (57, 60, 64),
    (53, 57, 60),
]
_SCALE = [60, 62, 64, 65, 67, 69, 71]


def _midi_hz(n: float) -> float:
    return 440.0 * 2 ** ((n - 69) / 12)


def _tone(
    freq: float,
    dur: float,
    sr: int,
    partials: Sequence[float],
    decay_s: float | None,
    attack_s: float = 0.01,
    release_s: float = 0.05,
    detune_cents: float = 0.0,
) -> np.ndarray:
    n = int(dur * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for k, amp in enumerate(partials, start=1):
        f = freq * k
        if f >= 0.45 * sr:  # never alias above Nyquist at 8 kHz
            break
        out += amp * np.sin(2 * np.pi * f * t)
        if detune_cents:
            out += amp * np.sin(2 * np.pi * f * 2 ** (detune_cents / 1200) * t + 0.7 * k)
    env = np.ones(n)
    a = max(1, int(attack_s * sr))
    env[:a] = np.linspace(0, 1, a)
    if decay_s:
        env *= np.exp(-t / decay_s)
    r = max(1, min(n, int(release_s * sr)))
    env[-r:] *= np.linspace(1, 0, r)
    return out * env


def hold_music(duration_s: float, sample_rate: int, *, seed: int = 0, bpm: float = 96.0) -> np.ndarray:
    """Synthetic hold music (pad chords, plucked bass, piano-like melody), RMS about -20 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    out = np.zeros(n + sample_rate * 3)
    beat = 60.0 / bpm
    bar = 4 * beat
    t0, i = 0.0, 0
    while t0 < duration_s:
        chord = _PROGRESSION[i % len(_PROGRESSION)]
        s = int(t0 * sample_rate)
        for note in chord:  # soft pad, slightly detuned for a chorus-like width
            pad = _tone(
                _midi_hz(note),
                bar + 0.3,
                sample_rate,
                (1.0, 0.35, 0.15, 0.06),
                None,
                attack_s=0.25,
                release_s=0.35,
                detune_cents=6,
            )
            out[s : s + pad.size] += 0.10 * pad
        for b in range(4):  # bass on every beat: root, octave on beats 2 and 4
            bass_note = chord[0] - 24 + (12 if b % 2 else 0)
            tone = _tone(_midi_hz(bass_note), beat, sample_rate, (1.0, 0.6, 0.35, 0.2, 0.1), 0.35)
            bs = s + int(b * beat * sample_rate)
            out[bs : bs + tone.size] += 0.22 * tone
        for e in range(8):  # melody in eighth notes, mostly chord tones, sometimes a rest
            if rng.random() < 0.2:
                continue
            pool = list(chord) + ([rng.choice(_SCALE)] if rng.random() < 0.3 else [])
            note = int(rng.choice(pool)) + 12
            tone = _tone(_midi_hz(note), beat * 0.9, sample_rate, (1.0, 0.5, 0.25, 0.12, 0.06), 0.45, attack_s=0.004)
            ms = s + int(e * beat / 2 * sample_rate)
            out[ms : ms + tone.size] += 0.18 * tone
        t0 += bar
        i += 1
    out = out[:n]
    fade = min(n // 2, int(0.05 * sample_rate))
    if fade:
        out[:fade] *= np.linspace(0, 1, fade)
        out[-fade:] *= np.linspace(1, 0, fade)
    rms = float(np.sqrt(np.mean(out**2))) if n else 0.0
    if rms > 0:
        out *= 0.1 / rms  # -20 dBFS RMS, like a PBX music-on-hold feed
    return np.clip(out, -0.95, 0.95).astype(np.float32)
