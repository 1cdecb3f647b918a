"""Diarization: the GE2E encoder, the offline diarizer's DER on real and synthesised calls,
words → speakers, overtalk, stereo bleed, and the pyannote loading paths."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Segment
from scipy.io import wavfile

from callqa.config.settings import DiarizationSettings, load_settings
from callqa.evaluation.diarization import der_components, load_rttm, synth_eval_calls
from callqa.models.diarization import PyannoteDiarizer, find_pyannote_pipeline, load_diarizer, relabel
from callqa.models.speaker_embedding import SpeakerEncoder, load_ge2e
from callqa.pipeline.bleed import suppress_bleed
from callqa.pipeline.decode import decode
from callqa.pipeline.detectors.overtalk import confirm_overtalk_in_audio, find_overtalk, overtalk_events, overtalk_total
from callqa.pipeline.diarize import speaker_timelines, utterances_from_diarization, word_speakers
from callqa.pipeline.types import DecodedAudio, ModelUnavailable, Overtalk, Transcript, Word
from callqa.pipeline.types import Segment as AsrSegment
from callqa.synth.demo import demo_scripts
from callqa.synth.mix import mix_call
from callqa.synth.truth import CallTruth
from callqa.synth.tts import speak


def _pyannote_sample() -> tuple[np.ndarray, Annotation]:
    root = importlib.resources.files("pyannote.audio").joinpath("sample")
    sr, x = wavfile.read(str(root.joinpath("sample.wav")))
    assert sr == 16000
    ref = load_rttm(Path(str(root.joinpath("sample.rttm"))))["sample"]
    return (x.astype(np.float32) / 32768.0), ref


# --------------------------------------------------------------------------- encoder


def test_ge2e_tells_the_two_synth_voices_apart():
    enc = SpeakerEncoder.load()
    lines = [
        "Thank you for calling Acme Energy, how can I help you today?",
        "I have just had my bill through and it is almost twice what I normally pay.",
    ]
    a = [enc.embed_utterance(speak(t, "joe", 16000)) for t in lines]
    b = [enc.embed_utterance(speak(t, "joe_high", 16000)) for t in lines]
    same = min(float(a[0] @ a[1]), float(b[0] @ b[1]))
    other = max(float(a[0] @ b[0]), float(a[1] @ b[1]))
    assert same > 0.8 and other < same - 0.1, (same, other)
    assert a[0].shape == (256,) and abs(float(np.linalg.norm(a[0])) - 1) < 1e-5


def test_ge2e_weights_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"lstm.weight_ih_l0": np.zeros((3, 3), np.float32)})
    with pytest.raises(ModelUnavailable, match="bad.npz.*missing"):
        load_ge2e(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="junk.pt"):
        load_ge2e(junk)
    with pytest.raises(ModelUnavailable, match="not found"):
        load_ge2e(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- DER


def test_offline_diarizer_der_on_the_pyannote_sample(offline_diarizer):
    wav, ref = _pyannote_sample()
    hyp = offline_diarizer(wav, num_speakers=2)
    c = der_components(ref, hyp)
    assert hyp.labels() == ["SPEAKER_00", "SPEAKER_01"]
    assert c["der"] <= 0.20, c  # measured 0.095 (collar 0.25 s, overlap scored)


@pytest.fixture(scope="module")
def synth_mono(tmp_path_factory):
    out = tmp_path_factory.mktemp("dia-synth")
    paths = synth_eval_calls(out, only=["parcelway_delivery_complaint", "brightline_password_reset"])
    return {p.stem: p for p in paths}


@pytest.mark.slow  # synthesises two calls (~35 s); the pyannote sample above keeps DER in the quick subset
def test_offline_diarizer_der_on_synthesised_mono_calls(offline_diarizer, synth_mono):
    for stem, path in synth_mono.items():
        audio = decode(path)
        ref = load_rttm(path.with_suffix(".rttm"))[stem]
        hyp = offline_diarizer(audio.channels[0], num_speakers=2)
        c = der_components(ref, hyp)
        assert c["der"] <= 0.10, (stem, c)
        assert len(hyp.labels()) == 2
        # the same annotation with the turns it could not attribute: few on two distinct voices
        ann, uncertain = offline_diarizer.diarize(audio.channels[0], num_speakers=2)
        assert ann == hyp
        assert sum(e - s for s, e in uncertain) <= 0.05 * ref.get_timeline().support().duration(), uncertain


@pytest.mark.slow  # the synthesised calls above; test_overtalk_names_who_started_and_measures_it stays quick
def test_overlapped_voices_on_a_mono_call_become_overtalk(offline_diarizer, synth_mono):
    path = synth_mono["parcelway_delivery_complaint_mono"]
    truth = CallTruth.load(path.with_name(path.stem + ".truth.json"))
    (ov,) = truth.overlaps  # the customer cuts in on the agent for 1.2 s
    hyp = offline_diarizer(decode(path).channels[0], num_speakers=2)
    found = find_overtalk(speaker_timelines(hyp), min_s=0.1)
    near = [o for o in found if o.start < ov.end_s + 0.5 and o.end > ov.start_s - 0.8]
    assert near, (found, ov)
    # who started: the speaker whose turn covers the truth customer turn after the overlap
    after = hyp.crop(Segment(ov.end_s + 0.3, ov.end_s + 1.0)).argmax()
    assert near[0].started_by == after
    assert len(found) <= 2  # turn changes at pauses are not overtalk


def test_identical_stereo_channels_and_silent_channel_become_mono():
    x = speak("Hello, thanks for calling, how can I help?", "joe", 16000)
    same = DecodedAudio("s.wav", [x.copy(), x.copy()], 16000, 8000, 2, "pcm_s16le", len(x) / 16000)
    out, rep = suppress_bleed(same)
    assert out.n_channels == 1 and rep.action == "identical->mono"
    silent = DecodedAudio("s.wav", [x.copy(), np.zeros_like(x)], 16000, 8000, 2, "pcm_s16le", len(x) / 16000)
    out, rep = suppress_bleed(silent)
    assert out.n_channels == 1 and rep.action == "silent-channel->mono" and np.array_equal(out.channels[0], x)


# synthesises a whole telephone call (~15 s); the quick subset keeps bleed's mono cases just above
@pytest.mark.slow
def test_bleed_is_muted_but_own_speech_and_overtalk_survive():
    script = demo_scripts()[2][1]  # parcelway: has an interruption
    stereo, truth = mix_call(script, sample_rate=16000, stereo=True, telephone=True, seed=3)
    a, c = stereo[0].astype(np.float64), stereo[1].astype(np.float64)
    d = 40  # 2.5 ms echo path, -22 dB
    leak = 10 ** (-22 / 20)
    a2 = a + leak * np.concatenate([np.zeros(d), c[:-d]])
    c2 = c + leak * np.concatenate([np.zeros(d), a[:-d]])
    audio = DecodedAudio(
        "b.wav", [a2.astype(np.float32), c2.astype(np.float32)], 16000, 16000, 2, "pcm_s16le", len(a) / 16000
    )
    out, rep = suppress_bleed(audio)
    assert rep.action == "suppressed"
    assert np.array_equal(audio.channels[1], c2.astype(np.float32))  # a copy unless asked otherwise
    own = DecodedAudio("b.wav", [x.copy() for x in audio.channels], 16000, 16000, 2, "pcm_s16le", audio.duration_s)
    same, _ = suppress_bleed(own, in_place=True)  # the flow's way: no channel-sized copies
    assert same.channels[1] is own.channels[1] and np.array_equal(same.channels[1], out.channels[1])

    def energy(x, spans):
        idx = np.concatenate([np.arange(int(s * 16000), int(e * 16000)) for s, e in spans])
        return float(np.mean(np.square(x[idx], dtype=np.float64)))

    ov = truth.overlaps[0]
    agent_only = [
        (t.start_s + 0.2, t.end_s - 0.2)
        for t in truth.turns
        if t.role == "agent" and not (t.start_s < ov.end_s and ov.start_s < t.end_s)
    ]
    cust = [(t.start_s, t.end_s) for t in truth.turns if t.role == "customer"]
    # the customer channel's copy of the agent drops by >= 15 dB ...
    before, after = energy(c2, agent_only), energy(out.channels[1], agent_only)
    assert 10 * np.log10(before / max(after, 1e-20)) >= 15, (before, after)
    # ... while the customer's own speech (including the interruption) keeps its level
    own_before, own_after = energy(c2, cust), energy(out.channels[1], cust)
    assert 10 * np.log10(own_before / own_after) < 1.0
    inter = [(ov.start_s, ov.end_s)]
    assert 10 * np.log10(energy(c2, inter) / energy(out.channels[1], inter)) < 1.5


# --------------------------------------------------------------------------- words → speakers


def _w(s, e, t):
    return Word(s, e, t, 0.9)


def test_words_go_to_the_turn_they_overlap_most_and_every_word_gets_a_speaker():
    tl = {"SPEAKER_00": [(0.0, 2.0), (5.0, 6.0)], "SPEAKER_01": [(1.9, 4.0)]}
    words = [
        _w(0.1, 0.5, "hello"),
        _w(1.8, 2.3, "there"),
        _w(2.5, 2.9, "hi"),
        _w(4.3, 4.4, "um"),
        _w(4.8, 4.8, "42"),
        _w(7.0, 7.2, "bye"),
    ]
    assert word_speakers(words, tl) == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_01",
        "SPEAKER_01",
        "SPEAKER_00",
        "SPEAKER_00",
    ]


def test_utterances_split_at_speaker_changes():
    ann = Annotation()
    ann[Segment(0, 2)] = "A"
    ann[Segment(2.1, 4)] = "B"
    ann[Segment(4.2, 5)] = "A"
    words = [
        _w(0.1, 0.6, "Thanks"),
        _w(0.7, 1.5, "for calling."),
        _w(2.2, 2.8, "Hi,"),
        _w(2.9, 3.5, "my bill."),
        _w(4.3, 4.8, "Sure."),
    ]
    t = Transcript("en", 1.0, [AsrSegment(0, 5, "", tuple(words), 0, -0.1, 0.01)], "test")
    utts = utterances_from_diarization(t, relabel(ann))
    assert [(u.speaker, u.text) for u in utts] == [
        ("SPEAKER_00", "Thanks for calling."),
        ("SPEAKER_01", "Hi, my bill."),
        ("SPEAKER_00", "Sure."),
    ]
    assert [u.seq for u in utts] == [0, 1, 2] and all(u.channel is None for u in utts)


def test_overtalk_names_who_started_and_measures_it():
    tl = {"agent": [(0.0, 5.0), (8.0, 9.0)], "customer": [(4.0, 7.0), (8.9, 9.05)]}
    found = find_overtalk(tl)
    assert [(o.start, o.end, o.started_by, o.talked_over) for o in found] == [(4.0, 5.0, "customer", "agent")]
    assert overtalk_total(found) == 1.0
    (ev,) = overtalk_events("c1", found, [], {"agent": "agent", "customer": "customer"})
    assert ev.type == "overtalk" and ev.role == "customer" and ev.data["talked_over_role"] == "agent"
    assert ev.data["duration_s"] == 1.0 and ev.evidence


def test_stereo_overtalk_is_confirmed_in_the_audio_and_split_overlaps_join():
    active = np.zeros((2, 1000), dtype=bool)
    active[0, 0:250] = True  # agent talks 0-5 s
    active[1, 200:350] = True  # customer cuts in at 4 s: 1 s of real overlap
    active[1, 400:450] = True  # customer's next reply at 8-9 s; the agent is silent then
    # word timings: the real overlap (split by a breath) and a reply word placed too early (4.9-5.3 s
    # inside the agent's turn would be fine, but 8.0-8.4 s against silence on channel 0 is not)
    words = [Overtalk(4.0, 4.4, "ch1", "ch0"), Overtalk(4.6, 5.0, "ch1", "ch0"), Overtalk(8.0, 8.4, "ch0", "ch1")]
    got = confirm_overtalk_in_audio(words, active, {"ch0": 0, "ch1": 1})  # frames of 20 ms
    assert [(o.start, o.end, o.started_by) for o in got] == [(4.0, 5.0, "ch1")]
    # a speaker without a channel cannot be checked: kept as the words say
    assert confirm_overtalk_in_audio(words[2:], active, {"ch0": 0}) == words[2:]


# --------------------------------------------------------------------------- pyannote loading


def test_pyannote_pipeline_errors_are_typed_and_name_the_source(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="no config.yaml"):
        PyannoteDiarizer.load(str(empty))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text(
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n"
        "    segmentation: ./missing-segmentation.bin\n    embedding: ./missing-embedding.bin\n"
    )
    with pytest.raises(ModelUnavailable, match="cannot load pyannote pipeline"):
        PyannoteDiarizer.load(str(broken))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="not in the local Hugging Face cache"):
        PyannoteDiarizer.load("pyannote/speaker-diarization-community-1")


def test_load_diarizer_prefers_configured_then_found_pipeline_then_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub read the variable when it was imported (at collection): without this, pyannote's
    # downloads retry with backoff for ~20 s on a machine with no network before they fail
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    settings = load_settings().models
    # nothing on disk: the offline diarizer, saying what it is built from
    d = load_diarizer(settings, search_dirs=[tmp_path])
    assert d.method == "offline-ge2e" and "GE2E" in d.description and "Silero" in d.description
    # a pyannote pipeline dir found on disk that cannot load: offline, with the reason
    found = tmp_path / "pyannote" / "speaker-diarization"
    found.mkdir(parents=True)
    (found / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params: {}\n")
    assert find_pyannote_pipeline([tmp_path]) == found
    d = load_diarizer(settings, search_dirs=[tmp_path])
    assert d.method == "offline-ge2e" and "failed to load" in d.description
    # a configured pipeline that cannot load is an error, not a silent fallback
    bad = settings.model_copy(update={"diarization": DiarizationSettings(pipeline=str(tmp_path / "nope"))})
    with pytest.raises(ModelUnavailable):
        load_diarizer(bad, search_dirs=[])


def test_callqa_models_says_which_diarizer_is_in_use():
    from callqa.models.status import describe_models

    (st,) = [s for s in describe_models(load_settings().models) if s.role == "diarization"]
    assert st.available and st.name in ("offline-ge2e", "pyannote")
    assert "stereo: by channel" in st.detail


def test_offline_turns_run_over_a_speakers_short_pauses_but_not_over_the_other_party():
    from callqa.models.offline_diarizer import FrameAnalysis, OfflineDiarizer, OfflineParams

    # 10 ms frames: S0 0-1 s, (0.5 s pause) S0 1.5-2.5 s, S1 2.8-3.8 s, S0 4.0-5.0 s, (1.5 s pause) S0 6.5-7.5 s
    runs = [(0, 100, 0), (150, 250, 0), (280, 380, 1), (400, 500, 0), (650, 750, 0)]
    frames = np.concatenate([np.arange(a, b) for a, b, _ in runs])
    path = np.concatenate([np.full(b - a, who, np.int32) for a, b, who in runs])
    sims = np.eye(2)[path]
    fa = FrameAnalysis([(a / 100, b / 100) for a, b, _ in runs], frames, sims, path, 2, 10)
    diarizer = OfflineDiarizer(None, lambda x: x, "test", OfflineParams(bridge_pause_s=1.0))  # type: ignore[arg-type]
    turns = [
        (round(s.start, 2), round(s.end, 2), lab) for s, _, lab in diarizer._annotation(fa).itertracks(yield_label=True)
    ]
    assert turns == [
        (0.0, 2.5, "SPEAKER_00"),  # one turn across the 0.5 s pause
        (2.8, 3.8, "SPEAKER_01"),
        (4.0, 5.0, "SPEAKER_00"),  # the other party spoke in between: not joined with the first
        (6.5, 7.5, "SPEAKER_00"),  # 1.5 s: a pause, not inside a turn
    ]
    unbridged = OfflineDiarizer(None, lambda x: x, "test", OfflineParams(bridge_pause_s=0.0))  # type: ignore[arg-type]
    assert len(unbridged._annotation(fa)) == 5
