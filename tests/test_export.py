"""`callqa export`: any table or view to Parquet or CSV, read-only, with the rows it wrote."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

import qa_data
from callqa.cli import app
from callqa.workspace.export import ExportError, export, relations


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "qa.duckdb"
    qa_data.build_db(path)
    return path


def test_every_table_and_view_exports_to_parquet_with_all_rows(db, tmp_path):
    con = duckdb.connect(str(db), read_only=True)
    names = relations(con)
    expected = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    con.close()
    assert {
        "flagged_queue",
        "call_summary",
        "agent_daily",
        "criterion_pass_rates",
        "hold_stats",
        "review_agreement",
    } <= {n for n, k in names.items() if k == "view"}
    for name in names:
        r = export(db, name, "parquet", tmp_path)
        assert r.path == tmp_path / f"{name}.parquet" and r.rows == expected[name], name
        back = duckdb.sql(f"SELECT count(*) FROM read_parquet('{r.path}')").fetchall()[0][0]
        assert back == expected[name], name


def test_parquet_keeps_types_and_csv_writes_lists_as_json(db, tmp_path):
    p = export(db, "flagged_queue", "parquet", tmp_path / "q.parquet")
    rows = duckdb.sql(f"SELECT file_name, flag_reasons, day FROM read_parquet('{p.path}')").fetchall()
    assert (
        rows[0][0] == "rude.wav"
        and rows[0][1][0] == "auto-fail: no_forbidden_language"
        and rows[0][2] == date(2026, 11, 22)
    )
    c = export(db, "flagged_queue", "csv", tmp_path / "q.csv")
    with open(c.path, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert c.rows == len(got) == 2
    assert json.loads(got[0]["flag_reasons"])[0] == "auto-fail: no_forbidden_language"
    # Mandarin text survives the round trip
    u = export(db, "utterances", "csv", tmp_path / "u.csv")
    assert "星河银行" in u.path.read_text(encoding="utf-8")


def test_day_filter_and_errors(db, tmp_path):
    r = export(
        db, "call_summary", "parquet", tmp_path / "cs.parquet", since=date(2026, 11, 21), until=date(2026, 11, 21)
    )
    assert r.rows == 2
    with pytest.raises(ExportError, match="no `day` column"):
        export(db, "utterances", "csv", tmp_path / "x.csv", since=date(2026, 1, 1))
    with pytest.raises(ExportError, match="no table or view named 'nope'.*flagged_queue"):
        export(db, "nope", "csv", tmp_path / "x.csv")
    with pytest.raises(ExportError, match="unknown format"):
        export(db, "calls", "xlsx", tmp_path / "x.xlsx")
    assert not list(tmp_path.glob("*.part"))


def test_export_does_not_write_the_database_and_cli_works(db, tmp_path):
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    r = CliRunner().invoke(
        app, ["export", "agent_daily", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "a.csv")]
    )
    assert r.exit_code == 0, r.output
    assert "4 rows of agent_daily" in r.output and (tmp_path / "a.csv").is_file()
    r = CliRunner().invoke(app, ["export", "calls; DROP TABLE calls", "--db", str(db)])
    assert r.exit_code != 0 and "no table or view" in r.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
