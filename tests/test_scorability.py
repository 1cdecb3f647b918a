"""Scorability (issue 16 point 4): recordings that cannot show how the agent did are stored as
`unscorable` with the reason, never graded, and listed apart as recordings to check; a recording of the
agent's side alone is graded on the agent's side only (`partial`)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy.io import wavfile
from typer.testing import CliRunner

from callqa.cli import app
from callqa.config.settings import ScorabilitySettings
from callqa.pipeline import store
from callqa.pipeline.discover import sha256_file
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scorability import agent_side, assess, grade, grade_all, silent_share, truncation
from callqa.pipeline.scoring import ScoringContext, load_scorecard
from callqa.pipeline.types import CallResult, CallSource, Event, RoleDecision, Scorability, Utterance, Word
from callqa.workspace.queue import QueueFilter, flagged_page, recordings_count, recordings_to_check

LIMITS = ScorabilitySettings()
CARD = load_scorecard("inbound_service_en")
STEREO = RoleDecision({"ch0": "agent", "ch1": "customer"}, 1.0, "channel_map")
TRUNCATED = "truncated: decoded 4.80 s of 238.00 s declared by the header"  # decode's wording


def utt(seq: int, speaker: str, start: float, end: float, role: str = "unknown", text: str = "words") -> Utterance:
    ch = 1 if speaker == "ch1" else 0
    return Utterance(seq, speaker, start, end, text, [Word(start, end, text, 0.9, ch)], channel=ch, role=role)  # type: ignore[arg-type]


def ev(type_: str, start: float, role: str | None = "agent", speaker: str = "ch0", **data) -> Event:
    return Event(type_, start, start + 1.0, speaker, role, f"{type_} quote", 0.9, "test/1", data, f"{type_}@{start}")  # type: ignore[arg-type]


def dialogue(duration: float, turn_s: float = 4.0, gap_s: float = 0.5) -> list[Utterance]:
    """Agent and customer taking turns on their own channels for `duration` seconds."""
    out, t, seq = [], 0.5, 0
    while t + turn_s < duration:
        spk, role = ("ch0", "agent") if seq % 2 == 0 else ("ch1", "customer")
        out.append(utt(seq, spk, t, t + turn_s, role))
        t += turn_s + gap_s
        seq += 1
    return out


def one_sided(duration: float) -> list[Utterance]:
    """The agent's turns alone, with the silences where the customer spoke on the other leg (as agent.wav)."""
    out, t, seq = [], 1.0, 0
    while t + 5.0 < duration:
        out.append(utt(seq, "SPEAKER_00" if seq % 3 else "SPEAKER_01", t, t + 5.0))
        t += 5.0 + 6.0
        seq += 1
    return out


SCRIPT = [ev("greeting", 1.0), ev("need_discovery", 3.0), ev("closing", 50.0)]


# --- assess: the rules, one by one --------------------------------------------------------------------


def test_truncated_recording_is_unscorable_with_the_reason():
    s = assess(
        4.8,
        [TRUNCATED],
        [utt(0, "S0", 0.0, 1.7)],
        [ev("greeting", 0.5)],
        None,
        LIMITS,
        single_track=True,
        diarized=True,
    )
    assert s.status == "unscorable" and not s.graded
    assert s.reasons[0] == "truncated: 4.8 s left of 238.0 s declared by the file"
    assert any(r.startswith("too short") for r in s.reasons)
    assert truncation([TRUNCATED]) == (4.8, 238.0)
    # a file that kept most of itself is still graded (decode's policy: worth scoring)
    kept = "truncated: decoded 200.00 s of 238.00 s declared by the header"
    ok = assess(200.0, [kept], dialogue(200.0), SCRIPT, STEREO, LIMITS, single_track=False, diarized=False)
    assert ok.status == "scorable"


