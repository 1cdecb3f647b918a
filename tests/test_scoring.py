import textwrap

import pytest

from callqa.pipeline.scoring import ScoringContext, load_scorecard, score_call
from callqa.pipeline.types import ConfigError, Event


def ev(type_, start, role="agent", speaker="ch0", evidence="Thank you for calling Acme"):
    return Event(
        type=type_,
        start=start,
        end=start + 2,
        speaker=speaker,
        role=role,
        evidence=evidence,
        confidence=0.9,
        detector_version="t",
        event_id=f"{type_}-{start}",
    )


def write(tmp_path, text):
    p = tmp_path / "card.yaml"
    p.write_text(textwrap.dedent(text))
    return p


CARD = """
id: test
version: 2
grades: {excellent: 90, good: 80, fair: 60}
flag_when: {grade_below: fair, auto_fail: true}
sections:
  - id: opening
    criteria:
      - id: greeting
        points: 10
        rule: {event: greeting, by: agent, within_s: 15}
      - id: no_greeting_by_customer
        points: 10
        rule: {absent: greeting, by: customer}
"""


def test_bundled_scorecard_loads():
    card = load_scorecard("inbound_basic")
    assert card.id == "inbound_basic" and card.version >= 1
    assert [c.id for s in card.sections for c in s.criteria] == ["greeting"]


def test_greeting_in_window_passes_and_cites_the_event(tmp_path):
    card = load_scorecard(write(tmp_path, CARD))
    s = score_call(card, ScoringContext(events=[ev("greeting", 1.0)], duration_s=60, roles_known=True))
    res = {c.criterion_id: c for c in s.criteria}
    assert res["greeting"].result == "pass" and res["greeting"].evidence_event_ids == ("greeting-1.0",)
    assert "1.0s" in res["greeting"].rationale
    assert s.percent == 100 and s.grade == "excellent" and not s.flagged


def test_late_or_wrong_role_greeting_fails_and_flags(tmp_path):
    card = load_scorecard(write(tmp_path, CARD))
    late = score_call(card, ScoringContext(events=[ev("greeting", 20.0)], duration_s=60, roles_known=True))
    g = {c.criterion_id: c for c in late.criteria}["greeting"]
    assert g.result == "fail" and g.evidence_event_ids == ("greeting-20.0",)
    assert "not qualifying" in g.rationale
    assert late.percent == 50 and late.grade == "poor" and late.flagged
    assert any("greeting" in r for r in late.flag_reasons)

    wrong = score_call(
        card,
        ScoringContext(events=[ev("greeting", 1.0, role="customer", speaker="ch1")], duration_s=60, roles_known=True),
    )
    res = {c.criterion_id: c.result for c in wrong.criteria}
    assert res == {"greeting": "fail", "no_greeting_by_customer": "fail"}
    assert wrong.percent == 0 and wrong.flagged


def test_unknown_roles_accept_any_speaker_and_say_so(tmp_path):
    card = load_scorecard(write(tmp_path, CARD))
    s = score_call(
        card,
        ScoringContext(events=[ev("greeting", 1.0, role="unknown", speaker="spk0")], duration_s=60, roles_known=False),
    )
    g = {c.criterion_id: c for c in s.criteria}["greeting"]
    assert g.result == "pass" and "roles undetermined" in g.rationale


def test_auto_fail_zeroes_the_score(tmp_path):
    card = load_scorecard(
        write(
            tmp_path,
            CARD.replace(
                "      - id: no_greeting_by_customer\n        points: 10\n",
                "      - id: no_greeting_by_customer\n        auto_fail: true\n",
            ),
        )
    )
    s = score_call(
        card,
        ScoringContext(
            events=[ev("greeting", 1.0), ev("greeting", 3.0, role="customer", speaker="ch1")],
            duration_s=60,
            roles_known=True,
        ),
    )
    assert s.auto_fail and s.score == 0 and s.grade == "poor" and s.flagged
    assert s.flag_reasons[0] == "auto-fail: no_greeting_by_customer"


def test_na_when_excludes_criterion(tmp_path):
    card = load_scorecard(
        write(
            tmp_path,
            CARD.replace(
                "        rule: {absent: greeting, by: customer}",
                "        rule: {absent: greeting, by: customer}\n        na_when: {not: {event: greeting}}",
            ),
        )
    )
    s = score_call(card, ScoringContext(events=[], duration_s=60, roles_known=True))
    res = {c.criterion_id: c.result for c in s.criteria}
    assert res == {"greeting": "fail", "no_greeting_by_customer": "na"}
    assert s.max_score == 10


@pytest.mark.parametrize(
    "broken, expect",
    [
        ("rule: {event: greeting, by: agent, within_s: 15}", None),
        (
            "rule: {event: greetng, by: agent, within_s: 15}",
            ["criterion 'greeting'", "'rule.event'", "unknown event type 'greetng'"],
        ),
        (
            "rule: {event: greeting, by: agent, within_s: -3}",
            ["criterion 'greeting'", "'rule.within_s'", "greater than 0"],
        ),
        ("rule: {event: greeting, by: manager}", ["criterion 'greeting'", "'rule.by'"]),
        ("rule: {event: greeting, colour: red}", ["criterion 'greeting'", "'rule.colour'", "Extra inputs"]),
    ],
)
def test_invalid_scorecards_name_file_criterion_and_field(tmp_path, broken, expect):
    p = write(tmp_path, CARD.replace("rule: {event: greeting, by: agent, within_s: 15}", broken))
    if expect is None:
        load_scorecard(p)
        return
    with pytest.raises(ConfigError) as e:
        load_scorecard(p)
    msg = str(e.value)
    assert str(p) in msg
    for part in expect:
        assert part in msg


def test_missing_points_and_broken_yaml(tmp_path):
    p = write(
        tmp_path,
        CARD.replace("        points: 10\n        rule: {event: greeting", "        rule: {event: greeting", 1),
    )
    with pytest.raises(ConfigError, match="criterion 'greeting'.*points"):
        load_scorecard(p)
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: x\nsections: [\n")
    with pytest.raises(ConfigError, match="broken.yaml: invalid YAML"):
        load_scorecard(bad)


def test_content_hash_is_the_same_after_the_card_has_scored_a_call():
    """A card's identity must not change by being used: True in a `where` once dumped as 1 after scoring."""
    card = load_scorecard("inbound_service_en")
    before = card.content_hash()
    score_call(card, ScoringContext(events=[], duration_s=60.0, roles_known=True, metrics={}))
    assert card.content_hash() == before
    dumped = [c.rule.model_dump(mode="json") for _, c in card.criteria if getattr(c.rule, "where", None)]
    assert dumped and all(v is True for d in dumped for v in d["where"].values())
