"""Migrations 0011 and 0012 redefine agent_daily_kpis, hold_stats and call_summary for speed (0012: over the
call_facts table): same columns, same rows as the definitions of 0007."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from callqa import rowgen
from callqa.pipeline import store

VIEWS = ("agent_daily_kpis", "hold_stats", "call_summary", "flagged_queue")


def _old_definition(view: str) -> str:
    sql = files("callqa.config").joinpath("migrations", "0007_scorability.sql").read_text(encoding="utf-8")
    m = re.search(rf"CREATE OR REPLACE VIEW {view} AS\n.*?;\n", sql, re.S)
    assert m, view
    return m.group(0).replace(f"VIEW {view} AS", f"VIEW old_{view} AS")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = store.connect(tmp_path_factory.mktemp("views") / "v.duckdb")
    rowgen.load_into(c, rowgen.generate(400, seed=3))
    # some calls that the views leave out or treat apart, and a call with no metrics at all
    c.execute("UPDATE calls SET scorable_status = 'unscorable' WHERE call_id LIKE '000000_1%'")
    c.execute("UPDATE calls SET scorable_status = 'partial' WHERE call_id LIKE '000000_2%'")
    c.execute("UPDATE calls SET agent_id = NULL, started_at = NULL WHERE call_id LIKE '000000_3%'")
    c.execute("DELETE FROM call_metrics WHERE call_id LIKE '000000_4%'")
    # hold spans and announcements that only the events say something about (rowgen draws none)
    c.execute("""INSERT INTO events (event_id, call_id, type, start_s, end_s, evidence, detector_version, data)
                 SELECT substr(sha256(call_id || t), 1, 16), call_id, t, 30, 30 + hash(call_id) % 90, 'bench', 't',
                        '{"announced": ' || (hash(call_id, 'a') % 2 = 0) || ', "thanked": true}'
                 FROM calls, (VALUES ('hold'), ('hold_announced'), ('hold_thanked'), ('hold_unannounced')) v(t)
                 WHERE hash(call_id, t) % 3 = 0""")
    c.execute("DELETE FROM call_metrics WHERE name = 'hold_total_s' AND call_id LIKE '0000015%'")
    c.execute("DELETE FROM utterances WHERE call_id LIKE '000000_6%'")
    # edited outside the writer: the calls' call_facts rows are recomputed, as store.refresh_call_facts says
    store.refresh_call_facts(c, [r[0] for r in c.execute("SELECT call_id FROM calls").fetchall()])
    # flagged calls (rowgen stores no scores), some with no started_at: the queue's day is processed_at's there
    c.execute("""INSERT INTO call_scores
                 SELECT call_id, 'sc', 1, hash(call_id) % 60, 60, (hash(call_id) % 60) / 0.6, 'fair',
                        hash(call_id) % 7 = 0, hash(call_id) % 2 = 0, ['auto-fail'], processed_at FROM calls""")
    c.execute("""UPDATE calls SET started_at = NULL WHERE call_id IN (
                     SELECT call_id FROM call_scores WHERE flagged ORDER BY call_id LIMIT 5)""")
    for v in VIEWS:
        c.execute(_old_definition(v))
    yield c
    c.close()


@pytest.mark.parametrize("view", VIEWS)
def test_same_columns_and_rows(con, view):
    new = con.execute(f"SELECT * FROM {view} LIMIT 0").description
    old = con.execute(f"SELECT * FROM old_{view} LIMIT 0").description
    assert [d[0] for d in new] == [d[0] for d in old]
    n = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
    assert n == con.execute(f"SELECT count(*) FROM old_{view}").fetchone()[0] and n > 100
    for a, b in ((view, f"old_{view}"), (f"old_{view}", view)):
        # rounded: sums over a different join order may differ in the last bit
        cols = ", ".join(
            f"round({d[0]}, 9)" if d[1] in ("DOUBLE", "FLOAT") else d[0]
            for d in con.execute(f"SELECT * FROM {view} LIMIT 0").description
        )
        diff = con.execute(f"SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}").fetchall()
        assert diff == [], (a, b, diff[:3])


def test_partial_unscorable_and_metricless_calls_are_covered(con):
    assert con.execute("SELECT count(*) FROM hold_stats WHERE call_id LIKE '000000_4%'").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM hold_stats WHERE call_id LIKE '000000_1%'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM agent_daily_kpis WHERE agent_id = '(unknown)'").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM hold_stats WHERE holds_announced > 0").fetchone()[0] > 10
    assert con.execute("SELECT count(*) FROM call_summary WHERE n_utterances = 0").fetchone()[0] > 0


def _same(con, sql_new: str, sql_old: str) -> int:
    a = con.execute(sql_new).fetchall()
    b = con.execute(sql_old).fetchall()
    key = lambda r: tuple((x is None, str(x)) for x in r)  # noqa: E731 - NULLs sort apart
    assert sorted(a, key=key) == sorted(b, key=key)
    return len(a)


@pytest.mark.parametrize("view", ("hold_stats", "call_summary", "flagged_queue"))
def test_a_day_filter_gives_the_old_rows_with_and_without_started_at(con, view):
    """calls_dated (0012) splits the calls by whether started_at is set so the day filter reaches the scan:
    a filtered query, where that split is planned, gives the old rows on every day, processed_at's days too."""
    days = [r[0] for r in con.execute("SELECT DISTINCT day FROM call_summary ORDER BY day").fetchall()]
    null_days = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT day FROM old_{view} WHERE started_at IS NULL"
            if view != "hold_stats"
            else "SELECT DISTINCT CAST(processed_at AS DATE) FROM calls WHERE started_at IS NULL"
        ).fetchall()
    }
    assert null_days and len(days) > 3
    cols = "call_id, day" if view == "hold_stats" else "*"
    for day in [*days[:2], *sorted(null_days)]:
        n = _same(
            con,
            f"SELECT {cols} FROM {view} WHERE day = ?".replace("?", f"DATE '{day}'"),
            f"SELECT {cols} FROM old_{view} WHERE day = DATE '{day}'",
        )
        assert n > 0
    since = days[len(days) // 2]
    assert (
        _same(
            con,
            f"SELECT {cols} FROM {view} WHERE day >= DATE '{since}'",
            f"SELECT {cols} FROM old_{view} WHERE day >= DATE '{since}'",
        )
        > 0
    )


def test_agent_daily_kpis_over_a_period_matches_the_old_view(con):
    since = con.execute("SELECT min(day) + 3 FROM old_agent_daily_kpis").fetchone()[0]
    q = "SELECT day, agent_id, calls, round(avg_hold_s, 9), round(hold_total_s, 9) FROM {} WHERE day >= DATE '{}'"
    assert _same(con, q.format("agent_daily_kpis", since), q.format("old_agent_daily_kpis", since)) > 10


def _old_macro(migration: str, name: str) -> str:
    sql = files("callqa.config").joinpath("migrations", migration).read_text(encoding="utf-8")
    m = re.search(rf"CREATE OR REPLACE MACRO {name}\(.*?;\n", sql, re.S)
    assert m, name
    return m.group(0).replace(f"MACRO {name}(", f"MACRO old_{name}(")


# kpi_call_effort's dead air as 0013 first read it, from call_metrics (0013 now reads call_facts)
OLD_DEAD_AIR = """WITH d AS (
    SELECT k.call_id, max(m.value) AS dead_air_s
    FROM kpi_calls(since, until) k
    JOIN call_metrics m ON m.call_id = k.call_id AND m.name = 'dead_air_total_s'
    WHERE k.scorable_status IS DISTINCT FROM 'partial'
    GROUP BY k.call_id
),"""


def _period(con) -> tuple[str, str]:
    lo, hi = con.execute("SELECT min(day), max(day) FROM old_call_summary").fetchone()
    return f"DATE '{lo + (hi - lo) / 3}'", f"DATE '{hi}'"


@pytest.mark.parametrize(("grain", "period"), [("agent", "day"), ("team", "week"), ("centre", "month")])
def test_kpi_calls_gives_the_old_rows(con, grain, period):
    """0012's kpi_calls (the period filter split by whether started_at is set) against 0011's."""
    con.execute(_old_macro("0011_kpis.sql", "kpi_calls"))
    since, until = _period(con)
    args = f"{since}, {until}, grain := '{grain}', period := '{period}'"
    n = _same(con, f"SELECT * FROM kpi_calls({args})", f"SELECT * FROM old_kpi_calls({args})")
    assert n > 50
    # the calls without started_at fall in the period by processed_at, in both
    assert (
        con.execute(
            f"SELECT count(*) FROM kpi_calls({args}) k JOIN calls c USING (call_id) WHERE c.started_at IS NULL"
        ).fetchone()[0]
        > 0
    )


def test_kpi_call_effort_reads_dead_air_from_call_facts_with_the_old_results(con):
    sql = _old_macro("0013_customer_repeat_effort.sql", "kpi_call_effort")
    head, rest = sql.split("WITH d AS (", 1)
    sql = head + OLD_DEAD_AIR + rest.split("\n),", 1)[1]
    con.execute(sql)
    since, until = _period(con)
    cols = (
        "call_id, period_start, group_key, repeat_mentions, transfers, long_holds, round(dead_air_s, 9), effort_score"
    )
    n = _same(
        con,
        f"SELECT {cols} FROM kpi_call_effort({since}, {until}, long_hold_s := 45)",
        f"SELECT {cols} FROM old_kpi_call_effort({since}, {until}, long_hold_s := 45)",
    )
    assert n > 50
    assert con.execute(f"SELECT count(*) FROM kpi_call_effort({since}, {until}) WHERE dead_air_s > 0").fetchone()[0] > 0