def test_short_clip_tone_and_no_service_call_are_unscorable():
    clip = assess(5.0, [], [utt(0, "S0", 0.2, 4.8)], [], None, LIMITS, single_track=True, diarized=True)
    assert clip.status == "unscorable" and clip.reasons == ("too short: 5.0 s (under 6 s)",)
    tone = assess(
        40.0, [], [], [], RoleDecision({}, 0.0, "undetermined:single-speaker"), LIMITS, single_track=True, diarized=True
    )
    assert tone.status == "unscorable" and tone.reasons == ("no speech",)
    chat = [utt(0, "S0", 0.5, 8.0), utt(1, "S1", 8.5, 15.0), utt(2, "S0", 15.5, 25.0)]
    roles = RoleDecision({"S0": "agent", "S1": "customer"}, 0.5, "evidence:none")
    talk = assess(29.5, [], chat, [], roles, LIMITS, single_track=True, diarized=True)
    assert talk.status == "unscorable" and talk.reasons[0].startswith("no service call: no agent script in 30 s")
    # with any agent script it is a (short) service call
    assert assess(29.5, [], chat, SCRIPT[:1], roles, LIMITS, single_track=True, diarized=True).status == "scorable"


def test_a_short_stereo_exchange_without_script_is_still_graded():
    """Both channels speaking is a service call at any length: a 7 s "Account number?" exchange is graded
    (and fails the greeting), as the flow tests expect."""
    calls = [utt(0, "ch0", 0.3, 1.3, "agent"), utt(1, "ch1", 1.8, 4.0, "customer"), utt(2, "ch0", 4.5, 7.0, "agent")]
    assert assess(7.3, [], calls, [], STEREO, LIMITS, single_track=False, diarized=False).status == "scorable"


def test_one_party_only_stereo():
    agent_only = [u for u in dialogue(120.0) if u.role == "agent"]
    s = assess(120.0, [], agent_only, SCRIPT, STEREO, LIMITS, single_track=False, diarized=False)
    assert s.status == "partial" and "the customer is not heard" in s.reasons[0]
    customer_only = [u for u in dialogue(120.0) if u.role == "customer"]
    s = assess(120.0, [], customer_only, [], STEREO, LIMITS, single_track=False, diarized=False)
    assert s.status == "unscorable" and "the agent is not heard" in s.reasons[0]
    # a silent channel (bleed processes the call as mono): one party, the agent when the script is heard
    silent = ["one stereo channel is silent: processed as mono"]
    s = assess(120.0, silent, agent_only, SCRIPT, STEREO, LIMITS, single_track=True, diarized=True)
    assert s.status == "partial" and "one stereo channel is silent" in s.reasons[0]
    s = assess(120.0, silent, customer_only, [], None, LIMITS, single_track=True, diarized=True)
    assert s.status == "unscorable" and s.reasons[0].endswith("no agent on it")


def test_one_sided_mono_recording_is_partial():
    utts = one_sided(140.0)
    assert silent_share(utts, [], 2.0) > 0.5
    roles = RoleDecision({"SPEAKER_00": "agent", "SPEAKER_01": "customer"}, 1.0, "evidence:greeting")
    s = assess(140.0, [], utts, SCRIPT, roles, LIMITS, single_track=True, diarized=True)
    assert s.status == "partial" and "silent between turns" in s.reasons[0]
    assert assess(140.0, [], utts, [], roles, LIMITS, single_track=True, diarized=True).status == "unscorable"
    strict = LIMITS.model_copy(update={"agent_side_only": "unscorable"})
    assert assess(140.0, [], utts, SCRIPT, roles, strict, single_track=True, diarized=True).status == "unscorable"
    # a mono two-party call with short turn gaps, or whose silences are a hold, is not one-sided
    mono = [u for u in dialogue(140.0)]
    assert assess(140.0, [], mono, SCRIPT, roles, LIMITS, single_track=True, diarized=True).status == "scorable"
    # one long silence (dead air, an unmeasured hold) is not the other party's turns
    quiet = dialogue(40.0) + [utt(99, "ch0", 90.0, 100.0)]
    assert silent_share(quiet, [], 2.0) > 0.3
    assert assess(100.0, [], quiet, SCRIPT, roles, LIMITS, single_track=True, diarized=True).status == "scorable"
    holds = [Event("hold", u.end, u.end + 6.0, None, None, "hold", 1.0, "t", {}, f"h{i}") for i, u in enumerate(utts)]
    assert silent_share(utts, holds, 2.0) == 0.0
    # one voice found by diarization
    solo = [utt(0, "SPEAKER_00", 1.0, 30.0), utt(1, "SPEAKER_00", 30.5, 70.0)]
    s = assess(
        75.0,
        [],
        solo,
        SCRIPT,
        RoleDecision({}, 0.0, "undetermined:single-speaker"),
        LIMITS,
        single_track=True,
        diarized=True,
    )
    assert s.status == "partial" and "one voice" in s.reasons[0]


