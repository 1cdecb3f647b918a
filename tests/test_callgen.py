"""The labelled call generator: coverage, determinism and label consistency (no rendering here;
tests/test_detectors_audio_asr.py renders a subset and runs it through the pipeline)."""

from __future__ import annotations

from dataclasses import asdict

from callqa.callgen import DEFAULT_N, build_script, call_specs
from callqa.synth.labels import CallLabels, LabelEvent, labels_from_truth, monologue_spans
from callqa.synth.script import Hold, Turn
from callqa.synth.truth import CallTruth, Span, TurnTruth


def test_thirty_calls_cover_every_feature_in_every_variant():
    specs = call_specs(DEFAULT_N, seed=0)
    assert len(specs) >= 30 and len({s.stem for s in specs}) == len(specs)
    assert {s.greeting for s in specs} == {"standard", "paraphrased", "absent"}
    assert {s.hold for s in specs} == {
        None,
        "announced_music",
        "announced_music_unthanked",
        "unannounced_music",
        "announced_silence",
        "unannounced_silence",
    }
    assert {s.interruption for s in specs} == {None, "customer", "agent"}
    for flag in ("forbidden", "angry", "escalation", "long_monologue", "understanding", "satisfaction"):
        assert any(getattr(s, flag) for s in specs) and not all(getattr(s, flag) for s in specs), flag
    assert sum(1 for s in specs if s.dead_air_s) >= 5
    assert not any(s.hold and s.dead_air_s for s in specs)  # dead air is never adjacent to a hold
    # unannounced silence must be long enough to be a hold, announced silence long enough with its cue
    assert all(s.hold_s >= 21 for s in specs if s.hold == "unannounced_silence")
    assert all(10.5 <= s.hold_s < 20 for s in specs if s.hold == "announced_silence")
    assert all(6.0 <= s.dead_air_s < 10 for s in specs if s.dead_air_s)


def test_specs_and_scripts_are_deterministic_per_seed_and_prefix_stable():
    a, b = call_specs(30, seed=4), call_specs(30, seed=4)
    assert [asdict(x) for x in a] == [asdict(x) for x in b]
    assert [asdict(x) for x in call_specs(8, seed=4)] == [asdict(x) for x in a[:8]]
    assert [asdict(x) for x in call_specs(30, seed=5)] != [asdict(x) for x in a]
    for s in a[:10]:
        assert build_script(s, 4).items == build_script(s, 4).items


def test_scripts_tag_what_each_feature_needs():
    specs = {s.stem: s for s in call_specs(30)}
    for s in specs.values():
        script = build_script(s)
        tags = [t for it in script.items if isinstance(it, Turn) for t in it.tags]
        holds = [it for it in script.items if isinstance(it, Hold)]
        assert ("greeting" in tags) == (s.greeting != "absent")
        assert ("hold_announced" in tags) == bool(s.hold and s.hold.startswith("announced"))
        assert ("hold_thanked" in tags) == (s.hold in ("announced_music", "announced_silence"))
        assert len(holds) == (1 if s.hold else 0)
        assert ("forbidden_phrase" in tags) == s.forbidden
        assert ("negative_emotion" in tags) == s.angry
        assert ("escalation_request" in tags) == s.escalation
        assert ("closing" in tags) == s.closing
        overlapping = [it for it in script.items if isinstance(it, Turn) and it.overlap_s > 0]
        assert len(overlapping) == (1 if s.interruption else 0)
        if s.interruption:
            assert overlapping[0].speaker == s.interruption


def _truth(turns, holds=(), dead=(), overlaps=()):
    return CallTruth(None, 8000, 2, None, 60.0, 0, {}, 0, {}, list(turns), list(holds), list(dead), list(overlaps))


def test_labels_follow_the_truth_conventions():
    spec = call_specs(1)[0]
    turns = [
        TurnTruth(0, "agent", "agent", "joe", "Thank you for calling", 0.5, 3.0, 0, ["greeting", "opt:need_discovery"]),
        TurnTruth(1, "agent", "agent", "joe", "Could you please hold", 3.6, 5.0, 0, ["hold_announced"]),
        TurnTruth(2, "agent", "agent", "joe", "Thank you for holding", 16.2, 17.0, 0, ["hold_thanked"]),
        TurnTruth(
            3, "customer", "customer", "joe", "Hang on, I can't wait that long!", 30.0, 32.0, 1, ["interruption"]
        ),
        TurnTruth(4, "agent", "agent", "joe", "Right.", 40.0, 41.0, 0, []),
    ]
    holds = [Span(5.6, 15.6, "silence", on="agent"), Span(17.6, 27.6, "music", on="agent")]
    overlaps = [Span(30.0, 31.2, "overtalk", ["agent", "customer"], [2, 3])]
    labels = labels_from_truth(spec, _truth(turns, holds, [Span(32.0, 39.0, "dead_air")], overlaps), "x.wav", 0)
    by = {}
    for e in labels.events:
        by.setdefault(e.type, []).append(e)
    # the silent hold spans word to word; the music hold spans the music
    assert (by["hold"][0].start, by["hold"][0].end) == (5.0, 16.2)
    assert by["hold"][0].data == {"kind": "silence", "announced": True, "thanked": True, "duration_s": 11.2}
    assert (by["hold"][1].start, by["hold"][1].end) == (17.6, 27.6) and not by["hold"][1].data["announced"]
    assert len(by["hold_unannounced"]) == 1 and by["hold_unannounced"][0].start == 17.6
    assert by["interruption"][0].role == "customer" and by["overtalk"][0].role is None
    assert by["dead_air"][0].start == 32.0 and labels.metrics["dead_air_total_s"] == 7.0
    assert labels.metrics["hold_count"] == 2 and labels.metrics["hold_total_s"] == 21.2
    assert labels.metrics["interruptions_customer"] == 1
    assert [o.type for o in labels.optional] == ["need_discovery"]


def test_labels_round_trip(tmp_path):
    lab = CallLabels(
        "c",
        "c.wav",
        "en",
        10.0,
        0,
        {"k": 1},
        [LabelEvent("hold", "agent", 1.0, 5.0, None, {"kind": "music"})],
        [LabelEvent("greeting", "agent", 0.0, 1.0, 0)],
        {"hold_count": 1.0},
    )
    path = lab.write(tmp_path / "c.labels.json")
    assert CallLabels.load(path) == lab


def test_monologue_truth_policy_matches_the_detector():
    t = lambda i, role, s, e, text="a b c d": TurnTruth(i, role, role, "joe", text, s, e, 0, [])  # noqa: E731
    turns = [
        t(0, "agent", 0, 12),
        t(1, "customer", 12.3, 12.8, "mm-hmm"),
        t(2, "agent", 13.0, 25.0),
        t(3, "agent", 27.5, 33.0),
        t(4, "customer", 34.0, 37.0),
        t(5, "agent", 38.0, 40.0),
    ]
    assert monologue_spans(_truth(turns)) == [(0, 33.0), (38.0, 40.0)]
