"""Call metadata from file names (metadata.filename_pattern), applied at discovery under the sidecar."""

from __future__ import annotations

import json

import pytest

from callqa.config.settings import RedactionSettings, load_settings
from callqa.pipeline.discover import METADATA_WARNINGS, SIDECAR_ERROR, scan
from callqa.pipeline.filename_meta import compile_pattern, fields_from_name
from callqa.pipeline.redact import pseudonymise, redact_sources
from callqa.pipeline.types import ConfigError

PCA = "Auto0_GUID_000_AGENT_ChrisL_DT_2025-02-19T06-01-22_Mono.wav"
PCA_REGEX = r"AGENT_(?P<agent_id>[^_]+)_DT_(?P<started_at>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d)"
PCA_TEMPLATE = "{_}_{_}_{_}_AGENT_{agent_id}_DT_{started_at}_{_}.wav"


@pytest.mark.parametrize("pattern", [PCA_REGEX, PCA_TEMPLATE])
def test_the_aws_pca_sample_name(pattern):
    assert fields_from_name(PCA, compile_pattern(pattern)) == {
        "agent_id": "ChrisL",
        "started_at": "2025-02-19T06:01:22",
    }


def test_template_with_every_field():
    rx = compile_pattern("{team}-{queue}-{agent_id}-{direction}-{customer_id}-{started_at}.wav")
    assert fields_from_name("gold-billing-a17-inbound-C991-20260301_101500.wav", rx) == {
        "team": "gold",
        "queue": "billing",
        "agent_id": "a17",
        "direction": "inbound",
        "customer_id": "C991",
        "started_at": "2026-03-01T10:15:00",
    }
    assert fields_from_name("other.wav", rx) is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(?P<agent>x)", "unknown field"),
        ("{agent}_{_}.wav", "unknown field"),
        ("{agent_id}_{agent_id}", "twice"),
        ("AGENT_(?P<agent_id>[", "invalid regular expression"),
        ("AGENT_.*", "names no field"),
    ],
)
def test_bad_patterns_name_the_setting(pattern, problem):
    with pytest.raises(ConfigError, match=problem) as e:
        compile_pattern(pattern)
    assert "metadata.filename_pattern" in str(e.value)


def test_setting_defaults_to_none():
    assert load_settings().metadata.filename_pattern is None


def _wav(folder, name, data=b"RIFF"):
    p = folder / name
    p.write_bytes(data + name.encode())
    return p


def test_discovery_reads_names_and_sidecar_wins(tmp_path):
    _wav(tmp_path, PCA)
    other = "Auto1_GUID_001_AGENT_MaryK_DT_2025-02-20T10-00-00_Mono.wav"
    _wav(tmp_path, other)
    (tmp_path / other.replace(".wav", ".json")).write_text(json.dumps({"agent_id": "Mary.K", "csat": 4, "tier": "L2"}))
    (tmp_path / "manifest.csv").write_text(f"file,queue,started_at\n{other},billing,2025-02-21T08:00:00\n")
    found = scan(tmp_path, [".wav"], filename_pattern=PCA_TEMPLATE)
    meta = {s.path.rsplit("/", 1)[1]: s.metadata for s in found.sources}
    assert meta[PCA] == {"agent_id": "ChrisL", "started_at": "2025-02-19T06:01:22"}
    # sidecar over manifest over file name, field by field
    assert meta[other] == {
        "agent_id": "Mary.K",
        "started_at": "2025-02-21T08:00:00",
        "queue": "billing",
        "csat": 4.0,
        "tier": 2,
    }


def test_a_name_that_does_not_match_is_processed_with_a_warning(tmp_path, caplog):
    _wav(tmp_path, "recording-17.wav")
    _wav(tmp_path, "AGENT_x_DT_2025-13-45T99-00-00_Mono.wav")
    found = scan(tmp_path, [".wav"], filename_pattern=r"AGENT_(?P<agent_id>[^_]+)_DT_(?P<started_at>[0-9T-]+)")
    by_name = {s.path.rsplit("/", 1)[1]: s for s in found.sources}
    plain = by_name["recording-17.wav"]
    assert SIDECAR_ERROR not in plain.metadata
    assert plain.metadata[METADATA_WARNINGS] == [f"{plain.path}: file name does not match metadata.filename_pattern"]
    bad_date = by_name["AGENT_x_DT_2025-13-45T99-00-00_Mono.wav"].metadata
    assert "agent_id" not in bad_date and "not a date-time" in bad_date[METADATA_WARNINGS][0]
    assert any("does not match" in w for w in found.warnings)
    assert "does not match metadata.filename_pattern" in caplog.text


def test_no_pattern_reads_nothing_from_names(tmp_path):
    _wav(tmp_path, PCA)
    assert scan(tmp_path, [".wav"]).sources[0].metadata == {}


def test_customer_id_from_the_name_is_pseudonymised(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLQA_PSEUDONYM_KEY", "k" * 32)
    _wav(tmp_path, "C12345_a7.wav")
    found = scan(tmp_path, [".wav"], filename_pattern="{customer_id}_{agent_id}.wav")
    [src] = redact_sources(found.sources, RedactionSettings())
    assert src.metadata["customer_id"] == pseudonymise("C12345", b"k" * 32) != "C12345"
    assert src.metadata["agent_id"] == "a7"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("tier", 4, "tier"),
        ("csat", 6, "csat"),
        ("nps", 7.5, "whole number"),
        ("nps", "ten", "nps"),
        ("csat", True, "csat"),
    ],
)
def test_survey_fields_are_validated(tmp_path, field, value, problem):
    _wav(tmp_path, "a.wav")
    (tmp_path / "a.json").write_text(json.dumps({field: value}))
    [src] = scan(tmp_path, [".wav"]).sources
    assert problem in src.metadata[SIDECAR_ERROR] and "a.json" in src.metadata[SIDECAR_ERROR]
