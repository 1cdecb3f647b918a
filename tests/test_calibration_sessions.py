"""Calibration sessions: blind scoring, and agreement and kappa checked against hand-computed values."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.pipeline import store
from callqa.workspace import agreement
from callqa.workspace import calibration_sessions as cs
from callqa.workspace.qa import verify_reviews
from callqa.workspace.workflow import Actor, WorkflowError
from qa_data import build_db

SUP = Actor("sue", "supervisor")
ANA, BO, CY = Actor("ana", "reviewer"), Actor("bo", "reviewer"), Actor("cy", "reviewer")
FILES = ["stereo_hold.wav", "mono_plain.wav", "zh_call.wav", "rude.wav"]
# greeting per reviewer over FILES (machine: pass, fail, pass, fail); no_forbidden_language: all pass
GREETING = {"ana": "ppfp", "bo": "ppff", "cy": "pfff"}
WORD = {"p": "pass", "f": "fail"}


def test_cohen_and_fleiss_match_hand_computed_values_and_say_when_undefined():
    # po = 4/6, pe = .5·.5 + .5·.5 = .5  ->  (2/3 − 1/2) / (1/2) = 1/3
    k = agreement.cohen(list("ppffpf"), list("pfffpp"))
    assert (k.value, k.n, k.note) == (0.3333, 6, None)
    # P_i = 1, 1/3, 1, 1/3 -> P̄ = 2/3; p_pass = p_fail = 1/2 -> P_e = 1/2 -> κ = 1/3
    f = agreement.fleiss([list("ppp"), list("ppf"), list("fff"), list("pff")])
    assert (f.value, f.n) == (0.3333, 4)
    assert agreement.mean_pairwise_agreement([list("ppp"), list("ppf"), list("fff"), list("pff")]) == pytest.approx(
        2 / 3
    )
    assert agreement.cohen(list("pppp"), list("pfpf")).value == 0.0  # po .5, pe .5
    one = agreement.cohen(["pass"] * 3, ["pass"] * 3)
    assert one.value is None and one.note == "every verdict is 'pass': chance agreement is certain"
    assert one.text() == "undefined (every verdict is 'pass': chance agreement is certain)"
    assert agreement.fleiss([list("ff"), list("ff")]).value is None
    assert agreement.cohen([], []).note == "no items scored by both"
    with pytest.raises(ValueError, match="same number"):
        agreement.fleiss([list("pp"), list("ppp")])


@pytest.fixture()
def session(tmp_path):
    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    ids = {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}
    with store.open_db(path) as con:
        s = cs.create_session(con, "November", [ids[f] for f in FILES], ["ana", "bo", "cy", "ana"], SUP)
    return path, ids, s


def submit_all(con, s, ids, who):
    for i, f in enumerate(FILES):
        crits = [c.criterion_id for c in cs.call_view(con, s.session_id, ids[f], SUP).criteria]
        v = {c: WORD[GREETING[who.name][i]] if c == "greeting" else "pass" for c in crits}
        cs.submit(con, s.session_id, ids[f], who, v)


def test_scoring_is_blind_until_submitted_and_final_after(session):
    path, ids, s = session
    assert s.reviewers == ("ana", "bo", "cy") and s.hide_machine
    stereo = ids["stereo_hold.wav"]
    with store.open_db(path) as con:
        submit_all(con, s, ids, BO)
        v = cs.call_view(con, s.session_id, stereo, ANA)
        assert (v.submitted, v.machine_hidden, v.others_hidden) == (False, True, True)
        assert [(c.criterion_id, c.machine, c.others, c.mine) for c in v.criteria] == [
            ("greeting", None, None, None),
            ("hold_etiquette", None, None, None),
            ("no_forbidden_language", None, None, None),
        ]
        with pytest.raises(WorkflowError, match="missing: hold_etiquette, no_forbidden_language"):
            cs.submit(con, s.session_id, stereo, ANA, {"greeting": "pass"})
        with pytest.raises(WorkflowError, match="no criterion 'empathy'"):
            cs.submit(con, s.session_id, stereo, ANA, {"greeting": "pass", "empathy": "pass"})
        with pytest.raises(WorkflowError, match="must be pass, fail or na, not 'ok'"):
            cs.submit(
                con,
                s.session_id,
                stereo,
                ANA,
                {"greeting": "ok", "hold_etiquette": "pass", "no_forbidden_language": "pass"},
            )
        with pytest.raises(WorkflowError, match="results open once you have submitted every call .*4 left"):
            cs.results(con, s.session_id, ANA)
        with pytest.raises(WorkflowError, match="dan is not a reviewer in calibration session"):
            cs.call_view(con, s.session_id, stereo, Actor("dan", "reviewer"))
        cs.submit(
            con,
            s.session_id,
            stereo,
            ANA,
            {"greeting": "pass", "hold_etiquette": "pass", "no_forbidden_language": "pass"},
            {"greeting": "said it at 0:01"},
        )
        v = cs.call_view(con, s.session_id, stereo, ANA)
        assert (v.submitted, v.machine_hidden, v.others_hidden) == (True, False, False)
        assert [(c.criterion_id, c.machine, c.mine, c.others) for c in v.criteria] == [
            ("greeting", "pass", "pass", {"bo": "pass"}),
            ("hold_etiquette", "pass", "pass", {"bo": "pass"}),
            ("no_forbidden_language", "pass", "pass", {"bo": "pass"}),
        ]
        with pytest.raises(WorkflowError, match="already submitted .* calibration scores are final"):
            cs.submit(
                con,
                s.session_id,
                stereo,
                ANA,
                {"greeting": "fail", "hold_etiquette": "pass", "no_forbidden_language": "pass"},
            )
        # calibration verdicts are not the calls' reviews, but they are in the verified chain
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM calibration_scores").fetchone()[0] == 2 * (3 + 2 + 2 + 2) - 6
        assert con.execute("SELECT comment FROM calibration_scores WHERE comment IS NOT NULL").fetchall() == [
            ("said it at 0:01",)
        ]
        assert verify_reviews(con) == []
        # a supervisor outside the session sees all; an open session shows the machine before submitting
        assert cs.call_view(con, s.session_id, stereo, SUP).criteria[0].others == {"ana": "pass", "bo": "pass"}
        s2 = cs.create_session(con, "open", [stereo], ["ana", "bo"], SUP, hide_machine=False)
        v2 = cs.call_view(con, s2.session_id, stereo, ANA)
        assert (v2.machine_hidden, v2.others_hidden, v2.criteria[0].machine) == (False, True, "pass")


def test_results_give_reviewer_and_machine_agreement_per_criterion(session):
    path, ids, s = session
    with store.open_db(path) as con:
        for who in (ANA, BO, CY):
            submit_all(con, s, ids, who)
        res = cs.results(con, s.session_id, ANA)
    assert res.submitted == {"ana": 4, "bo": 4, "cy": 4}
    by = {c.criterion_id: c for c in res.criteria}
    g = by["greeting"]
    # items ppp, ppf, fff, pff: P̄ = 2/3, Fleiss 1/3; pairs ana-bo .5, ana-cy .2, bo-cy .5 (mean .4)
    assert (g.n_calls, round(g.reviewer_agreement, 4), g.fleiss.value, g.mean_pairwise_kappa) == (
        4,
        0.6667,
        0.3333,
        0.4,
    )
    assert [(p.a, p.b, p.agreement, p.kappa.value) for p in g.pairwise] == [
        ("ana", "bo", 0.75, 0.5),
        ("ana", "cy", 0.5, 0.2),
        ("bo", "cy", 0.75, 0.5),
    ]
    # vs machine (p f p f): 6 of 12 agree; 6 human passes, 6 machine passes -> pe .5 -> κ 0
    assert (g.machine_n, g.machine_agreement, g.machine_kappa.value) == (12, 0.5, 0.0)
    assert {r: k.value for r, k in g.per_reviewer_machine.items()} == {"ana": -0.5, "bo": 0.0, "cy": 0.5}
    nfl = by["no_forbidden_language"]
    assert nfl.fleiss.value is None and "every verdict is 'pass'" in (nfl.fleiss.note or "")
    # the machine failed rude.wav: po .75, pe = 1·.75 -> κ 0
    assert (nfl.machine_n, nfl.machine_agreement, nfl.machine_kappa.value) == (12, 0.75, 0.0)
    hold = by["hold_etiquette"]  # only stereo_hold.wav has it
    assert (hold.n_calls, hold.fleiss.value, hold.machine_n) == (1, None, 3)


def test_only_supervisors_create_sessions_and_two_reviewers_are_needed(session):
    path, ids, _ = session
    with store.open_db(path) as con:
        with pytest.raises(WorkflowError, match="a reviewer may not create calibration sessions"):
            cs.create_session(con, "x", [ids["rude.wav"]], ["ana", "bo"], ANA)
        with pytest.raises(WorkflowError, match="at least two reviewers"):
            cs.create_session(con, "x", [ids["rude.wav"]], ["ana", " ana "], SUP)
        with pytest.raises(WorkflowError, match="at least one call"):
            cs.create_session(con, "x", [], ["ana", "bo"], SUP)
        assert [r["name"] for r in cs.list_sessions(con, "cy")] == ["November"]
        assert cs.list_sessions(con, "zed") == []


def test_cli_creates_scores_and_reports_a_session(tmp_path):
    path = tmp_path / "qa.duckdb"
    build_db(path)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "calibrate",
            "new",
            "Dec",
            "--call",
            "rude.wav",
            "--call",
            "mono_plain.wav",
            "--reviewer",
            "ana",
            "--reviewer",
            "bo",
            "--db",
            str(path),
        ],
    )
    assert res.exit_code == 0, res.output
    sid = res.output.split()[2].rstrip(":")
    for who, g in (("ana", "fail"), ("bo", "pass")):
        for f in ("rude.wav", "mono_plain.wav"):
            res = runner.invoke(
                app,
                [
                    "calibrate",
                    "score",
                    sid,
                    f,
                    "--as",
                    who,
                    "--verdict",
                    f"greeting={g}",
                    "--verdict",
                    "no_forbidden_language=pass",
                    "--db",
                    str(path),
                ],
            )
            assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["calibrate", "results", sid, "--db", str(path)])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "greeting" in ln)
    # ana fail/fail, bo pass/pass: agreement 0, Fleiss (0 − .5)/.5 = −1; machine fail twice: 2 of 4
    assert "0%" in line and "-1.000" in line and "50%" in line
