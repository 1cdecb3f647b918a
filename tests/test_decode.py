"""decode: every call format to 16 kHz float32 per channel, and clear errors for bad files.

Real speech (a recorded phone conversation) and test tones are encoded at test time with PyAV into
each format, decoded with callqa, and compared with an independent scipy reference.
"""

from __future__ import annotations

import wave

import av
import numpy as np
import pytest

from audio_helpers import (
    FORMATS,
    best_lag_correlation,
    can_encode,
    dominant_frequency,
    encode,
    encode_format,
    resample,
    rms_db,
    speech,
    tone,
)
from callqa.pipeline.decode import decode
from callqa.pipeline.types import AudioError, DecodedAudio

SR = 16000
SPEECH_OFFSET_S = 7.0  # the shared sample's first ~6.5 s are near-silent
LOSSY_MIN_CORR = 0.97
TONE_HZ = 1000.0


def _reference(x: np.ndarray, file_sr: int) -> np.ndarray:
    """What survives a recording at `file_sr`: nothing above its Nyquist frequency."""
    return resample(resample(x, SR, file_sr), file_sr, SR) if file_sr < SR else x


def _min_corr(fmt) -> float:
    if fmt.lossless:
        return 0.999
    if fmt.codec in ("pcm_mulaw", "pcm_alaw"):
        return 0.995  # 8-bit companding: ~38 dB SNR
    return LOSSY_MIN_CORR


@pytest.fixture(scope="module")
def mono_speech() -> np.ndarray:
    return speech(5.0, SPEECH_OFFSET_S)


@pytest.fixture(scope="module")
def stereo_split() -> np.ndarray:
    """Left: speech in the first 3 s then digital zero; right: zero then a 1 kHz tone."""
    half = 3 * SR
    left = np.concatenate([speech(3.0, SPEECH_OFFSET_S), np.zeros(half, np.float32)])
    right = np.concatenate([np.zeros(half, np.float32), tone(TONE_HZ, 3.0, SR, 0.3)])
    return np.stack([left, right])


@pytest.mark.parametrize("name", list(FORMATS))
def test_mono_speech_roundtrip(name, mono_speech, tmp_path):
    fmt = FORMATS[name]
    if not can_encode(fmt.codec, 1):
        pytest.skip(f"this ffmpeg build's {fmt.codec} encoder cannot write mono (decoding is tested in stereo)")
    path = encode_format(mono_speech, SR, tmp_path, fmt)

    audio = decode(path)

    assert isinstance(audio, DecodedAudio)
    assert audio.sample_rate == SR
    assert audio.n_channels == 1 and audio.source_channels == 1
    assert audio.source_sample_rate == (48000 if fmt.codec == "libopus" else fmt.sample_rate)
    assert audio.channels[0].dtype == np.float32
    assert audio.duration_s == pytest.approx(5.0, abs=0.07)  # AAC may keep < 1 frame of padding
    assert audio.duration_s == len(audio.channels[0]) / SR
    assert audio.path == str(path)
    assert audio.warnings == []
    corr, lag = best_lag_correlation(_reference(mono_speech, fmt.sample_rate), audio.channels[0])
    assert corr > _min_corr(fmt), f"{name}: correlation {corr:.4f} with the reference"
    assert abs(lag) <= 16, f"{name}: decoded audio is shifted by {lag} samples"


