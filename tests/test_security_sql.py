"""The analyst SQL sandbox (issue 15, point 1): each test tries an attack that worked on 220a32b.

`callqa sql`, `callqa export` and the report read the database through `connect_analyst`: attached
read-only, external access off, no extension install or load, configuration locked. The statement
check on top refuses anything but a query, including EXPLAIN ANALYZE of a write.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import qa_data
from callqa.cli import app
from callqa.pipeline import store
from callqa.workspace.export import ExportError, export
from callqa.workspace.report import ReportError, build_report
from callqa.workspace.sandbox import ReadOnlyViolation, connect_analyst, query_read_only

ROOT = Path(__file__).resolve().parents[1]
SECRET = "s3cret-line-nobody-may-read"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    db = tmp / "qa.duckdb"
    qa_data.build_db(db)
    con = store.connect(db)
    try:  # a run row, so the README's batch-health queries have something to read
        store.start_run(con, "nightly_batch", str(tmp), {"batch": {"workers": 1}}, "test")
    finally:
        con.close()
    files = tmp / "files"
    files.mkdir()
    (files / "secret.txt").write_text(SECRET + "\n")
    (files / "secret.csv").write_text(f"a,b\n1,{SECRET}\n")
    (files / "secret.json").write_text(f'{{"a": "{SECRET}"}}\n')
    duckdb.sql(f"COPY (SELECT '{SECRET}' AS a) TO '{files / 'secret.parquet'}' (FORMAT parquet)")
    victim = tmp / "victim.duckdb"
    with duckdb.connect(str(victim)) as v:
        v.execute("CREATE TABLE precious AS SELECT 42 AS answer")
    return {"tmp": tmp, "db": db, "files": files, "victim": victim}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_refusal(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "refused" in msg and "\n" not in msg and SECRET not in msg, msg
    return msg


FILE_READS = [
    "SELECT * FROM read_text('{f}/secret.txt')",
    "SELECT * FROM read_csv('{f}/secret.csv')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('{f}/secret.csv', header = true)",
    "SELECT * FROM read_blob('{f}/secret.txt')",
    "SELECT * FROM glob('{f}/*')",
    "SELECT * FROM sniff_csv('{f}/secret.csv')",
    "SELECT * FROM read_json_auto('{f}/secret.json')",
    "SELECT * FROM read_parquet('{f}/secret.parquet')",
    "SELECT * FROM parquet_metadata('{f}/secret.parquet')",
    "WITH x AS (SELECT content FROM read_text('{f}/secret.txt')) SELECT * FROM x",
    "SELECT (SELECT content FROM read_text('{f}/secret.txt')) AS c FROM calls",
    "EXPLAIN ANALYZE SELECT * FROM read_text('{f}/secret.txt')",
    "SELECT * FROM query('SELECT * FROM read_text(''{f}/secret.txt'')')",
]


@pytest.mark.parametrize("sql", FILE_READS)
def test_sql_cannot_read_files(env, sql):
    """read_text/read_csv/read_blob/glob/sniff_csv/read_json/read_parquet, however nested, are refused."""
    with pytest.raises(ReadOnlyViolation) as e:
        query_read_only(env["db"], sql.format(f=env["files"]))
    _one_line_refusal(e)


def test_replacement_scan_of_a_file_path_reads_nothing(env):
    """`FROM '<file>'` (a replacement scan) is not a table in the sandbox: no content comes back."""
    with pytest.raises(store.StoreError) as e:
        query_read_only(env["db"], f"SELECT * FROM '{env['files'] / 'secret.csv'}'")
    assert SECRET not in str(e.value)


def test_url_read_neither_installs_nor_loads_an_extension(env):
    """read_csv('https://...') is refused by the engine before httpfs is fetched or loaded."""
    ext_dir = Path.home() / ".duckdb" / "extensions"
    before = sorted(p.as_posix() for p in ext_dir.rglob("*")) if ext_dir.exists() else []
    for sql in (
        "SELECT * FROM read_csv('https://example.invalid/calls.csv')",
        "SELECT * FROM read_parquet('s3://bucket/calls.parquet')",
        "SELECT * FROM 'https://example.invalid/calls.csv'",
    ):
        with pytest.raises(store.StoreError) as e:
            query_read_only(env["db"], sql)
        assert "download" not in str(e.value).lower() and "install" not in str(e.value).lower(), sql
    with pytest.raises(ReadOnlyViolation):
        query_read_only(env["db"], "SELECT * FROM read_csv('https://example.invalid/calls.csv')")
    after = sorted(p.as_posix() for p in ext_dir.rglob("*")) if ext_dir.exists() else []
    assert after == before


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
        "explain /* a comment */ analyze\n copy (select 1) to '{out}' (format csv)",
        "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO '{out}'",
        "EXPLAIN ANALYZE (FORMAT json) COPY (SELECT * FROM calls) TO '{out}'",
        "EXPLAIN COPY (SELECT 1) TO '{out}'",
        "EXPLAIN ANALYZE INSERT INTO reviews SELECT * FROM reviews",
        "EXPLAIN ANALYZE DELETE FROM calls",
        "SELECT 1; EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
    ],
)
def test_explain_of_anything_but_a_query_is_refused(env, sql, tmp_path):
    """EXPLAIN [ANALYZE] runs its statement: only EXPLAIN of a query passes the check."""
    out = tmp_path / "x.csv"
    before = _digest(env["db"])
    with pytest.raises(ReadOnlyViolation) as e:
        query_read_only(env["db"], sql.format(out=out))
    assert "EXPLAIN" in _one_line_refusal(e)
    assert not out.exists() and _digest(env["db"]) == before


def test_copy_cannot_destroy_another_duckdb_file(env):
    """Neither the statement check nor the engine lets a COPY or ATTACH touch another database file."""
    victim = env["victim"]
    before = _digest(victim)
    for sql in (
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{victim}'",
        f"EXPLAIN ANALYZE COPY (SELECT * FROM calls) TO '{victim}' (FORMAT parquet)",
        f"COPY (SELECT 1) TO '{victim}'",
        f"ATTACH '{victim}' AS v",
    ):
        with pytest.raises(ReadOnlyViolation):
            query_read_only(env["db"], sql)
    # and the engine alone, as a future caller that skipped the statement check would reach it
    con = connect_analyst(env["db"])
    try:
        for sql in (
            f"COPY (SELECT 1) TO '{victim}'",
            f"COPY (SELECT 1) TO '{victim}' (FORMAT parquet)",
            f"ATTACH '{victim}' AS v",
            f"EXPORT DATABASE '{victim.parent / 'dump'}'",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    finally:
        con.close()
    assert _digest(victim) == before and not (victim.parent / "dump").exists()
    with duckdb.connect(str(victim), read_only=True) as v:
        assert v.execute("SELECT answer FROM precious").fetchall() == [(42,)]


def test_engine_sandbox_holds_without_the_statement_check(env):
    """On the analyst connection itself: no file, no URL, no extension, and no SET can undo that."""
    con = connect_analyst(env["db"])
    try:
        for sql in (
            f"SELECT * FROM read_text('{env['files'] / 'secret.txt'}')",
            f"SELECT * FROM glob('{env['files']}/*')",
            "SELECT * FROM read_csv('https://example.invalid/x.csv')",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "RESET enable_external_access",
            "SET lock_configuration = false",
            "SET allowed_directories = ['/']",
            "SET autoload_known_extensions = true",
            "INSERT INTO calls SELECT * FROM calls",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
        settings = dict(
            con.execute(
                """SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',
                   'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration')"""
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "lock_configuration": "true",
        }
        assert con.execute("SELECT count(*) FROM call_summary").fetchone()[0] == 4
    finally:
        con.close()
    # two sandboxes on one file at once, and a plain reader after them: each is its own instance
    a, b = connect_analyst(env["db"]), connect_analyst(env["db"])
    assert a.execute("SELECT count(*) FROM calls").fetchone() == b.execute("SELECT count(*) FROM calls").fetchone()
    a.close()
    b.close()
    store.connect(env["db"], read_only=True).close()


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT * FROM flagged_queue",
        "EXPLAIN ANALYZE SELECT count(*) FROM call_summary",
        "EXPLAIN (FORMAT json) SELECT 1",
        "EXPLAIN ANALYZE (SELECT 1)",
        "DESCRIBE calls",
        "SHOW TABLES",
        "SUMMARIZE call_metrics",
        "FROM calls LIMIT 1",
        "VALUES (1, 'a')",
        "SELECT current_setting('enable_external_access') AS v",
        "SELECT * FROM flagged_page(5)",
    ],
)
def test_queries_and_explain_of_queries_still_run(env, sql):
    assert query_read_only(env["db"], sql).columns


def _readme_queries() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    parser = duckdb.connect()
    out = [st.query.strip() for b in blocks for st in parser.extract_statements(b)]
    parser.close()
    return out


def _documented_views() -> set[str]:
    views = set()
    for f in (ROOT / "config" / "migrations").glob("*.sql"):
        views |= set(re.findall(r"CREATE OR REPLACE VIEW\s+(\w+)", f.read_text(encoding="utf-8"), flags=re.I))
    return views


def test_every_view_and_readme_query_runs_in_the_sandbox(env):
    queries = _readme_queries()
    views = _documented_views()
    assert len(queries) >= 12 and {"flagged_queue", "call_summary", "agent_daily", "review_agreement"} <= views
    for sql in queries:
        query_read_only(env["db"], sql)
    con = connect_analyst(env["db"])
    try:
        listed = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert views <= listed
        for v in sorted(listed):
            con.execute(f'SELECT * FROM "{v}" LIMIT 5').fetchall()
    finally:
        con.close()


def test_cli_refuses_file_reads_and_explain_analyze_copy_in_one_line(env, tmp_path):
    runner = CliRunner()
    hostname = "/etc/hostname"
    r = runner.invoke(app, ["sql", "--db", str(env["db"]), f"SELECT * FROM read_text('{hostname}')"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1 and "refused" in r.output, r.output
    if Path(hostname).is_file():
        assert Path(hostname).read_text().strip() not in r.output
    out = tmp_path / "x.csv"
    r = runner.invoke(app, ["sql", "--db", str(env["db"]), f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'"])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1 and "refused" in r.output, r.output
    assert not out.exists()
    r = runner.invoke(app, ["sql", "--db", str(env["db"]), "SELECT count(*) AS n FROM calls", "--format", "csv"])
    assert r.exit_code == 0 and r.output.split() == ["n", "4"], r.output


def test_export_and_report_run_the_databases_own_views_in_the_sandbox(env, tmp_path):
    """A view planted in the database file that reads a file is SQL too: export and report refuse it."""
    db = tmp_path / "planted.duckdb"
    db.write_bytes(env["db"].read_bytes())
    secret = env["files"] / "secret.txt"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE VIEW leak AS SELECT content FROM read_text('{secret}')")
    con.execute(
        f"""CREATE OR REPLACE VIEW flagged_reasons AS
            SELECT q.call_id, q.file_name, q.agent_id, q.queue, q.day, q.scorecard_id, q.scorecard_version, r.reason,
                   (SELECT content FROM read_text('{secret}')) AS label
            FROM flagged_queue q, unnest(q.flag_reasons) AS r(reason)"""
    )
    con.close()
    with pytest.raises(ExportError, match="Permission"):
        export(db, "leak", "csv", tmp_path / "out" / "leak.csv")
    with pytest.raises(ReportError, match="refused"):
        build_report(db, tmp_path / "site", audio="none")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != db]
    assert all(SECRET not in p.read_text(errors="replace") for p in written)
