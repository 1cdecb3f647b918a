"""Hold, dead-air, interruption and emotion detectors through the whole pipeline (real TTS, real ASR).

A subset of the labelled generator's calls (the evaluation runs all of them: `callqa eval
detectors`) and one call with 60 s of hold music, Whisper's classic hallucination trap.
"""

from __future__ import annotations

import pytest

from callqa.callgen import generate_calls, long_hold_call
from callqa.evaluation.detectors import evaluate_results
from callqa.pipeline.call import process_call
from callqa.pipeline.discover import sha256_file
from callqa.pipeline.types import CallResult, CallSource

pytestmark = pytest.mark.slow

# dead air + customer interruption; unannounced hold music + angry customer (silent holds and the
# agent interrupting are covered on rendered audio in test_detectors_audio.py, and by the eval)
SUBSET = ["call01", "call06"]
AUDIO_DETECTORS = ("hold", "hold_unannounced", "dead_air", "interruption", "negative_emotion")


def _run(path, kit) -> CallResult:
    res = process_call(CallSource(str(path), sha256_file(path), path.stat().st_size, {"language": "en"}), kit)
    assert isinstance(res, CallResult), res
    return res


@pytest.fixture(scope="module")
def long_hold(tmp_path_factory, detector_toolkit):
    path, labels = long_hold_call(tmp_path_factory.mktemp("longhold") / "long_hold.wav", hold_s=60.0)
    return _run(path, detector_toolkit), labels


@pytest.fixture(scope="module")
def subset(tmp_path_factory, detector_toolkit):
    calls = generate_calls(tmp_path_factory.mktemp("gen"), n=max(int(s[4:]) for s in SUBSET) + 1, only=SUBSET)
    return [(_run(g.audio, detector_toolkit), g.labels) for g in calls]


def test_sixty_seconds_of_hold_music_is_one_announced_thanked_hold_without_words(long_hold):
    res, labels = long_hold
    (truth,) = labels.of_type("hold")
    holds = [e for e in res.events if e.type == "hold"]
    assert len(holds) == 1, [(e.type, e.start, e.end) for e in res.events]
    h = holds[0]
    assert abs((h.end - h.start) - 60.0) <= 1.0 and abs(h.start - truth.start) <= 1.0
    assert h.data["kind"] == "music" and h.data["announced"] and h.data["thanked"]
    assert not [e for e in res.events if e.type in ("hold_unannounced", "dead_air")]
    # nothing Whisper "heard" inside the music survives, and the call's own words do
    inside = [w.text for u in res.utterances for w in u.words if h.start < 0.5 * (w.start + w.end) < h.end]
    assert inside == []
    assert any("thank" in u.text.lower() for u in res.utterances if h.end < u.start < h.end + 3)
    assert res.metrics["hold_count"] == 1 and abs(res.metrics["hold_total_s"] - 60.0) <= 1.0
    assert "hold_scan" in res.timings


def test_audio_detectors_on_labelled_calls(subset):
    report = evaluate_results(subset)
    for typ in AUDIO_DETECTORS:
        t = report.tallies[typ]
        assert t.n_label > 0, typ
        assert t.precision is not None and t.precision >= 0.9, (typ, t.false_alarms)
        assert t.recall is not None and t.recall >= 0.9, (typ, t.misses)
    for h in report.holds:
        assert h["found"] and abs(h["error_s"]) <= 1.0 and h["kind_ok"] and h["announced_ok"], h
    for res, labels in subset:
        for k in ("hold_count", "dead_air_count", "interruptions_customer"):
            assert res.metrics[k] == labels.metrics[k], (labels.stem, k)


def test_emotion_fields_are_filled_on_every_utterance(subset):
    for res, labels in subset:
        assert all(u.emotion and u.emotion_method and u.sentiment is not None for u in res.utterances)
        assert all(u.emotion_method.startswith("lexicon:vader") for u in res.utterances)
        if labels.spec["angry"]:
            # the mean of the first three customer turns: the angry opening line, diluted by plain answers
            assert res.metrics["customer_emotion_start"] < -0.1
            assert res.metrics["negative_emotion_count"] >= 1
        for k in ("rate_agent", "rate_customer", "longest_monologue_agent_s", "talk_ratio_agent"):
            assert res.metrics[k] is not None and res.metrics[k] > 0, k
