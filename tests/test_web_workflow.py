"""The workflow, calibration and assignment pages, through FastAPI's TestClient.

The router takes the core app's login and CSRF dependencies as parameters (WorkflowDeps); here they are
a stand-in that reads the user from a cookie and wants the token `tok-<user>`, so these tests check what
the router does with them: every POST is refused without the token, every write names the user, roles
and an agent's own calls are enforced, blind scoring holds on the pages."""

from __future__ import annotations

import duckdb
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from callqa.config.settings import Settings
from callqa.workspace.web.db import Database
from callqa.workspace.web.routes_workflow import WorkflowDeps, make_router
from qa_data import build_db

USERS = {
    "ana": {"username": "ana", "role": "reviewer", "agent_id": None},
    "bo": {"username": "bo", "role": "reviewer", "agent_id": None},
    "sam": {"username": "sam", "role": "agent", "agent_id": "A3"},  # rude.wav is agent A3's
    "kim": {"username": "kim", "role": "agent", "agent_id": "A1"},
    "sue": {"username": "sue", "role": "supervisor", "agent_id": None},
}


def current_user(request: Request) -> dict:
    who = request.cookies.get("who")
    if who not in USERS:
        raise HTTPException(401, "log in")
    return USERS[who]


async def csrf_check(request: Request) -> None:
    token = (await request.form()).get("csrf_token")
    if token != f"tok-{request.cookies.get('who')}":
        raise HTTPException(403, "the form's security token is missing or out of date")


def build_app(path) -> FastAPI:
    """The workflow router on the stand-in login (also served to the browser tests)."""
    app = FastAPI()
    app.state.db = Database(path)
    deps = WorkflowDeps(current_user, csrf_check, lambda r: f"tok-{r.cookies.get('who')}", Settings())
    app.include_router(make_router(deps))
    return app


@pytest.fixture()
def web(tmp_path):
    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    ids = {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}
    app = build_app(path)

    def client(who: str) -> TestClient:
        c = TestClient(app, follow_redirects=False)
        c.cookies.set("who", who)
        return c

    return path, ids, client


def post(c: TestClient, url: str, who: str, **data):
    return c.post(url, data={"csrf_token": f"tok-{who}", **data})


def test_dispute_as_the_agent_and_resolve_as_the_supervisor(web):
    path, ids, client = web
    cid = ids["rude.wav"]
    ana, sam, kim, sue = client("ana"), client("sam"), client("kim"), client("sue")
    page = ana.get(f"/workflow/call/{cid}")
    assert page.status_code == 200 and 'id="wf-start_review"' in page.text and 'id="wf-share"' not in page.text
    assert ana.post(f"/workflow/call/{cid}/start_review", data={}).status_code == 403  # no CSRF token
    assert post(ana, f"/workflow/call/{cid}/start_review", "sam").status_code == 403  # someone else's token
    assert post(ana, f"/workflow/call/{cid}/start_review", "ana").status_code == 303
    assert post(ana, f"/workflow/call/{cid}/share", "ana").status_code == 303
    # the other agent cannot even see the call; the call's agent sees the dispute form
    assert kim.get(f"/workflow/call/{cid}").status_code == 404
    assert post(kim, f"/workflow/call/{cid}/dispute", "kim", comment="mine?").status_code == 404
    mine = sam.get("/workflow/mine")
    assert mine.status_code == 200 and "rude.wav" in mine.text
    page = sam.get(f"/workflow/call/{cid}")
    assert 'id="wf-dispute"' in page.text and 'id="wf-acknowledge"' in page.text
    r = post(sam, f"/workflow/call/{cid}/share", "sam")
    assert r.status_code == 403 and "a agent may not share with the agent" in r.text
    r = post(sam, f"/workflow/call/{cid}/dispute", "sam", comment="<b>the customer</b> swore first")
    assert r.status_code == 303
    assert sam.get("/workflow/disputes").status_code == 403
    disputes = sue.get("/workflow/disputes")
    assert "rude.wav" in disputes.text and "&lt;b&gt;the customer&lt;/b&gt; swore first" in disputes.text
    r = post(sue, f"/workflow/call/{cid}/decide", "sue", decision="changed", changes="greeting=pass", comment="ok")
    assert r.status_code == 303
    page = sue.get(f"/workflow/call/{cid}")
    assert '<span id="wf-state">final</span>' in page.text
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT action, actor, actor_role FROM workflow_transitions ORDER BY seq").fetchall()
        review = con.execute("SELECT reviewer, criterion_id, verdict FROM reviews").fetchall()
    finally:
        con.close()
    assert rows == [
        ("start_review", "ana", "reviewer"),
        ("share", "ana", "reviewer"),
        ("dispute", "sam", "agent"),
        ("decide", "sue", "supervisor"),
    ]
    assert review == [("sue", "greeting", "pass")]


