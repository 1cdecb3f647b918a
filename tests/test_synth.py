"""callqa.synth: synthesised calls must match their ground truth, or every test built on them lies.

Audio is read back with PyAV directly (not callqa's decoder) so these checks are independent of
the decode stage.
"""

from __future__ import annotations

import json
import re

import av
import jiwer
import numpy as np
import pytest

from callqa.synth import demo, mix, tts
from callqa.synth.errors import SynthError
from callqa.synth.script import CallScript, DeadAir, Hold, Turn
from callqa.synth.truth import CallTruth


def read_audio(path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """(float32 [channels, n], sample rate) as stored in the file, optionally resampled."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        out_rate = rate or st.rate
        rs = av.AudioResampler(format="fltp", layout=st.layout.name, rate=out_rate)
        parts = [g.to_ndarray() for f in c.decode(st) for g in rs.resample(f)]
        parts += [g.to_ndarray() for g in rs.resample(None)]
    return np.concatenate(parts, axis=1).astype(np.float32), out_rate


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-10))


def span(x: np.ndarray, sr: int, a: float, b: float) -> np.ndarray:
    return x[..., int(round(a * sr)) : int(round(b * sr))]


SCRIPT = CallScript(
    [
        Turn("agent", "Thank you for calling, how can I help?", gap_before_s=0.3),
        Turn("customer", "I need to update my address."),
        Turn("agent", "May I place you on a brief hold?"),
        Hold(4.0, "music"),
        Turn("agent", "Thanks for holding, that is done.", gap_before_s=0.5),
        DeadAir(3.0),
        Turn("customer", "Great, thank you."),
        Hold(2.5, "silence"),
        Turn("agent", "Is there anything else I can help with?"),
        Turn("customer", "No, that is all, goodbye.", overlap_s=0.6),
    ]
)


@pytest.fixture(scope="module")
def stereo_call(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "call.wav"
    truth = mix.render_call(
        SCRIPT, path, sample_rate=8000, stereo=True, agent_channel=1, codec="pcm_mulaw", noise_floor_dbfs=-65.0, seed=11
    )
    return path, truth


def busy(truth: CallTruth, a: float, b: float, role: str) -> bool:
    """Does anything of `role` (speech, or hold audio on its channel) fall inside [a, b]?"""
    spans = truth.speech_spans(role) + [
        (h.start_s, h.end_s) for h in truth.holds if h.kind == "music" and h.on in (role, "both")
    ]
    return any(s < b and a < e for s, e in spans)


def test_stereo_file_format_and_truth_file(stereo_call):
    path, truth = stereo_call
    x, sr = read_audio(path)
    with av.open(str(path)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_mulaw"
    assert (sr, x.shape[0]) == (8000, 2)
    assert truth.sample_rate == 8000 and truth.channels == 2 and truth.codec == "pcm_mulaw"
    assert abs(x.shape[1] / sr - truth.duration_s) < 0.01
    # truth sits beside the audio as <stem>.truth.json, never as <stem>.json (the metadata sidecar)
    tpath = path.with_name("call.truth.json")
    assert tpath.is_file() and not path.with_name("call.json").exists()
    assert CallTruth.load(tpath) == truth
    assert [t.role for t in truth.turns] == [t.speaker for t in SCRIPT.turns]
    assert all(t.channel == (1 if t.role == "agent" else 0) for t in truth.turns)


def test_turn_timings_match_energy_on_each_channel(stereo_call):
    path, truth = stereo_call
    x, sr = read_audio(path)
    for t in truth.turns:
        own, other = x[t.channel], x[1 - t.channel]
        assert dbfs(span(own, sr, t.start_s, t.end_s)) > -30, f"turn {t.index} has no energy on its channel"
        # the first and last 80 ms are already speech: truth starts and ends on the voice, not around it
        assert dbfs(span(own, sr, t.start_s, t.start_s + 0.08)) > -45
        tail = dbfs(span(own, sr, t.end_s - 0.08, t.end_s))
        assert tail > -58  # a trailing fricative is quiet at 8 kHz, but still well above the -65 dB floor
        # just outside the span, this speaker's channel is quiet (unless they were talking anyway)
        if not busy(truth, t.start_s - 0.25, t.start_s - 0.02, t.role):
            assert dbfs(span(own, sr, t.start_s - 0.25, t.start_s - 0.02)) < -58
        if not busy(truth, t.end_s + 0.02, t.end_s + 0.25, t.role):
            after = dbfs(span(own, sr, t.end_s + 0.02, t.end_s + 0.25))
            assert after < -58 and tail > after + 4
        # the other channel is near-silent through this turn except where its owner really talks
        other_role = "customer" if t.role == "agent" else "agent"
        if not busy(truth, t.start_s, t.end_s, other_role):
            assert dbfs(span(other, sr, t.start_s, t.end_s)) < -55, f"turn {t.index} leaks onto the other channel"


def test_holds_dead_air_and_overlap(stereo_call):
    path, truth = stereo_call
    x, sr = read_audio(path)
    agent_ch = truth.agent_channel
    music = [h for h in truth.holds if h.kind == "music"]
    quiet = [h for h in truth.holds if h.kind == "silence"]
    assert len(music) == 1 and len(quiet) == 1 and len(truth.dead_air) == 1
    assert music[0].duration_s == pytest.approx(4.0, abs=1e-3) and quiet[0].duration_s == pytest.approx(2.5, abs=1e-3)

    m = span(x[agent_ch], sr, music[0].start_s + 0.1, music[0].end_s - 0.1)
    assert -28 < dbfs(m) < -14
    # hold music is tonal (a few strong spectral lines), unlike noise: low spectral flatness
    spec = np.abs(np.fft.rfft(m * np.hanning(m.size))) ** 2 + 1e-20
    flatness = np.exp(np.mean(np.log(spec))) / np.mean(spec)
    assert flatness < 0.05
    assert dbfs(span(x[1 - agent_ch], sr, music[0].start_s, music[0].end_s)) < -55  # customer leg silent

    for s in quiet + truth.dead_air:
        for ch in (0, 1):
            assert dbfs(span(x[ch], sr, s.start_s + 0.05, s.end_s - 0.05)) < -55
    # dead air really is nobody talking: it starts where the last turn ended
    ends = [t.end_s for t in truth.turns if t.end_s <= truth.dead_air[0].start_s + 1e-6]
    assert truth.dead_air[0].start_s == pytest.approx(max(ends), abs=1e-3)
    assert truth.dead_air[0].duration_s == pytest.approx(3.0, abs=1e-3)

    assert len(truth.overlaps) == 1
    ov = truth.overlaps[0]
    assert ov.speakers == ["agent", "customer"] and ov.duration_s == pytest.approx(0.6, abs=0.02)
    a, b = (truth.turns[i] for i in ov.turns)
    assert a.start_s < b.start_s < a.end_s and ov.end_s == pytest.approx(min(a.end_s, b.end_s), abs=1e-3)
    for ch in (0, 1):  # both parties audible during the overtalk
        assert dbfs(span(x[ch], sr, ov.start_s, ov.end_s)) > -35


def test_mono_16k_flac_mixes_both_voices(tmp_path):
    script = CallScript(
        [
            Turn("agent", "Good morning, this is Tom."),
            Turn("customer", "Hi Tom."),
            DeadAir(1.5),
            Turn("agent", "How can I help?"),
        ]
    )
    path = tmp_path / "mono.flac"
    truth = mix.render_call(script, path, sample_rate=16000, stereo=False)
    x, sr = read_audio(path)
    assert (sr, x.shape[0]) == (16000, 1) and truth.channels == 1 and truth.agent_channel is None
    assert {t.channel for t in truth.turns} == {0}
    for t in truth.turns:
        assert dbfs(span(x[0], sr, t.start_s, t.end_s)) > -30
    d = truth.dead_air[0]
    assert dbfs(span(x[0], sr, d.start_s + 0.02, d.end_s - 0.02)) < -80  # no noise floor asked for


def test_deterministic_for_a_seed(tmp_path):
    script = CallScript([Turn("agent", "Hello there."), Hold(1.0, "music"), Turn("customer", "Hi.")])
    kw = dict(sample_rate=8000, codec="pcm_mulaw", telephone=True, noise_floor_dbfs=-50.0)
    mix.render_call(script, tmp_path / "a.wav", seed=5, **kw)
    tts.clear_tts_cache()  # the second render synthesises again: piper itself must be deterministic
    mix.render_call(script, tmp_path / "b.wav", seed=5, **kw)
    mix.render_call(script, tmp_path / "c.wav", seed=6, **kw)
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.wav", "b.wav", "c.wav"))
    assert a == b
    assert a != c  # a different seed draws a different noise floor and melody


def test_telephone_band_and_noise_floor(tmp_path):
    script = CallScript([Turn("agent", "Your order has shipped."), DeadAir(1.0), Turn("customer", "Thanks.")])
    wide, _ = mix.mix_call(script, sample_rate=16000, stereo=False)
    tel, truth = mix.mix_call(script, sample_rate=16000, stereo=False, telephone=True, noise_floor_dbfs=-50.0)

    def band_energy(x, lo, hi):
        f = np.fft.rfftfreq(x.size, 1 / 16000)
        p = np.abs(np.fft.rfft(x)) ** 2
        return p[(f >= lo) & (f < hi)].sum()

    # above 4 kHz: the telephone band-pass removes (nearly) all of what the wideband voice has
    assert band_energy(tel[0], 4500, 8000) < 0.01 * band_energy(wide[0], 4500, 8000)
    assert band_energy(tel[0], 500, 3000) > 0.5 * band_energy(wide[0], 500, 3000)
    d = truth.dead_air[0]
    assert dbfs(span(tel[0], 16000, d.start_s, d.end_s)) == pytest.approx(-50, abs=2)


def _f0_median(x: np.ndarray, sr: int) -> float:
    """Median pitch of voiced frames by autocorrelation (60-400 Hz)."""
    win, hop = int(0.04 * sr), int(0.01 * sr)
    lo, hi = int(sr / 400), int(sr / 60)
    thr = 0.3 * np.sqrt(np.mean(x**2)) * 3
    f0s = []
    for i in range(0, x.size - win, hop):
        fr = x[i : i + win] - np.mean(x[i : i + win])
        if np.sqrt(np.mean(fr**2)) < thr:
            continue
        ac = np.correlate(fr, fr, "full")[win - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:  # clearly periodic: a voiced frame
            f0s.append(sr / lag)
    assert len(f0s) > 20
    return float(np.median(f0s))


def test_second_voice_is_pitch_and_formant_shifted_at_natural_tempo():
    text = "We will send a new card to your home address within five working days."
    low = tts.speak(text, "joe", 16000)
    high = tts.speak(text, "joe_high", 16000)
    assert _f0_median(high, 16000) / _f0_median(low, 16000) == pytest.approx(1.25, abs=0.08)

    def centroid(x):
        f = np.fft.rfftfreq(x.size, 1 / 16000)
        p = np.abs(np.fft.rfft(x)) ** 2
        return (f * p).sum() / p.sum()

    assert centroid(high) > 1.1 * centroid(low)  # the spectral envelope (formants) moved up too
    assert high.size / low.size == pytest.approx(1.0, abs=0.15)  # tempo stays natural


def test_bad_requests_raise_clear_errors(tmp_path):
    with pytest.raises(SynthError, match="unknown voice"):
        tts.get_voice("nobody")
    with pytest.raises(SynthError, match="pitch factor"):
        tts.get_voice("joe@9")
    assert tts.get_voice("joe@1.1").pitch == pytest.approx(1.1)
    script = CallScript([Turn("agent", "Hi.")])
    with pytest.raises(SynthError, match=r"bad\.xyz.*unsupported audio suffix"):
        mix.render_call(script, tmp_path / "bad.xyz")
    with pytest.raises(SynthError, match=r"x\.flac.*cannot go in a \.flac"):
        mix.render_call(script, tmp_path / "x.flac", codec="pcm_mulaw")
    with pytest.raises(SynthError, match="same speaker"):
        mix.mix_call(CallScript([Turn("agent", "One."), Turn("agent", "Two.", overlap_s=0.3)]))
    with pytest.raises(SynthError, match="speaker must be"):
        CallScript([Turn("supervisor", "Hi.")])  # type: ignore[arg-type]


def test_espeak_voice_without_the_binary_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda name: None)  # a fresh machine: PyPI packages only
    assert not any(v.startswith("espeak:") for v in tts.available_voices())
    with pytest.raises(SynthError, match="needs the espeak-ng binary"):
        tts.speak("Hello.", "espeak:en-us+f3")


@pytest.mark.skipif(not tts.espeak_available(), reason="optional espeak-ng binary not installed")
def test_optional_espeak_voice(tmp_path):
    s = CallScript(
        [Turn("agent", "Hello, this is the agent."), Turn("customer", "Hello.")],
        voices={"agent": "espeak:en-us+f3", "customer": "joe"},
    )
    truth = mix.render_call(s, tmp_path / "e.wav", sample_rate=8000)
    x, sr = read_audio(tmp_path / "e.wav")
    t = truth.turns[0]
    assert t.voice == "espeak:en-us+f3" and dbfs(span(x[0], sr, t.start_s, t.end_s)) > -30


def test_demo_scripts_and_writer(tmp_path):
    scripts = demo.demo_scripts()
    # six English calls and two Mandarin ones (spoken by the zh-tts extra)
    assert [sc.language for _, sc, _ in scripts].count("en") == 6
    assert [sc.language for _, sc, _ in scripts].count("zh") == 2 and len(scripts) == 8
    stems = [s for s, _, _ in scripts]
    assert len(set(stems)) == len(stems)
    for _stem, script, meta in scripts:
        assert {"agent_id", "queue", "started_at", "direction", "customer_id"} <= set(meta)
        assert meta["direction"] == "inbound"
        assert {t.speaker for t in script.turns} == {"agent", "customer"}
    tags = {stem: [tag for t in script.turns for tag in t.tags] for stem, script, _ in scripts}
    first_agent = {stem: next(t for t in script.turns if t.speaker == "agent") for stem, script, _ in scripts}
    assert sum("greeting" in first_agent[s].tags for s in stems) >= 4
    assert any("no_greeting" in tags[s] and "greeting" not in tags[s] for s in stems)
    assert any("paraphrased_greeting" in tags[s] for s in stems)
    hold_calls = [sc for _, sc, _ in scripts if any(isinstance(i, Hold) for i in sc.items)]
    assert hold_calls and any("hold_announce" in t.tags for t in hold_calls[0].turns)
    assert any("hold_thanks" in t.tags for t in hold_calls[0].turns)
    assert [i.duration_s for i in hold_calls[0].items if isinstance(i, Hold)] == [pytest.approx(20, abs=5)]

    paths = demo.write_demo_calls(tmp_path, only=["brightline_no_greeting"])
    assert [p.name for p in paths] == ["brightline_no_greeting.flac"]
    sidecar = json.loads((tmp_path / "brightline_no_greeting.json").read_text())
    assert sidecar["direction"] == "inbound" and sidecar["agent_id"]
    truth = CallTruth.load(tmp_path / "brightline_no_greeting.truth.json")
    x, sr = read_audio(paths[0])
    assert (sr, x.shape[0]) == (16000, 2) and 40 <= truth.duration_s <= 90
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "brightline_no_greeting.flac",
        "brightline_no_greeting.json",
        "brightline_no_greeting.truth.json",
    ]
    with pytest.raises(SynthError, match="unknown demo call"):
        demo.write_demo_calls(tmp_path, only=["nope"])


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", s.lower()).split())


@pytest.mark.slow
def test_both_voices_intelligible_to_whisper_over_a_phone_line(tmp_path, whisper_asr):
    lines = {
        "agent": [
            "Thank you for calling Acme Energy, my name is Sarah, how can I help you today?",
            "I can certainly look into that for you, could you please confirm your full name?",
        ],
        "customer": [
            "Hi, I have just had my bill through and it is almost twice what I usually pay.",
            "My parcel was supposed to arrive last week and it still has not turned up.",
        ],
    }
    items = [
        Turn(spk, text)
        for pair in zip(lines["agent"], lines["customer"])
        for spk, text in zip(("agent", "customer"), pair)
    ]
    path = tmp_path / "asr.wav"
    truth = mix.render_call(
        CallScript(items), path, sample_rate=8000, codec="pcm_mulaw", telephone=True, noise_floor_dbfs=-60.0
    )
    x, _ = read_audio(path, rate=16000)
    for role in ("agent", "customer"):
        ch = truth.agent_channel if role == "agent" else 1 - truth.agent_channel
        segs, _ = whisper_asr.model.transcribe(
            x[ch], language="en", beam_size=5, vad_filter=True, condition_on_previous_text=False
        )
        hyp = _norm(" ".join(s.text for s in segs))
        wer = jiwer.wer(_norm(" ".join(lines[role])), hyp)
        assert wer < 0.15, f"{role} voice ({truth.voices[role]}) WER {wer:.2f}: {hyp!r}"
