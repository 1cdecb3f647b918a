"""A mono call through the whole per-call pipeline into DuckDB: diarized speakers, roles decided
from what was said, overtalk where the voices overlap (real TTS, real ASR, real DuckDB)."""

from __future__ import annotations

import json

import duckdb
import pytest

from callqa.evaluation.diarization import _source, load_rttm, pair_reference, synth_eval_calls, word_role_accuracy
from callqa.pipeline import store
from callqa.pipeline.call import process_call
from callqa.pipeline.types import CallResult
from callqa.synth.truth import CallTruth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mono_call(tmp_path_factory, detector_toolkit):
    out = tmp_path_factory.mktemp("mono-flow")
    (path,) = synth_eval_calls(out, only=["parcelway_delivery_complaint"])
    result = process_call(_source(path), detector_toolkit)
    assert isinstance(result, CallResult), result
    db = out / "qa.duckdb"
    con = store.connect(db)
    try:
        store.write_call(con, result, None, "test")
    finally:
        con.close()
    return path, result, db


def test_mono_call_is_diarized_and_roles_come_from_evidence(mono_call):
    path, result, _ = mono_call
    assert {u.speaker for u in result.utterances} == {"SPEAKER_00", "SPEAKER_01"}
    assert (
        result.roles is not None and result.roles.method.startswith("evidence:") and "greeting" in result.roles.method
    )
    assert result.roles.confidence >= 0.9
    acc, ok = word_role_accuracy(result.utterances, load_rttm(path.with_suffix(".rttm"))[path.stem])
    assert ok and acc >= 0.95, acc
    assert "offline-ge2e" in result.models["diarization"]


def test_mono_utterances_in_duckdb_carry_speaker_and_role_and_overtalk_is_stored(mono_call):
    path, result, db = mono_call
    truth = CallTruth.load(path.with_name(path.stem + ".truth.json"))
    (ov,) = truth.overlaps
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT speaker, role, role_confidence FROM utterances ORDER BY seq").fetchall()
        assert rows and all(s.startswith("SPEAKER_") and r in ("agent", "customer") and c >= 0.9 for s, r, c in rows)
        assert rows[0][1] == "agent"  # the greeting
        method, roles = con.execute("SELECT role_method, roles FROM calls").fetchone()
        assert method.startswith("evidence:") and set(json.loads(roles).values()) == {"agent", "customer"}
        events = con.execute("SELECT start_s, end_s, role, data FROM events WHERE type = 'overtalk'").fetchall()
        assert events, "the interruption must be stored as overtalk"
        near = [e for e in events if e[0] < ov.end_s + 0.5 and e[1] > ov.start_s - 0.8]
        assert near and json.loads(near[0][3])["started_by_role"] == "customer"
        total = con.execute("SELECT value FROM call_metrics WHERE name = 'overtalk_total_s'").fetchone()[0]
        assert total > 0
    finally:
        con.close()


@pytest.mark.parametrize("stem", ["Auto_Repairs_40_UTC", "Auto_Repairs_49_UTC"])
def test_real_agent_caller_pair_mixed_to_mono_gets_the_right_roles(real_data, tmp_path, detector_toolkit, stem):
    """A real call (two time-aligned legs of an acted AWS demo call, so the truth is known) mixed
    to one channel. On Auto_Repairs_49 the diarizer gives the agent's 1.4 s opening line to the
    customer's voice; that turn is reported uncertain, so its greeting no longer decides the roles."""
    real = real_data / "realcalls" / "aws-lca"
    mono, _stereo = pair_reference(
        real / f"{stem}_agent.wav", real / f"{stem}_caller.wav", tmp_path, stem, diarizer=detector_toolkit.diarizer
    )
    result = process_call(_source(mono), detector_toolkit)
    assert isinstance(result, CallResult), result
    acc, ok = word_role_accuracy(result.utterances, load_rttm(mono.with_suffix(".rttm"))[mono.stem])
    assert ok, (result.roles, acc)
    assert acc >= 0.85, acc
