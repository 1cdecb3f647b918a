"""decode: any recording ffmpeg can read -> float32 at 16 kHz, one array per channel.

PyAV (already a faster-whisper dependency) demuxes and decodes packet by packet and feeds every
frame straight through libswresample, so memory holds the 16 kHz output plus one frame, never the
whole source; a 60-minute stereo call is about 460 MB of float32 output and nothing more.

Channels are never mixed: on a stereo call recording the channel *is* the speaker, and every
later stage (per-channel ASR, speakers, roles) depends on keeping them apart.

Policy for damaged files (a recording system that crashed mid-call leaves a truncated file that
is still worth scoring):
- nothing decodes, or the file is recognisably damaged (decode errors, or far shorter than its
  header says) and less than ``MIN_PARTIAL_S`` decodes -> ``AudioError``;
- otherwise the audio that decoded is returned and the damage is listed in
  ``DecodedAudio.warnings``.
More than ``max_channels`` channels (default 2: agent and customer): the first ones are kept,
the rest dropped with a warning; ``source_channels`` still records the original count.
"""

from __future__ import annotations

import errno
import os
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from callqa.pipeline.types import SAMPLE_RATE, AudioError, DecodedAudio

# swresample's default (16-tap half-length polyphase filter) leaves the spectral image of an
# upsampled 8 kHz telephone call only ~38 dB down; 64 taps with the cutoff at 95 % of Nyquist push
# images and aliases below -90 dB and keep the passband flat (measured; tests/test_decode.py
# checks it), at negligible cost (~5 s for a 60-minute stereo 8 kHz call on one core).
RESAMPLER_OPTIONS = {"filter_size": "64", "cutoff": "0.95"}

# A file that is damaged AND yields less than this much audio is not a call worth scoring.
MIN_PARTIAL_S = 1.0

# No sample on any channel above -60 dBFS (33 LSB of 16-bit PCM) means the recorder captured
# nothing usable. Exact zeros are not the only form digital silence takes: A-law has no zero code,
# so a silent A-law file decodes to +-8 LSB (-72 dBFS). Line noise on a real call, and any speech,
# is far above this; one silent channel of a stereo call is normal (the other party spoke).
SILENCE_PEAK = 10 ** (-60 / 20)

# Initial output buffer when the container does not declare a duration; grown as needed.
_DEFAULT_CAPACITY_S = 120.0
# Cap the up-front allocation if a header declares an absurd duration; the buffer still grows.
_MAX_INITIAL_CAPACITY_S = 6 * 3600.0


