"""Safe writes for the report and exports, and the report's audio sources (issue 15, points 2 and 3).

Each test plants what an attacker with write access to the output folder (or to a recording's
metadata) would plant, and checks that callqa neither writes the link's target nor publishes a file
from outside the run's recording and redacted-audio folders. All of these worked on 220a32b.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import qa_data
from callqa.cli import app
from callqa.pipeline import store
from callqa.pipeline.types import CallQAError
from callqa.workspace.export import export
from callqa.workspace.report import build_report

VICTIM_TEXT = "the victim's own file\n"
MANIFEST = ".callqa-manifest.json"


@pytest.fixture(scope="module")
def site_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("writes")
    db, calls = qa_data.build_db_with_recordings(root, max_s=3.0)
    return {"db": db, "calls": calls}


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "elsewhere" / "victim.txt"
    v.parent.mkdir()
    v.write_text(VICTIM_TEXT)
    return v


def _cid(site_db, i: int = 0) -> str:
    return site_db["calls"][i].source.call_id


def test_links_planted_at_the_old_temp_names_are_never_written(site_db, tmp_path, victim):
    """REPORT/index.html.part (and the other .part names) linked elsewhere: the target stays as it was."""
    out = tmp_path / "report"
    (out / "calls").mkdir(parents=True)
    for rel in ("index.html.part", "calls.html.part", "plotly.min.js.part", f"calls/{_cid(site_db)}.html.part"):
        (out / rel).symlink_to(victim)
    build_report(site_db["db"], out, audio="none")
    assert victim.read_text() == VICTIM_TEXT
    assert (out / "index.html").is_file() and not (out / "index.html").is_symlink()


@pytest.mark.parametrize("rel", ["index.html", "calls.html", "plotly.min.js", "calls/{cid}.html"])
def test_a_link_at_a_report_destination_is_refused(site_db, tmp_path, victim, rel):
    out = tmp_path / "report"
    (out / "calls").mkdir(parents=True)
    (out / rel.format(cid=_cid(site_db))).symlink_to(victim)
    with pytest.raises(CallQAError, match="symbolic link"):
        build_report(site_db["db"], out, audio="none")
    assert victim.read_text() == VICTIM_TEXT


def test_a_link_at_an_audio_copy_is_refused_even_with_force(site_db, tmp_path, victim):
    """REPORT/audio/<call_id>.wav linked to another file: `--audio copy` must not overwrite the target."""
    out = tmp_path / "report"
    (out / "audio").mkdir(parents=True)
    (out / "audio" / f"{_cid(site_db)}.wav").symlink_to(victim)
    for force in (False, True):
        with pytest.raises(CallQAError, match="symbolic link"):
            build_report(site_db["db"], out, audio="copy", force=force)
        assert victim.read_text() == VICTIM_TEXT


@pytest.mark.parametrize("sub", ["calls", "audio"])
def test_a_linked_report_subfolder_is_refused(site_db, tmp_path, sub):
    out = tmp_path / "report"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / sub).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CallQAError, match="symbolic link"):
        build_report(site_db["db"], out, audio="copy")
    assert list(elsewhere.iterdir()) == []


def test_report_overwrites_only_its_own_files_without_force(site_db, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("my own notes\n")
    with pytest.raises(CallQAError, match="--force"):
        build_report(site_db["db"], out, audio="none")
    assert (out / "index.html").read_text() == "my own notes\n"
    build_report(site_db["db"], out, audio="none", force=True)
    assert "my own notes" not in (out / "index.html").read_text()
    # the manifest lists what callqa wrote, so a rebuild needs no --force ...
    listed = json.loads((out / MANIFEST).read_text())["files"]
    assert {"index.html", "calls.html", "plotly.min.js", f"calls/{_cid(site_db)}.html"} <= set(listed)
    build_report(site_db["db"], out, audio="copy")
    assert f"audio/{_cid(site_db)}.wav" in json.loads((out / MANIFEST).read_text())["files"]
    # ... but a file changed by someone since is theirs again
    (out / "calls.html").write_text("edited by hand\n")
    with pytest.raises(CallQAError, match="--force"):
        build_report(site_db["db"], out, audio="copy")
    assert (out / "calls.html").read_text() == "edited by hand\n"
    r = CliRunner().invoke(app, ["report", "--db", str(site_db["db"]), "--out", str(out), "--force"])
    assert r.exit_code == 0, r.output
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.part"))


def test_export_never_writes_through_a_link(site_db, tmp_path, victim):
    out = tmp_path / "out" / "queue.csv"
    out.parent.mkdir()
    (out.parent / "queue.csv.part").symlink_to(victim)
    r = export(site_db["db"], "flagged_queue", "csv", out)
    assert r.rows == 2 and out.is_file() and not out.is_symlink()
    assert victim.read_text() == VICTIM_TEXT
    linked = tmp_path / "out" / "calls.parquet"
    linked.symlink_to(victim)
    for force in (False, True):
        with pytest.raises(CallQAError, match="symbolic link"):
            export(site_db["db"], "calls", "parquet", linked, force=force)
    assert victim.read_text() == VICTIM_TEXT and linked.is_symlink()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".callqa-export")]


def test_export_overwrites_only_its_own_files_without_force(site_db, tmp_path):
    out = tmp_path / "agents.csv"
    out.write_text("precious spreadsheet\n")
    with pytest.raises(CallQAError, match="--force"):
        export(site_db["db"], "agent_daily", "csv", out)
    assert out.read_text() == "precious spreadsheet\n"
    args = ["export", "agent_daily", "--db", str(site_db["db"]), "--format", "csv", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0 and "--force" in r.output
    r = CliRunner().invoke(app, [*args, "--force"])
    assert r.exit_code == 0 and "precious" not in out.read_text(), r.output
    assert export(site_db["db"], "agent_daily", "csv", out).rows == 4  # its own file: no --force needed
    out.write_text("edited\n")
    with pytest.raises(CallQAError, match="--force"):
        export(site_db["db"], "agent_daily", "csv", out)


@pytest.fixture
def audio_db(tmp_path):
    """A run over `recordings/` with redaction.audio_dir `redacted/`, and calls whose audio paths try to
    reach outside them: a metadata path to a private file, and a recording that is a link to one."""
    rec, red, private = tmp_path / "recordings", tmp_path / "redacted", tmp_path / "private"
    for d in (rec, red, private):
        d.mkdir()
    secret = private / "secret.wav"
    qa_data.write_wav(secret, 2.0, 1, hz=1234)
    calls = qa_data.all_calls(rec)
    good, leaky_meta, linked, redacted_ok = calls
    for c in calls:
        qa_data.write_wav(Path(c.source.path), 2.0, c.channels)
    leaky_meta = replace(
        leaky_meta,
        source=replace(leaky_meta.source, metadata={**leaky_meta.source.metadata, "redacted_audio": str(secret)}),
    )
    Path(linked.source.path).unlink()
    Path(linked.source.path).symlink_to(secret)
    copy = red / "zh.redacted.wav"
    qa_data.write_wav(copy, 2.0, 1, hz=500)
    redacted_ok = replace(
        redacted_ok,
        source=replace(redacted_ok.source, metadata={**redacted_ok.source.metadata, "redacted_audio": str(copy)}),
    )
    db = tmp_path / "qa.duckdb"
    con = store.connect(db)
    try:
        run = store.start_run(con, "nightly_batch", str(rec), {"redaction": {"audio_dir": str(red)}}, "test")
        for c in (good, leaky_meta, linked, redacted_ok):
            assert store.write_call(con, c, run, "test")
    finally:
        con.close()
    ids = {k: c.source.call_id for k, c in zip(("good", "leaky", "linked", "redacted"), calls)}
    return {"db": db, "ids": ids, "secret": secret, "copy": copy}


def _player(out: Path, cid: str) -> str | None:
    html = (out / "calls" / f"{cid}.html").read_text(encoding="utf-8")
    m = re.search(r'<audio id="player"[^>]*src="([^"]+)"', html)
    return m.group(1) if m else None


def test_report_publishes_audio_only_from_the_runs_folders(audio_db, tmp_path):
    """A metadata `redacted_audio` outside redaction.audio_dir, or a recording linked outside the run's
    folder, is neither copied nor linked; the page says why. Audio inside them still plays."""
    ids, secret = audio_db["ids"], audio_db["secret"].read_bytes()
    out = tmp_path / "copy"
    build_report(audio_db["db"], out, audio="copy")
    copied = {p.name: p.read_bytes() for p in (out / "audio").iterdir()}
    assert set(copied) == {f"{ids['good']}.wav", f"{ids['redacted']}.wav"}
    assert secret not in copied.values() and copied[f"{ids['redacted']}.wav"] == audio_db["copy"].read_bytes()
    for k in ("leaky", "linked"):
        assert _player(out, ids[k]) is None
        assert "outside the recording and redacted-audio folders" in (out / "calls" / f"{ids[k]}.html").read_text()
    out = tmp_path / "link"
    build_report(audio_db["db"], out, audio="link")
    for k in ("leaky", "linked"):
        assert _player(out, ids[k]) is None
    assert (out / "calls" / _player(out, ids["redacted"])).resolve() == audio_db["copy"].resolve()
    assert (out / "calls" / _player(out, ids["good"])).resolve().parent == (tmp_path / "recordings").resolve()
    assert not any(os.path.samefile(p, audio_db["secret"]) for p in out.rglob("*") if p.is_file())
