"""The scoring evaluation itself: perfect detections agree 100 %, a missed event is counted against it."""

from dataclasses import replace

from callqa.evaluation.scoring import evaluate_scoring, truth_contexts
from callqa.pipeline.scoring import load_scorecard, score_call
from callqa.pipeline.types import CallResult, CallSource, RoleDecision
from callqa.synth.labels import CallLabels, LabelEvent

LABELS = CallLabels(
    stem="c1",
    audio="c1.wav",
    language="en",
    duration_s=60.0,
    seed=0,
    spec={"greeting": "standard"},
    events=[
        LabelEvent("greeting", "agent", 0.5, 4.0),
        LabelEvent("need_discovery", "agent", 0.5, 4.0),
        LabelEvent("identity_verification", "agent", 8.0, 11.0),
        LabelEvent("solution_explained", "agent", 20.0, 26.0),
        LabelEvent("hold_announced", "agent", 12.0, 13.0),
        LabelEvent(
            "hold", "agent", 14.0, 24.0, data={"kind": "music", "announced": True, "thanked": True, "duration_s": 10.0}
        ),
        LabelEvent("hold_thanked", "agent", 24.5, 26.0),
        LabelEvent("further_help_offered", "agent", 50.0, 52.0),
        LabelEvent("closing", "agent", 55.0, 58.0),
    ],
    optional=[LabelEvent("understanding_confirmed", "customer", 30.0, 31.0)],
    metrics={
        "hold_count": 1.0,
        "hold_total_s": 10.0,
        "hold_max_s": 10.0,
        "dead_air_total_s": 0.0,
        "interruptions_agent": 0.0,
    },
)


def result_from(events, metrics):
    return CallResult(
        CallSource("c1.wav", "x" * 64, 1),
        60.0,
        2,
        8000,
        "pcm_mulaw",
        "en",
        0.99,
        [],
        events,
        metrics,
        [],
        {},
        RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map"),
        {},
    )


def test_detections_equal_to_the_labels_agree_fully():
    card = load_scorecard("inbound_service_en")
    truth = truth_contexts(LABELS)[0]
    ev = evaluate_scoring([(result_from(truth.events, dict(LABELS.metrics)), LABELS)], card)
    assert ev.decisions == 16 and ev.agree == 16 and ev.grades_match == 1
    by = {c.criterion_id: c.result for c in score_call(card, truth).criteria}
    assert by["greeting"] == "pass" and by["name_and_company"] == "pass" and by["hold_etiquette"] == "pass"
    assert by["empathy_when_upset"] == "na" and by["satisfaction_check"] == "fail"


def test_a_missed_greeting_and_an_unthanked_hold_are_disagreements():
    card = load_scorecard("inbound_service_en")
    truth = truth_contexts(LABELS)[0]
    events = [e for e in truth.events if e.type != "greeting"]
    events = [replace(e, data={**e.data, "thanked": False}) if e.type == "hold" else e for e in events]
    ev = evaluate_scoring([(result_from(events, dict(LABELS.metrics)), LABELS)], card)
    wrong = {d["criterion"] for d in ev.disagreements}
    assert wrong == {"greeting", "name_and_company", "hold_etiquette"}
    assert ev.agree == 13 and ev.decisions == 16
    assert ev.grade_mismatches and ev.grade_mismatches[0]["truth"] != [ev.grade_mismatches[0]["auto"]]