# --- grading ----------------------------------------------------------------------------------------


def test_partial_calls_are_graded_on_the_agents_side_only():
    events = [
        ev("greeting", 1.0),
        ev("solution_explained", 30.0, role="customer", speaker="SPEAKER_01"),  # the agent, split by diarization
        ev("dead_air", 12.0, role=None),
        ev("complaint", 20.0, role="customer"),
    ]
    ctx = ScoringContext(events, 140.0, True, {"dead_air_total_s": 50.9, "interruptions_agent": 0.0})
    full = grade(CARD, ctx, Scorability())
    part = grade(CARD, ctx, Scorability("partial", ("one party only",)))
    assert full is not None and part is not None
    by_full = {c.criterion_id: c for c in full.criteria}
    by_part = {c.criterion_id: c for c in part.criteria}
    assert [c.criterion_id for c in part.criteria] == [c.criterion_id for c in full.criteria]
    assert by_full["no_dead_air"].result == "fail" and by_part["no_dead_air"].result == "na"
    assert "customer's side is not on this recording" in by_part["no_dead_air"].rationale
    for cid in ("no_interrupting", "hold_etiquette", "hold_length", "empathy_when_upset", "escalation_handled"):
        assert by_part[cid].result == "na", cid
    # every voice is the agent's: the split-off explanation counts for the agent
    assert by_full["solution_explained"].result == "fail" and by_part["solution_explained"].result == "pass"
    assert by_part["greeting"].result == "pass" and by_part["polite_language"].result == "pass"
    assert part.max_score == sum(c.max_points for c in part.criteria if c.result != "na")
    assert not any("still negative" in r for r in part.flag_reasons)
    assert set(agent_side(CARD).set_aside) == {c for c, r in by_part.items() if "customer's side" in r.rationale}
    assert grade(CARD, ctx, Scorability("unscorable", ("no speech",))) is None
    assert grade_all([CARD], ctx, Scorability("unscorable", ("no speech",))) == []


# --- store, views, rescoring and the CLI --------------------------------------------------------------


def _result(name: str, duration: float, utterances, events, roles, warnings=(), single_track=False, metrics=None):
    scorability = assess(
        duration, list(warnings), utterances, events, roles, LIMITS, single_track=single_track, diarized=single_track
    )
    ctx = ScoringContext(events, duration, bool(roles and roles.mapping), metrics or {"dead_air_total_s": 0.0})
    call_id = (name.encode().hex() * 64)[:64]
    return CallResult(
        source=CallSource(f"/calls/{name}.wav", call_id, 1000, {"agent_id": "A1", "started_at": "2026-11-20T09:00:00"}),
        duration_s=duration,
        channels=1 if single_track else 2,
        sample_rate=8000,
        codec="pcm_s16le",
        language="en",
        language_probability=0.99,
        utterances=list(utterances),
        events=list(events),
        metrics=metrics or {"dead_air_total_s": 0.0},
        scores=grade_all([CARD], ctx, scorability),
        models={"asr": "test"},
        roles=roles,
        timings={},
        warnings=list(warnings),
        scorability=scorability,
    )


@pytest.fixture()
def db(tmp_path) -> Path:
    path = tmp_path / "qa.duckdb"
    mono = RoleDecision({}, 0.0, "undetermined:single-speaker")
    hold = [ev("hold", 20.0, role=None, kind="silence", announced=False, thanked=False)]
    results = [
        _result("bad_agent", 120.0, dialogue(120.0), [ev("greeting", 1.0)], STEREO),  # graded poor: flagged
        _result("good_agent", 120.0, dialogue(120.0), SCRIPT + [ev("solution_explained", 20.0)], STEREO),
        _result("truncated", 4.8, [utt(0, "S0", 0.0, 1.7)], [ev("greeting", 0.5)], mono, [TRUNCATED], True),
        _result("clip", 5.0, [utt(0, "S0", 0.2, 4.8)], [], mono, single_track=True),
        _result("tone", 40.0, [], hold, mono, single_track=True, metrics={"hold_max_s": 40.0}),
        _result(
            "agent_leg",
            140.0,
            one_sided(140.0),
            [ev("greeting", 1.0)],
            mono,
            single_track=True,
            metrics={"dead_air_total_s": 60.0},
        ),
    ]
    con = store.connect(path)
    try:
        for r in results:
            assert store.write_call(con, r, "run", "test")
    finally:
        con.close()
    return path


