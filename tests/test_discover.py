"""discover: content-addressed call ids, duplicates, filters, sidecar and manifest metadata."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from audio_helpers import FORMATS, encode, encode_format, speech, tone
from callqa.pipeline.discover import (
    SIDECAR_ERROR,
    discover,
    metadata_error,
    parse_channel_map,
    scan,
    sha256_file,
)
from callqa.pipeline.types import CallSource, ConfigError

EXTS = [".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"]


def _call(directory, name: str, freq: float, codec="pcm_s16le", container="wav", sr=8000):
    """A short real recording: speech followed by a tone whose frequency makes its bytes unique."""
    x = np.concatenate([speech(0.5, 7.0), tone(freq, 0.3, 16000)])
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return encode(x, 16000, path, codec, container, out_sr=sr)


@pytest.fixture
def calls(tmp_path):
    d = tmp_path / "recordings"
    _call(d, "b_call.wav", 440)
    _call(d, "a_call.WAV", 550)  # upper-case extension
    _call(d, "c_call.mp3", 660, "libmp3lame", "mp3", 16000)
    _call(d, "sub/d_call.flac", 770, "flac", "flac", 16000)
    _call(d, ".hidden.wav", 880)  # dotfiles are skipped
    _call(d, ".trash/e_call.wav", 990)  # and so are hidden folders
    (d / "notes.txt").write_text("not audio")
    return d


def test_sha256_file_streams_large_files(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, (5 << 20) // 2 + 7, dtype=np.uint8).tobytes()
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_lists_audio_sorted_with_hash_ids(calls):
    sources = discover(calls, EXTS)
    rel = [os.path.relpath(s.path, calls) for s in sources]
    assert rel == ["a_call.WAV", "b_call.wav", "c_call.mp3", "sub/d_call.flac"]
    for s in sources:
        assert isinstance(s, CallSource)
        assert s.call_id == hashlib.sha256(open(s.path, "rb").read()).hexdigest()
        assert s.size_bytes == os.path.getsize(s.path) > 0
        assert s.metadata == {}
    assert len({s.call_id for s in sources}) == 4


def test_not_recursive(calls):
    rel = [os.path.relpath(s.path, calls) for s in discover(calls, EXTS, recursive=False)]
    assert rel == ["a_call.WAV", "b_call.wav", "c_call.mp3"]


def test_extension_filter(calls):
    assert [os.path.basename(s.path) for s in discover(calls, [".wav"])] == ["a_call.WAV", "b_call.wav"]
    # without the dot and in upper case works the same
    assert [os.path.basename(s.path) for s in discover(calls, ["WAV", "flac"])] == [
        "a_call.WAV",
        "b_call.wav",
        "d_call.flac",
    ]
    assert discover(calls, [".m4a"]) == []


def test_renamed_copy_keeps_its_call_id_and_is_skipped(calls, tmp_path):
    original = next(s for s in discover(calls, EXTS) if s.path.endswith("b_call.wav"))
    shutil.copy(calls / "b_call.wav", calls / "sub" / "zz_renamed.wav")
    result = scan(calls, EXTS)
    assert [os.path.basename(s.path) for s in result.sources] == [
        "a_call.WAV",
        "b_call.wav",
        "c_call.mp3",
        "d_call.flac",
    ]
    assert len(result.duplicates) == 1
    dup = result.duplicates[0]
    assert dup.path.endswith("zz_renamed.wav") and dup.same_as == original.path and dup.call_id == original.call_id

    # In another folder (another night's drop) the renamed copy gets the same id, so the flow
    # recognises it as already stored.
    other = tmp_path / "tomorrow"
    other.mkdir()
    shutil.copy(calls / "b_call.wav", other / "renamed.wav")
    assert discover(other, EXTS)[0].call_id == original.call_id


def test_sidecar_json(calls):
    (calls / "b_call.json").write_text(
        json.dumps(
            {
                "agent_id": 1042,
                "queue": "billing",
                "customer_id": "C-77",
                "started_at": "2025-02-19T06:01:22Z",
                "direction": "Inbound",
                "language": "en",
                "channel_map": {"0": "customer", "1": "agent"},
                "campaign": "spring",
            }
        )
    )
    by_name = {os.path.basename(s.path): s for s in discover(calls, EXTS)}
    meta = by_name["b_call.wav"].metadata
    assert meta == {
        "agent_id": "1042",
        "queue": "billing",
        "customer_id": "C-77",
        "started_at": "2025-02-19T06:01:22+00:00",
        "direction": "inbound",
        "language": "en",
        "channel_map": {0: "customer", 1: "agent"},
        "campaign": "spring",  # unknown keys are kept
    }
    assert by_name["a_call.WAV"].metadata == {}


def test_manifest_csv_by_relative_path_and_name(calls):
    (calls / "manifest.csv").write_text(
        "file,agent_id,queue,started_at,direction,channel_map,language\n"
        "a_call.WAV,A1,sales,2025-03-01 09:30:00,outbound,agent;customer,\n"
        "sub/d_call.flac,A2,support,,inbound,0:customer;1:agent,zh\n"
        "c_call.mp3,A3,,,,,\n"
        "missing.wav,A9,,,,,\n"
    )
    by_name = {os.path.basename(s.path): s for s in discover(calls, EXTS)}
    assert by_name["a_call.WAV"].metadata == {
        "agent_id": "A1",
        "queue": "sales",
        "started_at": "2025-03-01T09:30:00",
        "direction": "outbound",
        "channel_map": {0: "agent", 1: "customer"},
    }
    assert by_name["d_call.flac"].metadata == {
        "agent_id": "A2",
        "queue": "support",
        "direction": "inbound",
        "channel_map": {0: "customer", 1: "agent"},
        "language": "zh",
    }
    assert by_name["c_call.mp3"].metadata == {"agent_id": "A3"}
    assert by_name["b_call.wav"].metadata == {}


def test_sidecar_overrides_manifest(calls):
    (calls / "manifest.csv").write_text("file,agent_id,queue\nb_call.wav,A1,sales\n")
    (calls / "b_call.json").write_text('{"agent_id": "A7"}')
    meta = next(s for s in discover(calls, EXTS) if s.path.endswith("b_call.wav")).metadata
    assert meta == {"agent_id": "A7", "queue": "sales"}


def test_bad_sidecar_is_reported_for_that_call_only(calls):
    bad = calls / "b_call.json"
    bad.write_text('{"agent_id": "A7", ')  # cut off
    (calls / "c_call.json").write_text('{"agent_id": "A8"}')

    sources = {os.path.basename(s.path): s for s in discover(calls, EXTS)}  # does not raise

    broken = sources["b_call.wav"]
    assert str(bad) in broken.metadata[SIDECAR_ERROR] and "invalid JSON" in broken.metadata[SIDECAR_ERROR]
    err = metadata_error(broken)
    assert isinstance(err, ConfigError) and err.path == str(bad) and "invalid JSON" in err.message
    assert str(err) == broken.metadata[SIDECAR_ERROR]
    assert sources["c_call.mp3"].metadata == {"agent_id": "A8"}
    assert metadata_error(sources["c_call.mp3"]) is None


@pytest.mark.parametrize(
    "content, reason",
    [
        ("[1, 2]", "JSON object"),
        ('{"direction": "sideways"}', "direction"),
        ('{"started_at": "yesterday"}', "ISO 8601"),
        ('{"channel_map": {"0": "boss"}}', "agent or customer"),
        ('{"agent_id": {"id": 1}}', "agent_id"),
    ],
)
def test_invalid_sidecar_fields(calls, content, reason):
    sidecar = calls / "a_call.json"
    sidecar.write_text(content)
    source = next(s for s in discover(calls, EXTS) if s.path.endswith("a_call.WAV"))
    err = metadata_error(source)
    assert err is not None and err.path == str(sidecar) and reason in err.message, err


def test_bad_manifest_row_is_reported_for_that_call(calls):
    manifest = calls / "manifest.csv"
    manifest.write_text("file,direction\nb_call.wav,upwards\nc_call.mp3,inbound\n")
    sources = {os.path.basename(s.path): s for s in discover(calls, EXTS)}
    err = metadata_error(sources["b_call.wav"])
    assert err.path == str(manifest) and "line 2" in err.message and "upwards" in err.message
    assert sources["c_call.mp3"].metadata == {"direction": "inbound"}


def test_manifest_without_file_column_fails_the_scan(calls):
    manifest = calls / "manifest.csv"
    manifest.write_text("name,agent_id\nb_call.wav,A1\n")
    with pytest.raises(ConfigError) as info:
        discover(calls, EXTS)
    assert info.value.path == str(manifest) and "'file' column" in info.value.message


def test_missing_input_dir(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ConfigError) as info:
        discover(missing, EXTS)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    file_not_dir = _call(tmp_path, "x.wav", 300)
    with pytest.raises(ConfigError, match="not a folder"):
        discover(file_not_dir, EXTS)


def test_zero_byte_files_are_listed_for_decode_to_reject(tmp_path):
    (tmp_path / "empty.wav").touch()
    encode_format(speech(0.5, 7.0), 16000, tmp_path, FORMATS["flac"], stem="real")
    sources = discover(tmp_path, EXTS)
    assert [os.path.basename(s.path) for s in sources] == ["empty.wav", "real.flac"]
    assert sources[0].call_id == hashlib.sha256(b"").hexdigest() and sources[0].size_bytes == 0


@pytest.mark.parametrize(
    "value",
    [
        {"0": "agent", "1": "customer"},
        {0: "Agent", 1: "CUSTOMER"},
        ["agent", "customer"],
        '{"0": "agent", "1": "customer"}',
        '["agent", "customer"]',
        "0:agent;1:customer",
        "0=agent, 1=customer",
        "agent,customer",
    ],
)
def test_parse_channel_map(value):
    assert parse_channel_map(value) == {0: "agent", 1: "customer"}


@pytest.mark.parametrize("value", ["", "{}", "agent;boss", "x:agent", '{"0": "agent"', "-1:agent"])
def test_parse_channel_map_rejects(value):
    with pytest.raises(ValueError):
        parse_channel_map(value)
