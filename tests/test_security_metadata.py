"""Untrusted call metadata and secrets (issue 15, points 2 and 5): each test tries an attack.

A sidecar or manifest cannot set the keys callqa writes itself (`redacted_audio` points the report
at a file to publish); customer ids and free-text metadata are not stored raw with redaction on;
`runs.settings` holds no secret; a redacted call's report page never plays the original recording.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat

import duckdb
import pytest
import yaml

from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.pipeline.discover import metadata_error, scan
from callqa.pipeline.redact import PSEUDONYM_KEY_ENV, pseudonymise
from fake_pipeline import use_fake_pipeline, write_recordings

EXTS = [".wav"]
SECRET = "root:x:0:0:this-file-must-never-be-published"


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "elsewhere" / "secret.wav"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def _config(tmp_path, **redaction) -> str:
    cfg = tmp_path / "settings.yaml"
    red = {"pseudonym_key_file": str(tmp_path / "keys" / "pseudonym.key"), **redaction}
    cfg.write_text(yaml.safe_dump({"redaction": red}))
    return str(cfg)


def _run(tmp_path, calls, db, cfg):
    from callqa.flows.nightly import run_nightly

    return run_nightly(calls, db, cfg, workers=1)


# ---- point 2: internal keys never come from metadata ---------------------------------------------


@pytest.mark.parametrize("key", ["redacted_audio", "redaction", "_sidecar_error", "_anything"])
def test_a_sidecar_cannot_set_an_internal_key(tmp_path, secret_file, caplog, key):
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    sidecar = calls / "a.json"
    value = {"spans": 0} if key == "redaction" else str(secret_file)
    sidecar.write_text(json.dumps({key: value, "agent_id": "A1"}))
    with caplog.at_level(logging.WARNING, logger="callqa.pipeline.discover"):
        found = scan(calls, EXTS)
    (source,) = found.sources
    assert source.metadata == {"agent_id": "A1"}  # the rest of the sidecar still counts
    assert metadata_error(source) is None  # the call is processed, without the planted key
    assert any(str(sidecar) in w and repr(key) in w for w in found.warnings), found.warnings
    assert any(str(sidecar) in r.getMessage() for r in caplog.records)


def test_a_manifest_column_cannot_set_an_internal_key(tmp_path, secret_file):
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    (calls / "manifest.csv").write_text(f"file,agent_id,redacted_audio\na.wav,A1,{secret_file}\n")
    found = scan(calls, EXTS)
    assert found.sources[0].metadata == {"agent_id": "A1"}
    assert any("manifest.csv" in w and "redacted_audio" in w for w in found.warnings)


def test_unknown_sidecar_fields_are_kept_as_documented_free_form_metadata(tmp_path):
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    (calls / "a.json").write_text(json.dumps({"campaign": "spring", "priority": 2, "tags": ["vip"]}))
    found = scan(calls, EXTS)
    assert found.sources[0].metadata == {"campaign": "spring", "priority": 2, "tags": ["vip"]}
    assert found.warnings == []


@pytest.mark.parametrize("enabled", [True, False])
def test_a_planted_redacted_audio_path_reaches_neither_the_database_nor_the_report(
    tmp_path, monkeypatch, secret_file, enabled
):
    from callqa.workspace.report import build_report

    use_fake_pipeline(monkeypatch)
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    (calls / "a.json").write_text(json.dumps({"redacted_audio": str(secret_file)}))
    db = tmp_path / "qa.duckdb"
    _run(tmp_path, calls, db, _config(tmp_path, enabled=enabled))

    con = duckdb.connect(str(db), read_only=True)
    (meta,) = con.execute("SELECT metadata FROM calls").fetchone()
    con.close()
    assert str(secret_file) not in meta
    for audio in ("copy", "link"):
        out = tmp_path / f"report-{audio}-{enabled}"
        build_report(db, out, audio=audio)
        published = [p for p in out.rglob("*") if p.is_file()]
        assert not any(p.read_bytes() == SECRET.encode() for p in published)
        assert not any(str(secret_file) in p.read_text(errors="ignore") for p in published if p.suffix == ".html")


# ---- point 5: PII in metadata, secrets in settings ----------------------------------------------


def test_runs_settings_hold_no_secret_with_hf_token_set(tmp_path, monkeypatch):
    token = "hf_" + "S3cr3tT0ken" * 3
    monkeypatch.setenv("HF_TOKEN", token)
    settings = load_settings()
    assert settings.models.hf_token == token  # the models still get it ...
    assert pickle.loads(pickle.dumps(settings)).models.hf_token == token  # ... on Dask workers too
    assert token not in repr(settings) and token not in settings.model_dump_json()
    con = store.connect(tmp_path / "qa.duckdb")
    store.start_run(con, "nightly_batch", None, settings.model_dump(mode="json"), "test")
    (stored,) = con.execute("SELECT settings FROM runs").fetchone()
    con.close()
    assert token not in stored and "S3cr3t" not in stored


def test_runs_settings_hold_no_secret_after_a_real_flow_run(tmp_path, monkeypatch):
    token = "hf_" + "FlowT0ken" * 3
    monkeypatch.setenv("HF_TOKEN", token)
    use_fake_pipeline(monkeypatch)
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    db = tmp_path / "qa.duckdb"
    _run(tmp_path, calls, db, _config(tmp_path))
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT settings::VARCHAR FROM runs").fetchall()
    con.close()
    assert rows and not any(token in r[0] for r in rows)


def _stored(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT file_name, customer_id, metadata FROM calls ORDER BY file_name").fetchall()
        dump = " ".join(str(r) for t in ("calls", "runs") for r in con.execute(f"SELECT * FROM {t}").fetchall())
    finally:
        con.close()
    return {name: (cid, json.loads(meta)) for name, cid, meta in rows}, dump


NOTES = "customer asked for a call back on 07700 900123, card 4111 1111 1111 1111"


def test_customer_id_and_free_text_metadata_are_not_stored_raw_with_redaction_on(tmp_path, monkeypatch):
    use_fake_pipeline(monkeypatch)
    monkeypatch.delenv(PSEUDONYM_KEY_ENV, raising=False)
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav", "b.wav", "c.wav"])
    for name, cid in (("a", "CUST-0042117"), ("b", "CUST-0042117"), ("c", "CUST-0099001")):
        (calls / f"{name}.json").write_text(json.dumps({"customer_id": cid, "agent_id": "A7", "notes": NOTES}))
    db = tmp_path / "qa.duckdb"
    _run(tmp_path, calls, db, _config(tmp_path))

    rows, dump = _stored(db)
    for raw in ("CUST-0042117", "CUST-0099001", "07700 900123", "4111 1111 1111 1111"):
        assert raw not in dump
    (a_id, a_meta), (b_id, _), (c_id, _) = rows["a.wav"], rows["b.wav"], rows["c.wav"]
    # a keyed pseudonym: one customer, one value (repeat contacts still join), another customer another
    assert a_id.startswith("cid_") and a_id == b_id != c_id and a_meta["customer_id"] == a_id
    assert a_meta["notes"] == "customer asked for a call back on [PHONE], card [CARD]"
    assert a_meta["agent_id"] == "A7"  # staff ids and queues are kept for the QA reports
    key_file = tmp_path / "keys" / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert a_id == pseudonymise("CUST-0042117", bytes.fromhex(key_file.read_text().strip()))

    # the next run (another night, same key) gives the same customer the same pseudonym
    more = tmp_path / "calls2"
    write_recordings(more, ["d.wav"])
    (more / "manifest.csv").write_text("file,customer_id\nd.wav,CUST-0042117\n")
    _run(tmp_path, more, db, _config(tmp_path))
    rows, _ = _stored(db)
    assert rows["d.wav"][0] == a_id


def test_customer_id_pseudonym_key_from_the_environment_and_the_drop_and_keep_policies(tmp_path, monkeypatch):
    use_fake_pipeline(monkeypatch)
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "a key held in a secret store")
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    (calls / "a.json").write_text(json.dumps({"customer_id": "C-77"}))
    for policy, expected in (
        ("pseudonymise", pseudonymise("C-77", b"a key held in a secret store")),
        ("drop", None),
        ("keep", "C-77"),
    ):
        db = tmp_path / f"{policy}.duckdb"
        _run(tmp_path, calls, db, _config(tmp_path, customer_id=policy))
        rows, _ = _stored(db)
        assert rows["a.wav"][0] == expected, policy
    assert not (tmp_path / "keys").exists()  # the environment's key: no key file written


def test_with_redaction_off_metadata_is_stored_as_given(tmp_path, monkeypatch):
    use_fake_pipeline(monkeypatch)
    calls = tmp_path / "calls"
    write_recordings(calls, ["a.wav"])
    (calls / "a.json").write_text(json.dumps({"customer_id": "C-77", "notes": NOTES}))
    db = tmp_path / "qa.duckdb"
    _run(tmp_path, calls, db, _config(tmp_path, enabled=False))
    rows, _ = _stored(db)
    assert rows["a.wav"][0] == "C-77" and rows["a.wav"][1]["notes"] == NOTES


def test_a_redacted_call_never_plays_the_original_recording_in_the_report(tmp_path, monkeypatch):
    from callqa.workspace.report import build_report

    use_fake_pipeline(monkeypatch)
    calls = tmp_path / "calls"
    rec = write_recordings(calls, ["a.wav"])["a.wav"]
    db = tmp_path / "qa.duckdb"
    _run(tmp_path, calls, db, _config(tmp_path))  # redaction on, no redacted audio copy
    for audio in ("link", "copy"):
        out = tmp_path / f"report-{audio}"
        build_report(db, out, audio=audio)
        page = next((out / "calls").glob("*.html")).read_text(encoding="utf-8")
        assert '<audio id="player"' not in page
        assert "this call was redacted" in page
        assert not any(p.read_bytes() == rec.read_bytes() for p in out.rglob("*") if p.is_file())
    assert os.path.exists(rec)
