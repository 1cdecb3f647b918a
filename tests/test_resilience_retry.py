"""Prefect retries transient errors only: an I/O error is retried and the call stored once; corrupt
audio (permanent) is tried once and recorded once however many runs meet it; a bug is not retried.

The faults are injected where they would really happen, in the decode stage, by replacing
callqa.pipeline.call.decode for chosen files; everything else (Prefect retries, the pipeline with
real ASR, the DuckDB writer) is the real thing.
"""

from __future__ import annotations

import errno
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import yaml

import callqa.pipeline.call as process_module
from callqa.flows.nightly import run_nightly
from callqa.pipeline.decode import decode as real_decode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings_file(tmp_path_factory, asr_model_settings):
    cfg = tmp_path_factory.mktemp("retry") / "settings.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"models": {"cache_dir": str(asr_model_settings.cache_dir)}, "batch": {"retries": 1, "retry_delay_s": 0}}
        )
    )
    return cfg


def _folder(tmp_path: Path, src: Path, names: list[str]) -> Path:
    d = tmp_path / "calls"
    d.mkdir()
    for n in names:
        shutil.copy(src / n, d / n)
    return d


def _inject(monkeypatch, faults: dict[str, callable]) -> Counter:
    """Replace decode: count attempts per file, raise the injected fault when one is set."""
    attempts: Counter = Counter()
    real = real_decode  # not process_module.decode, which may already be an injected one

    def decode(path, *a, **kw):
        name = Path(path).name
        attempts[name] += 1
        fault = faults.get(name)
        if fault is not None:
            exc = fault(attempts[name])
            if exc is not None:
                raise exc
        return real(path, *a, **kw)

    monkeypatch.setattr(process_module, "decode", decode)
    return attempts


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_transient_retried_permanent_once_bug_not_retried(tmp_path, batch_calls, settings_file, monkeypatch):
    src, _ = batch_calls
    calls = _folder(tmp_path, src, ["billing.wav", "corrupt.wav", "password.wav"])
    db = tmp_path / "qa.duckdb"
    attempts = _inject(
        monkeypatch,
        {
            # the file server hiccups once
            "billing.wav": lambda n: OSError(errno.EIO, "Input/output error") if n == 1 else None,
            # a bug in a stage: retrying cannot help
            "password.wav": lambda n: ValueError("unexpected frame layout"),
        },
    )
    first = run_nightly(calls, db, settings_file, workers=1)
    assert attempts == {"billing.wav": 2, "corrupt.wav": 1, "password.wav": 1}
    assert (first["processed"], first["failed"]) == (1, 2)
    assert _rows(db, "SELECT file_name FROM calls") == [("billing.wav",)]
    fails = {Path(p).name: (stage, perm) for p, stage, perm in _rows(db, "SELECT path, stage, permanent FROM failures")}
    assert fails == {"corrupt.wav": ("decode", True), "password.wav": ("decode", False)}

    attempts.clear()
    second = run_nightly(calls, db, settings_file, workers=1)
    # the corrupt file is not tried again; the failed-by-bug one is (it may be fixed by an upgrade)
    assert attempts == {"password.wav": 1}
    assert (second["processed"], second["failed"], second["skipped"]) == (0, 1, 2)
    assert _rows(db, "SELECT count(*) FROM failures WHERE path LIKE '%corrupt.wav'") == [(1,)]
    assert _rows(db, "SELECT count(*) FROM calls") == [(1,)]


def test_transient_error_that_persists_is_recorded_and_retried_next_run(
    tmp_path, batch_calls, settings_file, monkeypatch
):
    src, _ = batch_calls
    calls = _folder(tmp_path, src, ["delivery.wav"])
    db = tmp_path / "qa.duckdb"
    attempts = _inject(monkeypatch, {"delivery.wav": lambda n: OSError(errno.ETIMEDOUT, "Connection timed out")})
    first = run_nightly(calls, db, settings_file, workers=1)
    assert attempts == {"delivery.wav": 2}  # the first try and batch.retries = 1 retry
    assert (first["processed"], first["failed"]) == (1 - 1, 1)
    ((error, permanent),) = _rows(db, "SELECT error, permanent FROM failures")
    assert not permanent and "delivery.wav" in error and "timed out" in error

    attempts = _inject(monkeypatch, {})  # the network is back
    second = run_nightly(calls, db, settings_file, workers=1)
    assert attempts == {"delivery.wav": 1}
    assert second["processed"] == 1
    assert _rows(db, "SELECT file_name FROM calls") == [("delivery.wav",)]
    assert _rows(db, "SELECT count(*) FROM failures") == [(1,)]  # the history of the failed night stays