def test_codec_names(mono_speech, stereo_split, tmp_path):
    expected = {
        "wav_pcm16_16k": "pcm_s16le",
        "wav_mulaw_8k": "pcm_mulaw",
        "wav_alaw_8k": "pcm_alaw",
        "mp3": "mp3",
        "flac": "flac",
        "ogg_vorbis": "vorbis",
        "ogg_opus": "opus",
        "m4a_aac": "aac",
    }
    for name, codec in expected.items():
        path = encode_format(stereo_split[:, : SR // 2], SR, tmp_path, FORMATS[name], stem=name)
        assert decode(path).codec == codec, name


@pytest.mark.parametrize("name", list(FORMATS))
def test_stereo_channels_stay_separate(name, stereo_split, tmp_path):
    fmt = FORMATS[name]
    path = encode_format(stereo_split, SR, tmp_path, fmt)

    audio = decode(path)

    assert audio.sample_rate == SR
    assert audio.n_channels == 2 and audio.source_channels == 2
    assert audio.duration_s == pytest.approx(6.0, abs=0.07)
    left, right = audio.channels
    margin = SR // 10  # codec/resampler filters smear edges by a few ms
    first, second = slice(margin, 3 * SR - margin), slice(3 * SR + margin, 6 * SR - margin)
    # Speech on the left only while it was there; the tone on the right only in the second half.
    assert rms_db(left[first]) > -35
    assert rms_db(right[second]) > -16
    assert rms_db(left[second]) < rms_db(left[first]) - 40, "tone leaked into the left channel"
    assert rms_db(right[first]) < rms_db(right[second]) - 40, "speech leaked into the right channel"
    # Content: the left channel is the speech (not a mix), the right one the tone at its frequency.
    corr, _ = best_lag_correlation(_reference(stereo_split[0], fmt.sample_rate), left)
    assert corr > _min_corr(fmt), f"{name}: left-channel correlation {corr:.4f}"
    assert dominant_frequency(right[second], SR) == pytest.approx(TONE_HZ, rel=0.01)


def test_real_stereo_recording_44k_24bit(real_data):
    """whisper's jfk.flac: a real 44.1 kHz 24-bit stereo FLAC."""
    path = real_data / "realcalls" / "whisper" / "jfk.flac"
    if not path.is_file():
        pytest.skip("shared recordings not present")
    audio = decode(path)
    assert (audio.sample_rate, audio.source_sample_rate, audio.source_channels, audio.n_channels) == (SR, 44100, 2, 2)
    assert audio.codec == "flac"
    assert audio.duration_s == pytest.approx(11.0, abs=0.01)
    assert rms_db(audio.channels[0]) > -40
    assert max(float(np.abs(c).max()) for c in audio.channels) <= 1.0


def test_8k_upsampling_is_band_limited(tmp_path):
    """A 3.5 kHz tone in an 8 kHz file must not leave an image at 4.5 kHz (naive interpolation does)."""
    path = encode(tone(3500, 3.0, 8000, 0.5), 8000, tmp_path / "tel.wav", "pcm_s16le", "wav")
    x = decode(path).channels[0][SR // 4 : -SR // 4]
    spec = np.abs(np.fft.rfft(x * np.blackman(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    image_db = 10 * np.log10(spec[freqs > 4100].sum() / spec.sum())
    assert image_db < -60, f"image above 4 kHz at {image_db:.1f} dB"
    assert dominant_frequency(x, SR) == pytest.approx(3500, rel=0.001)
    assert rms_db(x) == pytest.approx(rms_db(tone(3500, 1.0, SR, 0.5)), abs=0.5)  # passband is flat


def test_downsampling_removes_content_above_8k(tmp_path):
    """A 10 kHz tone at 44.1 kHz must vanish, not alias to 6 kHz; a 7 kHz tone must pass."""
    sr = 44100
    high = decode(encode(tone(10_000, 2.0, sr, 0.5), sr, tmp_path / "hi.flac", "flac", "flac"))
    assert rms_db(high.channels[0][SR // 4 : -SR // 4]) < rms_db(tone(10_000, 1.0, sr, 0.5)) - 60
    ok = decode(encode(tone(7000, 2.0, sr, 0.5) + tone(10_000, 2.0, sr, 0.1), sr, tmp_path / "ok.flac", "flac", "flac"))
    x = ok.channels[0][SR // 4 : -SR // 4]
    assert dominant_frequency(x, SR) == pytest.approx(7000, rel=0.001)
    assert rms_db(x) == pytest.approx(rms_db(tone(7000, 1.0, SR, 0.5)), abs=0.5)


def test_more_than_two_channels_keeps_first_two(tmp_path):
    quad = np.stack([tone(f, 2.0, SR, 0.3) for f in (300.0, 700.0, 1100.0, 1900.0)])
    audio = decode(encode(quad, SR, tmp_path / "quad.wav", "pcm_s16le", "wav"))
    assert audio.source_channels == 4
    assert audio.n_channels == 2
    assert [round(dominant_frequency(c, SR)) for c in audio.channels] == [300, 700]
    assert any("4 channels" in w for w in audio.warnings)
    assert decode(tmp_path / "quad.wav", max_channels=4).n_channels == 4


def test_one_silent_channel_is_fine(tmp_path):
    x = np.stack([speech(2.0, SPEECH_OFFSET_S), np.zeros(2 * SR, np.float32)])
    audio = decode(encode(x, SR, tmp_path / "one_side.wav", "pcm_s16le", "wav"))
    assert audio.n_channels == 2
    assert not audio.channels[1].any()


def test_partly_corrupt_mp3_decodes_with_warning(mono_speech, tmp_path):
    path = encode_format(mono_speech, SR, tmp_path, FORMATS["mp3"])
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 1500] = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))

    audio = decode(path)

    assert audio.duration_s > 3.5  # most of the 5 s survives
    assert any("corrupt data" in w for w in audio.warnings), audio.warnings


def test_truncated_mp3_that_still_has_audio_is_accepted_with_warning(mono_speech, tmp_path):
    path = encode_format(mono_speech, SR, tmp_path, FORMATS["mp3"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    audio = decode(path)
    assert audio.duration_s == pytest.approx(2.5, abs=0.3)
    assert any(w.startswith("truncated") for w in audio.warnings), audio.warnings


# --- files that must be rejected: AudioError naming the file and the specific problem ----------


def _rejects(path, *reason_words: str) -> AudioError:
    with pytest.raises(AudioError) as info:
        decode(path)
    err = info.value
    assert str(path) in str(err) and err.path == str(path)
    for w in reason_words:
        assert w in err.message, f"{err.message!r} lacks {w!r}"
    assert err.stage == "decode" and err.permanent
    return err


def test_missing_file(tmp_path):
    _rejects(tmp_path / "nope.wav", "file not found")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    _rejects(path, "zero-byte")


def test_directory(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    _rejects(tmp_path / "dir.wav", "directory")


def test_text_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("Agent: hello, thank you for calling.\nCustomer: hi.\n" * 50)
    _rejects(path, "not an audio file")


def test_mp3_cut_to_its_first_bytes(mono_speech, tmp_path):
    """Cut a real mp3 to its first few hundred bytes.

    Chosen behaviour: with 300 bytes ffmpeg cannot even identify the format ("not an audio file");
    with 700 bytes the header (declaring 5 s) and a frame or two survive: under 1 s of a file
    recognisably cut short is rejected as truncated rather than scored.
    """
    path = encode_format(mono_speech, SR, tmp_path, FORMATS["mp3"])
    data = path.read_bytes()
    path.write_bytes(data[:300])
    _rejects(path, "not an audio file")
    path.write_bytes(data[:700])
    _rejects(path, "truncated", "of 5.00 s declared")


def test_truncated_flac_header(mono_speech, tmp_path):
    path = encode_format(mono_speech, SR, tmp_path, FORMATS["flac"])
    path.write_bytes(path.read_bytes()[:200])
    _rejects(path, "truncated")


def test_no_audio_stream(tmp_path):
    path = tmp_path / "screen.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 40, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    _rejects(path, "no audio stream", "video")


def test_zero_duration(tmp_path):
    path = tmp_path / "nothing.wav"
    with wave.open(str(path), "wb") as w:  # a valid RIFF header and no samples
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    assert path.stat().st_size == 44
    _rejects(path, "zero duration")


@pytest.mark.parametrize("codec", ["pcm_s16le", "pcm_alaw", "pcm_mulaw"])
def test_digital_silence(codec, tmp_path):
    # A-law has no zero code: its silence decodes to +-8 LSB, which must still count as silent.
    path = encode(np.zeros((2, 3 * 8000), np.float32), 8000, tmp_path / "silence.wav", codec, "wav")
    _rejects(path, "silent")


def test_quiet_but_real_audio_is_not_silent(tmp_path):
    x = speech(2.0, SPEECH_OFFSET_S)
    x *= 10 ** (-40 / 20) / np.abs(x).max()  # peak at -40 dBFS
    assert decode(encode(x, SR, tmp_path / "quiet.wav", "pcm_s16le", "wav")).duration_s == pytest.approx(2.0)
