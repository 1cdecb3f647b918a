"""The queue's filters (callqa.workspace.queue and GET /queue): date, agent, queue, reason, grade, reviewed or
not, assigned to me, each checked against the same question asked of the stored rows directly, on a few
hundred generated calls (callqa.rowgen) scored with the bundled scorecard."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callqa import rowgen
from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.pipeline.rescoring import load_contexts, rescore_contexts
from callqa.pipeline.scoring import load_scorecard
from callqa.pipeline.store import StoreError
from callqa.workspace import assignment
from callqa.workspace.qa import add_review
from callqa.workspace.queue import QueueFilter, flagged_count, flagged_page, flagged_page_counted
from callqa.workspace.web.app import create_app
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.users import add_user
from callqa.workspace.workflow import Actor

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def queue_db(tmp_path_factory):
    """(db, reviewed call ids, ids assigned to ana): 300 calls, 8 reviewed, 6 assigned to ana, 5 to bo."""
    db = tmp_path_factory.mktemp("queue") / "qa.duckdb"
    card = load_scorecard("inbound_service_en")
    with store.open_db(db) as con:
        rowgen.load_into(con, rowgen.generate(300, seed=3))
        store.register_scorecard(con, card, None)
        store.replace_scores(con, card.id, card.version, rescore_contexts(card, load_contexts(con), True))
        flagged = [r[0] for r in con.execute("SELECT call_id FROM flagged_queue ORDER BY call_id").fetchall()]
        reviewed = flagged[:8]
        for cid in reviewed:
            add_review(con, cid, "greeting", "pass", "ana", None, card.id)
        refs = {
            r[0]: assignment.CallRef(r[0], r[1]) for r in con.execute("SELECT call_id, queue FROM calls").fetchall()
        }
        boss = Actor("boss", "admin", None)
        assignment.assign(con, [refs[c] for c in flagged[5:11]], ["ana"], boss, "test")
        assignment.assign(con, [refs[c] for c in flagged[11:16]], ["bo"], boss, "test")
    return db, set(reviewed), set(flagged[5:11])


def ids(db: Path, f: QueueFilter) -> set[str]:
    """The filtered queue read page by page (20 a page), checked against its count."""
    got: list[str] = []
    with store.open_db(db, read_only=True) as con:
        total = flagged_count(con, f)
        offset = 0
        while True:
            page = flagged_page(con, QueueFilter(**{**f.__dict__, "limit": 20, "offset": offset}))
            if not page.rows:
                break
            got += [r[page.columns.index("call_id")] for r in page.rows]
            offset += 20
    assert len(got) == len(set(got)) == total  # no call on two pages, none left out
    return set(got)


def where(db: Path, sql: str, params: list | None = None) -> set[str]:
    with store.open_db(db, read_only=True) as con:
        return {r[0] for r in con.execute(f"SELECT call_id FROM flagged_queue q WHERE {sql}", params or []).fetchall()}


def test_every_filter_selects_what_the_rows_say(queue_db):
    db, reviewed, mine = queue_db
    with store.open_db(db, read_only=True) as con:
        a1, a2 = (
            r[0]
            for r in con.execute(
                "SELECT agent_id FROM flagged_queue GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
            ).fetchall()
        )
    everything = where(db, "true")
    assert 50 < len(everything) < 300 and ids(db, QueueFilter()) == everything
    cases = [
        (QueueFilter(since=date(2026, 11, 1)), "coalesce(started_at, processed_at)::DATE >= DATE '2026-11-01'"),
        (QueueFilter(until=date(2026, 10, 15)), "coalesce(started_at, processed_at)::DATE <= DATE '2026-10-15'"),
        (QueueFilter(agents=(a1, a2)), f"agent_id IN ('{a1}', '{a2}')"),
        (QueueFilter(queues=("billing",)), "queue = 'billing'"),
        (QueueFilter(grades=("fair",)), "grade = 'fair'"),
        (QueueFilter(reasons=("AUTO-FAIL",)), "len(list_filter(flag_reasons, lambda x: x ILIKE '%auto-fail%')) > 0"),
    ]
    for f, sql in cases:
        expected = where(db, sql)
        assert 0 < len(expected) < len(everything), sql  # each case really narrows the queue
        assert ids(db, f) == expected, sql
    assert ids(db, QueueFilter(reviewed=True)) == reviewed
    assert ids(db, QueueFilter(reviewed=False)) == ids(db, QueueFilter(unreviewed=True)) == everything - reviewed
    assert ids(db, QueueFilter(assigned_to="ana")) == mine
    assert ids(db, QueueFilter(assigned_to="ana", reviewed=True)) == mine & reviewed != set()
    assert ids(db, QueueFilter(assigned_to="nobody")) == set()
    # values are bound, never spliced into the statement
    assert ids(db, QueueFilter(agents=("x' OR '1'='1",), assigned_to="' OR true --")) == set()
    with pytest.raises(StoreError, match="not both"):
        QueueFilter(unreviewed=True, reviewed=True).validate()


def _login(client: TestClient, user: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200 and 'id="whoami"' in r.text


def _listed(client: TestClient, query: str) -> set[str]:
    page = client.get(f"/queue?{query}")
    assert page.status_code == 200, page.text[:500]
    return set(re.findall(r'href="/calls/([0-9a-f]+)"', page.text))


def test_the_queue_page_applies_reviewed_and_assigned_to_me(queue_db, tmp_path, monkeypatch):
    db, reviewed, mine = queue_db
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CALLQA_WEB_SECRET", raising=False)
    with store.open_db(db) as con:
        if not con.execute("SELECT 1 FROM users WHERE username = 'ana'").fetchone():
            for name, role, agent in (("ana", "reviewer", None), ("a1", "agent", "A007")):
                add_user(con, name, role, Passwords(load_secret()).hash(PASSWORD), actor="test", agent_id=agent)
    client = TestClient(create_app(load_settings(), db))
    _login(client, "ana")
    page = client.get("/queue").text
    assert 'id="f-reviewed"' in page and 'id="f-assigned"' in page
    assert _listed(client, "reviewed=true") == reviewed
    assert _listed(client, "assigned=true") == mine
    assert _listed(client, "assigned=true&reviewed=false") == mine - reviewed
    assert 'value="true" selected' in client.get("/queue?reviewed=true").text  # the form keeps the choice
    assert client.get("/queue?reviewed=maybe").status_code == 400
    _login(client, "a1")  # an agent: their own calls; "assigned to me" is not theirs to use
    agent_page = client.get("/queue?assigned=true").text
    assert 'id="f-assigned"' not in agent_page
    own = where(db, "agent_id = 'A007'")
    assert own and _listed(client, "assigned=true") == own


def test_page_and_count_in_one_query_match_the_two_queries(queue_db):
    """flagged_page_counted (the web queue: one evaluation of the filtered queue) gives flagged_page's rows,
    in its order, and flagged_count's total, on every page, past the end and for no match at all."""
    db, _, _ = queue_db
    with store.open_db(db, read_only=True) as con:
        day = con.execute("SELECT min(day) + 3 FROM flagged_queue").fetchone()[0]
        agent = con.execute("SELECT agent_id FROM flagged_queue GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[
            0
        ]
        filters = [
            QueueFilter(),
            QueueFilter(reasons=("auto",)),
            QueueFilter(since=day, sort="newest"),
            QueueFilter(reasons=("auto",), sort="score"),
            QueueFilter(agents=(agent,), unreviewed=True),
            QueueFilter(reviewed=True),
            QueueFilter(agents=("no such agent",)),
            QueueFilter(assigned_to="ana"),
        ]
        checked = 0
        for f in filters:
            total = flagged_count(con, f)
            for offset in (0, 7, max(0, total - 3), total + 10):
                g = QueueFilter(**{**f.__dict__, "limit": 7, "offset": offset})
                page, n = flagged_page_counted(con, g)
                want = flagged_page(con, g)
                assert n == total and page.columns == want.columns and page.rows == want.rows, (f, offset)
                checked += len(page.rows)
        assert checked > 30
