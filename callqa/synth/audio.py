"""Writing synthesised audio with PyAV: the container follows the file's suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callqa.synth.errors import SynthError

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
                chunk = np.ascontiguousarray(pcm[:, i : i + block].T).reshape(1, -1)  # packed s16
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