def q(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_unscorable_calls_are_stored_with_reasons_and_left_out_of_every_grade(db):
    status = dict(q(db, "SELECT file_name, scorable_status FROM calls"))
    assert status == {
        "bad_agent.wav": "scorable",
        "good_agent.wav": "scorable",
        "truncated.wav": "unscorable",
        "clip.wav": "unscorable",
        "tone.wav": "unscorable",
        "agent_leg.wav": "partial",
    }
    reasons = dict(q(db, "SELECT file_name, scorable_reasons FROM calls WHERE scorable_status <> 'scorable'"))
    assert reasons["truncated.wav"][0].startswith("truncated: 4.8 s left of 238.0 s")
    assert reasons["tone.wav"] == ["no speech"] and reasons["clip.wav"][0].startswith("too short")
    unscorable = "('truncated.wav', 'clip.wav', 'tone.wav')"
    assert q(db, f"SELECT count(*) FROM call_scores JOIN calls USING (call_id) WHERE file_name IN {unscorable}") == [
        (0,)
    ]
    flagged = {r[0] for r in q(db, "SELECT file_name FROM flagged_queue")}
    assert "bad_agent.wav" in flagged and not flagged & {"truncated.wav", "clip.wav", "tone.wav"}
    assert q(db, "SELECT file_name FROM flagged_page(100)") == q(db, "SELECT file_name FROM flagged_queue")
    # the agent's day: the two graded calls and the partial one, never the three recordings to check
    assert q(db, "SELECT agent_id, calls FROM agent_daily") == [("A1", 3)]
    assert q(db, "SELECT count(*) FROM call_summary") == [(3,)]
    assert q(db, "SELECT max(n) FROM criterion_pass_rates") == [(3,)]
    # line measurements: neither unscorable recordings nor the one-sided leg (its silences are the customer)
    assert q(db, "SELECT sum(calls) FROM agent_daily_kpis") == [(2,)]
    assert sorted(r[0] for r in q(db, "SELECT file_name FROM hold_stats")) == ["bad_agent.wav", "good_agent.wav"]
    listed = q(db, "SELECT file_name, scorable_status FROM recordings_to_check")
    assert [s for _, s in listed] == ["unscorable"] * 3 + ["partial"]
    assert {f for f, _ in listed} == {"truncated.wav", "clip.wav", "tone.wav", "agent_leg.wav"}


def test_rescoring_skips_unscorable_calls_and_keeps_partial_ones_agent_side(db):
    con = store.connect(db)
    try:
        contexts = load_contexts(con)
        assert sorted(contexts) == sorted(
            r[0] for r in con.execute("SELECT call_id FROM calls WHERE scorable_status <> 'unscorable'").fetchall()
        )
        card = CARD.model_copy(update={"version": 2})
        store.register_scorecard(con, card)
        store.replace_scores(con, card.id, card.version, rescore_contexts(card, contexts))
        rows = con.execute(
            """SELECT c.file_name, r.result FROM criterion_results r JOIN calls c USING (call_id)
               WHERE r.scorecard_version = 2 AND r.criterion_id = 'no_dead_air'"""
        ).fetchall()
    finally:
        con.close()
    assert dict(rows) == {"bad_agent.wav": "pass", "good_agent.wav": "pass", "agent_leg.wav": "na"}
    assert q(db, "SELECT DISTINCT scorecard_version FROM flagged_queue") == [(2,)]
    flagged = {r[0] for r in q(db, "SELECT file_name FROM flagged_queue")}
    assert "bad_agent.wav" in flagged and not flagged & {"truncated.wav", "clip.wav", "tone.wav"}


def test_queue_functions_and_the_cli_show_recordings_to_check_apart(db):
    with duckdb.connect(str(db), read_only=True) as con:
        res = recordings_to_check(con)
        assert res.columns[:3] == ["call_id", "file_name", "agent_id"] and len(res.rows) == 4
        assert recordings_count(con) == {"unscorable": 3, "partial": 1}
        assert recordings_count(con, QueueFilter(agents=("B2",))) == {}
        page = flagged_page(con)
        assert "scorable_status" in page.columns
    runner = CliRunner()
    out = runner.invoke(app, ["flagged", "--db", str(db)])
    assert out.exit_code == 0, out.output
    queue, _, check = out.output.partition("recordings to check")
    assert "bad_agent.wav" in queue and "tone.wav" not in queue and "truncated.wav" not in queue
    assert "tone.wav" in check and "clip.wav" in check and "no speech" in check and "3 not graded" in check
    out = runner.invoke(app, ["flagged", "--db", str(db), "--unscorable", "--format", "json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert {r["file_name"]: r["scorable_status"] for r in listed}["truncated.wav"] == "unscorable"
    out = runner.invoke(app, ["flagged", "--db", str(db), "--unscorable", "--agent", "nobody"])
    assert out.exit_code == 0 and "no recordings to check match these filters" in out.output


# --- the real pipeline ----------------------------------------------------------------------------


def _source(path: Path) -> CallSource:
    return CallSource(str(path), sha256_file(path), path.stat().st_size, {})


@pytest.mark.slow
def test_real_pipeline_truncated_clip_and_tone_are_unscorable(real_data, detector_toolkit, tmp_path):
    """process_call with the real toolkit: a real call cut to 4.8 s of its 237.6 s, a 5-second clip and
    40 s of a test tone come out unscorable with the reason, ungraded, and stay out of the queue."""
    from audio_helpers import encode, speech, tone
    from callqa.pipeline.call import process_call

    sr, leg = wavfile.read(real_data / "realcalls" / "aws-lca" / "Auto_Repairs_49_UTC_agent.wav")
    # µ-law WAV, as telephone recorders write it; its header keeps the full length when the bytes are cut
    full = encode(leg.astype(np.float32) / 32768.0, sr, tmp_path / "full.wav", "pcm_mulaw", "wav")
    data = full.read_bytes()
    cut = tmp_path / "truncated.wav"
    cut.write_bytes(data[: int(len(data) * 4.8 / 237.56)])
    clip = encode(speech(5.0, offset_s=6.0), 16000, tmp_path / "clip.wav", "pcm_s16le", "wav", out_sr=8000)
    beep = encode(tone(1000.0, 40.0, 8000), 8000, tmp_path / "tone.wav", "pcm_s16le", "wav")

    results = {p.name: process_call(_source(p), detector_toolkit) for p in (cut, clip, beep)}
    for name, r in results.items():
        assert isinstance(r, CallResult), r
        assert r.scorability.status == "unscorable" and r.scorability.reasons, name
        assert r.scores == [], name
    trunc = results["truncated.wav"]
    assert any(w.startswith("truncated") for w in trunc.warnings)
    assert trunc.scorability.reasons[0].startswith("truncated: 4.8 s left of 237.6 s")
    assert results["clip.wav"].scorability.reasons[0].startswith("too short: 5.0 s")
    assert "no speech" in results["tone.wav"].scorability.reasons

    path = tmp_path / "qa.duckdb"
    con = store.connect(path)
    try:
        for r in results.values():
            assert store.write_call(con, r, "run", "test")
    finally:
        con.close()
    assert q(path, "SELECT count(*) FROM flagged_queue") == [(0,)]
    assert q(path, "SELECT count(*) FROM agent_daily") == [(0,)]
    assert q(path, "SELECT count(*) FROM recordings_to_check WHERE scorable_status = 'unscorable'") == [(3,)]


@pytest.mark.slow
def test_real_agent_side_only_recording_is_graded_on_the_agents_side(real_data, detector_toolkit):
    """The real aws-lca agent.wav (the agent's leg alone): partial, with customer-side criteria n/a."""
    from callqa.pipeline.call import process_call

    r = process_call(_source(real_data / "realcalls" / "aws-lca" / "agent.wav"), detector_toolkit)
    assert isinstance(r, CallResult), r
    assert r.scorability.status == "partial", r.scorability
    by = {c.criterion_id: c for c in r.scores[0].criteria}
    assert by["no_dead_air"].result == "na" and by["greeting"].result == "pass" and by["closing"].result == "pass"


def test_the_report_lists_recordings_to_check_apart(db, tmp_path):
    from callqa.workspace.report import build_report

    build_report(db, tmp_path / "site", audio="none")
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    queue, _, rest = html.partition("Recordings to check")
    assert "bad_agent.wav" in queue and "tone.wav" not in queue and "truncated.wav" not in queue
    assert "3 not graded, 1 graded on the agent&#39;s side" in rest  # the apostrophe is escaped
    assert "tone.wav" in rest and "no speech" in rest and "truncated: 4.8 s left of 238.0 s" in rest