def decode(path: str | Path, target_sr: int = SAMPLE_RATE, max_channels: int = 2) -> DecodedAudio:
    """Decode `path` to float32 in [-1, 1] at `target_sr`, one array per channel.

    Raises AudioError (whose str() starts with the path) for: a missing or unreadable file, a
    zero-byte file, a file ffmpeg does not recognise as media, no audio stream, damaged data from
    which (almost) nothing decodes, zero duration, and digital silence.
    """
    path = Path(path)
    _check_file(path)

    try:
        container = av.open(str(path), mode="r")
    except av.error.EOFError as e:
        raise AudioError(path, f"truncated: the file ends before its header is complete ({e.strerror})") from e
    except av.error.InvalidDataError as e:
        raise AudioError(
            path,
            "not an audio file: ffmpeg does not recognise the format (wrong extension, or a corrupt/truncated header)",
        ) from e
    except av.error.FFmpegError as e:
        raise AudioError(path, f"cannot open: {e.strerror or e}") from e

    with container:
        if not container.streams.audio:
            kinds: list[str] = sorted({s.type for s in container.streams}) or ["none"]
            raise AudioError(path, f"no audio stream (streams found: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        warnings: list[str] = []
        if len(container.streams.audio) > 1:
            warnings.append(f"{len(container.streams.audio)} audio streams; only the first was decoded")

        ctx = stream.codec_context
        source_sr = int(ctx.sample_rate or stream.sample_rate or 0)
        source_channels = int(ctx.channels or 0)
        codec = ctx.codec.canonical_name if ctx.codec is not None else "unknown"
        declared_s = _declared_duration(container, stream)
        if source_channels > max_channels:
            warnings.append(f"{source_channels} channels; kept the first {max_channels}, dropped the rest")

        capacity_s = min(declared_s + 2.0, _MAX_INITIAL_CAPACITY_S) if declared_s else _DEFAULT_CAPACITY_S
        out = _Output(max_channels, int(capacity_s * target_sr))
        resampler = _Resampler(path, target_sr)
        errors = 0
        first_error: str | None = None

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    # One bad packet (bit rot, a splice) should not cost the whole call: ffmpeg's own
                    # CLI skips it too. Count it; the policy at the end decides.
                    errors += 1
                    first_error = first_error or (e.strerror or str(e))
                    continue
                for frame in frames:
                    for block in resampler.resample(frame):
                        out.append(block)
        except av.error.FFmpegError as e:
            # The demuxer itself gave up part-way (truncated or corrupt container): keep what decoded.
            errors += 1
            first_error = first_error or (e.strerror or str(e))
            try:
                for frame in ctx.decode(None):
                    for block in resampler.resample(frame):
                        out.append(block)
            except av.error.FFmpegError:
                pass
        for block in resampler.flush():
            out.append(block)
        warnings.extend(resampler.warnings)

    channels = out.result()
    n = channels[0].shape[0]
    duration_s = n / target_sr

    damaged = errors > 0 or (declared_s is not None and duration_s < 0.5 * declared_s)
    if n == 0:
        if errors:
            raise AudioError(path, f"corrupt: no audio could be decoded ({errors} decode errors, first: {first_error})")
        raise AudioError(path, "zero duration: the audio stream contains no samples")
    if damaged and duration_s < MIN_PARTIAL_S:
        what = f"{duration_s:.2f} s decoded"
        if declared_s:
            what += f" of {declared_s:.2f} s declared"
        raise AudioError(path, f"truncated or corrupt: only {what}" + (f" ({errors} decode errors)" if errors else ""))
    if errors:
        warnings.append(f"corrupt data: {errors} packet(s) failed to decode and were skipped (first: {first_error})")
    if declared_s is not None and duration_s < 0.9 * declared_s - 0.5:
        warnings.append(f"truncated: decoded {duration_s:.2f} s of {declared_s:.2f} s declared by the header")

    # max/min rather than abs(): abs() would allocate a full copy of a possibly hour-long channel.
    peak = max(max(float(c.max()), -float(c.min())) for c in channels)
    if peak < SILENCE_PEAK:
        raise AudioError(
            path,
            f"silent: digital silence, no channel rises above {_dbfs(SILENCE_PEAK)} dBFS (peak {_dbfs(peak)} dBFS)",
        )

    return DecodedAudio(
        path=str(path),
        channels=channels,
        sample_rate=target_sr,
        source_sample_rate=source_sr,
        source_channels=source_channels or out.n_channels,
        codec=codec,
        duration_s=duration_s,
        warnings=warnings,
    )


def _check_file(path: Path) -> None:
    # Checked before ffmpeg sees the file: its errors for these cases are generic ("Invalid data").
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except OSError as e:
        raise AudioError(path, f"cannot read: {e.strerror}") from e
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if st.st_size == 0:
        raise AudioError(path, "zero-byte file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, f"cannot read: {os.strerror(errno.EACCES)}")


def _declared_duration(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """Duration the header claims, if any; used to size the buffer and to spot truncation."""
    if stream.duration and stream.time_base:
        d = float(stream.duration * stream.time_base)
        if d > 0:
            return d
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def _dbfs(x: float) -> str:
    return "-inf" if x <= 0 else f"{20 * np.log10(x):.0f}"


class _Resampler:
    """swresample to planar float32 at the target rate, keeping the input channel layout.

    layout=None keeps whatever layout the input has, so swresample never remixes channels. If the
    input format changes mid-stream (an mp3 or AAC stream may switch sample rate), the current
    resampler is drained and a new one built, so no samples are lost.
    """

    def __init__(self, path: Path, target_sr: int):
        self.path = path
        self.target_sr = target_sr
        self._r: av.AudioResampler | None = None
        self._sig: tuple | None = None
        self._channels: int | None = None
        self.warnings: list[str] = []

    def resample(self, frame: av.AudioFrame) -> list[np.ndarray]:
        sig = (frame.format.name, frame.layout.name, frame.layout.nb_channels, frame.sample_rate)
        blocks: list[np.ndarray] = []
        if self._channels is not None and frame.layout.nb_channels != self._channels:
            # Channels cannot be spliced consistently; skipping keeps the ones we have aligned.
            msg = (
                f"channel count changed mid-stream ({self._channels} -> {frame.layout.nb_channels}); "
                "those frames were skipped"
            )
            if msg not in self.warnings:
                self.warnings.append(msg)
            return blocks
        if self._sig != sig or self._r is None:  # flush() clears both together; the test narrows _r
            blocks.extend(self.flush())
            self._r = av.AudioResampler(format="fltp", layout=None, rate=self.target_sr, options=RESAMPLER_OPTIONS)
            self._sig = sig
            self._channels = frame.layout.nb_channels
        # The resampler's output timestamps are irrelevant (we lay samples end to end), and a
        # frame without a usable pts/time_base would make the filter graph complain.
        frame.pts = None
        frame.time_base = Fraction(1, frame.sample_rate)
        try:
            blocks.extend(f.to_ndarray() for f in self._r.resample(frame))
        except (av.error.FFmpegError, ValueError) as e:
            # Not a damaged packet but a frame swresample cannot convert: every frame would fail.
            raise AudioError(self.path, f"cannot resample {sig[0]} {sig[1]} at {sig[3]} Hz: {e}") from e
        return blocks

    def flush(self) -> list[np.ndarray]:
        if self._r is None:
            return []
        blocks = [f.to_ndarray() for f in self._r.resample(None)]
        self._r = None
        self._sig = None
        return blocks


class _Output:
    """Growable (channels, samples) float32 buffer, sized up front from the declared duration.

    Filling a preallocated buffer avoids holding a list of chunks and then a concatenated copy of
    them (twice the output size at the peak). The channel count comes from the first decoded
    block (headers do not always state it), capped at `max_channels`.
    """

    def __init__(self, max_channels: int, capacity: int):
        self.max_channels = max_channels
        self.capacity = max(capacity, 1)
        self.n_channels = 0
        self.buf: np.ndarray | None = None
        self.n = 0

    def append(self, block: np.ndarray) -> None:
        if self.buf is None:
            self.n_channels = min(block.shape[0], self.max_channels)
            self.buf = np.empty((self.n_channels, self.capacity), dtype=np.float32)
        block = block[: self.n_channels]
        if block.shape[0] < self.n_channels:
            return  # _Resampler already drops frames whose channel count changed
        m = block.shape[1]
        if self.n + m > self.buf.shape[1]:
            grown = np.empty((self.n_channels, max(int(self.buf.shape[1] * 1.5), self.n + m)), dtype=np.float32)
            grown[:, : self.n] = self.buf[:, : self.n]
            self.buf = grown
        self.buf[:, self.n : self.n + m] = block
        self.n += m

    def result(self) -> list[np.ndarray]:
        if self.buf is None:
            return [np.zeros(0, dtype=np.float32)]
        used = self.buf[:, : self.n]
        # The resampler's band-limiting filter can overshoot full-scale input by a hair; the
        # DecodedAudio contract is [-1, 1].
        np.clip(used, -1.0, 1.0, out=used)
        if self.n < 0.9 * self.buf.shape[1]:
            used = used.copy()  # release a badly overestimated buffer
        self.buf = None
        return [used[i] for i in range(self.n_channels)]