def test_a_calibration_session_on_the_pages_is_blind_until_submitted(web):
    path, ids, client = web
    ana, bo, sue, sam = client("ana"), client("bo"), client("sue"), client("sam")
    calls = f"{ids['rude.wav']}\nmono_plain.wav"
    assert post(ana, "/calibration", "ana", name="x", calls=calls, reviewers="ana\nbo").status_code == 403
    assert sue.post("/calibration", data={"name": "x", "calls": calls, "reviewers": "ana\nbo"}).status_code == 403
    r = post(sue, "/calibration", "sue", name="Dec <greeting>", calls=calls, reviewers="ana\nbo", hide_machine="on")
    assert r.status_code == 303
    url = r.headers["location"]
    sid = url.rsplit("/", 1)[-1]
    assert "Dec &lt;greeting&gt;" in ana.get("/calibration").text
    assert sam.get(url).status_code == 403
    rude = ids["rude.wav"]
    form = ana.get(f"{url}/call/{rude}")
    assert 'id="blind"' in form.text and "<th>machine</th>" not in form.text
    assert post(ana, f"{url}/call/{rude}", "ana", **{"v:greeting": "pass"}).status_code == 400
    for who, c in (("ana", ana), ("bo", bo)):
        for cid in (rude, ids["mono_plain.wav"]):
            r = post(c, f"{url}/call/{cid}", who, **{"v:greeting": "fail", "v:no_forbidden_language": "pass"})
            assert r.status_code == 303, r.text
            if who == "ana" and cid == rude:
                assert "bo:" not in ana.get(f"{url}/call/{rude}").text
                assert "results open once you have submitted every call" in ana.get(f"{url}/results").text
    seen = ana.get(f"{url}/call/{rude}").text
    assert 'id="verdicts"' in seen and "bo: fail" in seen
    res = sue.get(f"/calibration/{sid}/results")
    assert res.status_code == 200
    row = res.text.split('id="crit-greeting"')[1].split("</tr>")[0]
    # both fail both calls; the machine failed both: kappa undefined (one class), agreement 100%
    assert "100%" in row and "undefined (every verdict is &#39;fail&#39;: chance agreement is certain)" in row


def test_assignment_page_splits_a_days_queue_and_fills_assigned_to_me(web):
    path, ids, client = web
    sue, ana = client("sue"), client("ana")
    assert ana.get("/assign").status_code == 403
    assert "assign-form" in sue.get("/assign").text
    r = post(sue, "/assign", "sue", day="2026-11-22", reviewers="ana\nbo", method="round_robin")
    assert r.status_code == 200 and "ana 1" in r.text
    mine = ana.get("/workflow/mine")
    assert "rude.wav" in mine.text and "machine_scored" in mine.text
    r = post(sue, "/assign", "sue", day="22/11/2026", reviewers="ana")
    assert r.status_code == 400 and "give YYYY-MM-DD" in r.text
