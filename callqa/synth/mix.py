"""Mixing: a call script laid out on a timeline, rendered to audio with its ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from callqa.synth.audio import write_audio
from callqa.synth.errors import SynthError
from callqa.synth.music import hold_music
from callqa.synth.script import SPEAKERS, CallScript, Hold, Speaker, Turn
from callqa.synth.truth import CallTruth, Span, TurnTruth, truth_path
from callqa.synth.tts import get_voice, speak


def _bandpass(x: np.ndarray, sr: int, lo: float = 300.0, hi: float = 3400.0) -> np.ndarray:
    hi = min(hi, 0.45 * sr)
    sos = butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")
    # zero-phase, so filtering never moves the truth timings
    return sosfiltfilt(sos, x, axis=-1).astype(np.float32)


def mix_call(
    script: CallScript,
    *,
    sample_rate: int = 8000,
    stereo: bool = True,
    agent_channel: int = 0,
    telephone: bool = False,
    noise_floor_dbfs: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, CallTruth]:
    """Lay the script out on a timeline: (float32 array [channels, samples], truth).

    Truth times are exact to the sample: each turn's span is its trimmed TTS audio.
    """
    if sample_rate < 4000 or sample_rate > 96_000:
        raise SynthError(None, f"sample_rate {sample_rate} is outside 4000..96000 Hz")
    if agent_channel not in (0, 1):
        raise SynthError(None, f"agent_channel must be 0 or 1, not {agent_channel}")
    sr = int(sample_rate)
    rng = np.random.default_rng(seed)
    voices = {s: get_voice(script.voices[s]) for s in SPEAKERS}

    # Pass 1: audio for every turn and its place on the timeline.
    placed: list[tuple[Speaker, int, np.ndarray]] = []  # (track, start sample, audio)
    turns: list[TurnTruth] = []
    holds: list[Span] = []
    dead: list[Span] = []
    cursor = script.lead_in_s
    last_turn: TurnTruth | None = None
    dead_air_next: float | None = None
    for item in script.items:
        if isinstance(item, Turn):
            audio = speak(item.text, voices[item.speaker], sr, rate=item.rate)
            if item.gain_db:
                audio = (audio * 10 ** (item.gain_db / 20)).astype(np.float32)
            if item.overlap_s > 0 and last_turn is not None:
                if last_turn.speaker == item.speaker:
                    raise SynthError(
                        None, f"turn {len(turns)} overlaps the previous turn of the same speaker ({item.speaker})"
                    )
                # interrupt the previous turn, but never before it has actually started
                start = max(last_turn.start_s + 0.3, last_turn.end_s - item.overlap_s)
            elif dead_air_next is not None:
                start = dead_air_next
            else:
                start = cursor + item.gap_before_s
            dead_air_next = None
            s0 = int(round(start * sr))
            start = s0 / sr
            end = (s0 + audio.size) / sr
            channel = 0 if not stereo else (agent_channel if item.speaker == "agent" else 1 - agent_channel)
            t = TurnTruth(
                len(turns),
                item.speaker,
                item.speaker,
                voices[item.speaker].name,
                item.text,
                round(start, 4),
                round(end, 4),
                channel,
                list(item.tags),
            )
            turns.append(t)
            placed.append((item.speaker, s0, audio))
            last_turn = t
            cursor = max(cursor, end)
        elif isinstance(item, Hold):
            start = round(int(round((cursor + item.gap_before_s) * sr)) / sr, 4)
            end = round(start + item.duration_s, 4)
            holds.append(Span(start, end, kind=item.kind, on=item.on))
            cursor = end
            dead_air_next = None
        else:  # DeadAir
            start = round(cursor, 4)
            end = round(cursor + item.duration_s, 4)
            dead.append(Span(start, end, kind="dead_air"))
            dead_air_next = end
            cursor = end
    total_s = cursor + script.tail_s
    n = int(math.ceil(total_s * sr))

    # Pass 2: render tracks.
    tracks = {s: np.zeros(n, np.float32) for s in SPEAKERS}
    for spk, s0, audio in placed:
        tracks[spk][s0 : s0 + audio.size] += audio[: max(0, n - s0)]
    for k, h in enumerate(holds):
        if h.kind != "music":
            continue
        s0 = int(round(h.start_s * sr))
        music = hold_music(h.end_s - h.start_s, sr, seed=seed * 1000 + k)
        for spk in SPEAKERS if h.on == "both" else (h.on,):
            tracks[spk][s0 : s0 + music.size] += music[: max(0, n - s0)]

    if stereo:
        chans = [None, None]
        chans[agent_channel] = tracks["agent"]
        chans[1 - agent_channel] = tracks["customer"]
        out = np.stack(chans)
    else:
        out = (tracks["agent"] + tracks["customer"])[None, :]
    if telephone:
        out = _bandpass(out, sr)
    if noise_floor_dbfs is not None:
        noise = rng.standard_normal(out.shape).astype(np.float32)
        if telephone:
            noise = _bandpass(noise, sr)
        noise *= 10 ** (noise_floor_dbfs / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
        out = out + noise
    out = np.clip(out, -1.0, 1.0).astype(np.float32)

    overlaps: list[Span] = []
    for j, b in enumerate(turns):
        for a in turns[:j]:
            if a.speaker != b.speaker and a.start_s < b.end_s and b.start_s < a.end_s:
                overlaps.append(
                    Span(
                        round(max(a.start_s, b.start_s), 4),
                        round(min(a.end_s, b.end_s), 4),
                        kind="overtalk",
                        speakers=[a.speaker, b.speaker],
                        turns=[a.index, b.index],
                    )
                )

    truth = CallTruth(
        audio=None,
        sample_rate=sr,
        channels=out.shape[0],
        codec=None,
        duration_s=round(n / sr, 4),
        agent_channel=agent_channel if stereo else None,
        voices={s: voices[s].name for s in SPEAKERS},
        seed=seed,
        options={
            "telephone": telephone,
            "noise_floor_dbfs": noise_floor_dbfs,
            "stereo": stereo,
            "language": script.language,
        },
        turns=turns,
        holds=holds,
        dead_air=dead,
        overlaps=overlaps,
    )
    return out, truth


def render_call(
    script: CallScript,
    out_path: str | Path,
    *,
    sample_rate: int = 8000,
    stereo: bool = True,
    agent_channel: int = 0,
    codec: str | None = None,
    telephone: bool = False,
    noise_floor_dbfs: float | None = None,
    seed: int = 0,
    write_truth: bool = True,
) -> CallTruth:
    """Synthesise `script` into `out_path` (container by suffix) and return its ground truth,
    also written beside it as `<stem>.truth.json` unless write_truth is False."""
    out_path = Path(out_path)
    audio, truth = mix_call(
        script,
        sample_rate=sample_rate,
        stereo=stereo,
        agent_channel=agent_channel,
        telephone=telephone,
        noise_floor_dbfs=noise_floor_dbfs,
        seed=seed,
    )
    truth.codec = write_audio(out_path, audio, sample_rate, codec)
    truth.audio = out_path.name
    if write_truth:
        truth.write(truth_path(out_path))
    return truth
