"""The web workspace (callqa serve) through its HTTP interface: sessions, roles, CSRF, reviews, escaping.

Each test builds its own app over a small stored database (tests/qa_data.py) with tone recordings, the
web secret and audit key in a temporary XDG config folder, and a clock the test moves.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from callqa.cli import app as cli_app
from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.workspace.web.app import WebOptions, create_app
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.users import add_user
from qa_data import build_db_with_recordings, result, score, utt

PASSWORD = "correct horse battery"
USERS = [("ana", "reviewer", None), ("boss", "admin", None), ("a1", "agent", "A1"), ("an", "analyst", None)]
HOSTILE = '<script>alert("x")</script>'
HOSTILE_NAME = "<svg onload=alert(1)>.wav"  # a file name cannot hold the "/" of </script>


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def hostile_call():
    text = f"hello {HOSTILE} there"
    return result(
        HOSTILE_NAME,
        agent='<img src=x onerror="alert(1)">',
        utterances=[utt(0, "ch0", "agent", 0.5, 3.0, text, 0)],
        events=[],
        metrics={"duration_s": 4.0},
        scores=[score([("greeting", "fail", 10, False, ())], flag_reasons=(f"grade poor {HOSTILE}",))],
        duration=4.0,
    )


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CALLQA_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CALLQA_WEB_SECRET", raising=False)
    db, calls = build_db_with_recordings(tmp_path, max_s=3.0)
    passwords = Passwords(load_secret())
    with store.open_db(db) as con:
        store.write_call(con, hostile_call(), None, "test")
        for name, role, agent in USERS:
            add_user(con, name, role, passwords.hash(PASSWORD), actor="test", agent_id=agent)
    clock = Clock()
    app = create_app(load_settings(), db, WebOptions(session_hours=1, login_failures=3, login_window_s=60), clock)
    return TestClient(app), db, {c.source.path.rsplit("/", 1)[1]: c.source.call_id for c in calls}, clock


def csrf(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, f"no CSRF field on {path}"
    return m.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD):
    token = csrf(client)
    return client.post(
        "/login", data={"username": user, "password": password, "csrf_token": token}, follow_redirects=False
    )


def test_every_page_needs_a_session(web):
    client, _, ids, _ = web
    cid = ids["stereo_hold.wav"]
    for path in ["/", "/queue", f"/calls/{cid}", f"/calls/{cid}/audio", "/dashboard", "/sql", "/admin/users"]:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert client.post(f"/calls/{cid}/review", data={"criterion_id": "greeting"}).status_code in (401, 403)
    assert client.get("/login").status_code == 200


def test_bad_password_refused_then_rate_limited(web):
    client, *_ = web
    for _ in range(3):
        r = login(client, "ana", "wrong password!!")
        assert r.status_code == 401 and "wrong user name or password" in r.text
    r = login(client, "ana")  # the right password, but too many failures from this address
    assert r.status_code == 429 and "too many failed logins" in r.text
    assert client.get("/queue", follow_redirects=False).status_code == 303
    assert login(client, "boss").status_code == 303  # another user is not locked out


def test_rate_limit_window_passes(web):
    client, _, _, clock = web
    for _ in range(3):
        login(client, "ana", "wrong password!!")
    clock.t += 61
    assert login(client, "ana").status_code == 303


def test_session_expires(web):
    client, _, _, clock = web
    assert login(client, "ana").status_code == 303
    assert client.get("/queue").status_code == 200
    clock.t += 3601
    r = client.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_post_without_csrf_refused(web):
    client, db, ids, _ = web
    login(client, "ana")
    cid = ids["stereo_hold.wav"]
    form = {"criterion_id": "greeting", "scorecard_id": "inbound_basic", "action": "agree"}
    assert client.post(f"/calls/{cid}/review", data=form).status_code == 403
    assert client.post(f"/calls/{cid}/review", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.post("/login", data={"username": "ana", "password": PASSWORD}).status_code == 403
    with store.open_db(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


def test_reviewer_cannot_open_admin_pages(web):
    client, *_ = web
    login(client, "ana")
    assert client.get("/admin/users").status_code == 403
    token = csrf(client, "/queue")
    r = client.post("/admin/users", data={"username": "x", "role": "admin", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 403
    assert "Users" not in re.findall(r'<header class="top">.*?</header>', client.get("/queue").text, re.S)[0]


def test_agent_sees_only_own_calls(web):
    client, _, ids, _ = web
    login(client, "a1")
    queue = client.get("/queue?tab=flagged").text
    other = ids["rude.wav"]  # agent A3
    assert other not in queue
    assert client.get(f"/calls/{other}").status_code == 404
    assert client.get(f"/calls/{other}/audio").status_code == 404
    own = ids["stereo_hold.wav"]  # agent A1
    page = client.get(f"/calls/{own}")
    assert page.status_code == 200 and 'class="review-form"' not in page.text
    audio = client.get(f"/calls/{own}/audio")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    token = csrf(client, f"/calls/{own}")
    form = {"criterion_id": "greeting", "scorecard_id": "inbound_basic", "action": "agree", "csrf_token": token}
    assert client.post(f"/calls/{own}/review", data=form).status_code == 403
    assert client.get("/dashboard").status_code == 403


def test_audio_route_serves_ranges_and_only_the_calls_file(web):
    client, _, ids, _ = web
    login(client, "ana")
    cid = ids["stereo_hold.wav"]
    r = client.get(f"/calls/{cid}/audio", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100
    assert client.get(f"/calls/{cid}/audio?path=/etc/passwd").content[:4] == b"RIFF"
    assert client.get("/calls/..%2F..%2Fetc%2Fpasswd/audio").status_code == 404


def test_override_stored_once_by_the_logged_in_user_and_chained(web):
    client, db, ids, _ = web
    login(client, "ana")
    cid = ids["stereo_hold.wav"]
    token = csrf(client, f"/calls/{cid}")
    form = {
        "criterion_id": "greeting",
        "scorecard_id": "inbound_basic",
        "action": "override",
        "verdict": "fail",
        "reason": "greeting was cut off",
        "reviewer": "someone else",  # ignored: the reviewer is the session's user
        "csrf_token": token,
    }
    r = client.post(f"/calls/{cid}/review", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "greeting was cut off" in page.text and "review #1 recorded" in page.text
    assert client.post(f"/calls/{cid}/review", data={**form, "reason": ""}).status_code == 400
    with store.open_db(db, read_only=True) as con:
        rows = con.execute("SELECT reviewer, verdict, auto_result, comment FROM reviews").fetchall()
    assert rows == [("ana", "fail", "pass", "greeting was cut off")]
    res = CliRunner().invoke(cli_app, ["audit", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "intact (1 reviews" in res.output


def test_hostile_strings_are_escaped(web):
    client, *_ = web
    login(client, "ana")
    queue = client.get("/queue").text
    assert HOSTILE not in queue and "&lt;script&gt;" in queue
    assert '<img src=x onerror="alert(1)">' not in queue
    assert "<svg" not in queue and "&lt;svg onload=alert(1)&gt;.wav" in queue
    cid = re.search(r'href="/calls/([0-9a-f]{64})">&lt;svg', queue).group(1)
    page = client.get(f"/calls/{cid}").text
    assert HOSTILE not in page and "<svg" not in page and "<img src=x" not in page
    assert "&lt;svg onload=alert(1)&gt;.wav" in page  # the title
    assert "hello &lt;script&gt;" in page  # the transcript
    assert "grade poor &lt;script&gt;" in page  # the flag reason


def test_sql_page_refuses_writes_and_files(web):
    client, db, *_ = web
    login(client, "an")
    token = csrf(client, "/sql")
    ok = client.post("/sql", data={"query": f"SELECT '{HOSTILE}' AS x, count(*) FROM calls", "csrf_token": token})
    assert ok.status_code == 200 and "&lt;script&gt;" in ok.text and HOSTILE not in ok.text
    for q in ["DELETE FROM reviews", "UPDATE users SET role = 'admin'", "COPY calls TO '/tmp/x.csv'"]:
        r = client.post("/sql", data={"query": q, "csrf_token": token})
        assert r.status_code == 403 and "refused" in r.text, q
    r = client.post("/sql", data={"query": "SELECT * FROM read_text('/etc/passwd')", "csrf_token": token})
    assert r.status_code == 403 and "root:" not in r.text
    login(client, "ana")
    assert client.get("/sql").status_code == 403  # reviewers have no SQL page


def test_admin_adds_and_disables_users(web):
    client, db, *_ = web
    login(client, "boss")
    token = csrf(client, "/admin/users")
    r = client.post(
        "/admin/users",
        data={"username": "zoe", "role": "reviewer", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    zoe = TestClient(client.app)
    assert login(zoe, "zoe").status_code == 303 and zoe.get("/queue").status_code == 200
    client.post("/admin/users/zoe/disable", data={"csrf_token": token})
    assert zoe.get("/queue", follow_redirects=False).status_code == 303  # the open session ended
    assert login(zoe, "zoe").status_code == 401
    with store.open_db(db, read_only=True) as con:
        assert con.execute("SELECT created_by, updated_by FROM users WHERE username = 'zoe'").fetchone() == (
            "boss",
            "boss",
        )


def test_dashboard_and_logout(web):
    client, *_ = web
    login(client, "ana")
    dash = client.get("/dashboard")
    assert dash.status_code == 200 and "QA dashboard" in dash.text and "plotly-graph-div" in dash.text
    token = csrf(client, "/queue")
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/queue", follow_redirects=False).status_code == 303


def test_users_cli(web, tmp_path):
    _, db, *_ = web
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    runner = CliRunner()
    res = runner.invoke(
        cli_app, ["users", "add", "cli-user", "--role", "analyst", "--password-file", str(pw), "--db", str(db)]
    )
    assert res.exit_code == 0, res.output
    assert PASSWORD not in res.output
    res = runner.invoke(cli_app, ["users", "list", "--db", str(db)])
    assert "cli-user" in res.output and "argon2" not in res.output
    res = runner.invoke(
        cli_app, ["users", "add", "bad", "--role", "agent", "--password-file", str(pw), "--db", str(db)]
    )
    assert res.exit_code != 0 and "agent-id" in res.output


def test_assigned_to_me(web):
    from callqa.workspace import assignment
    from callqa.workspace.workflow import Actor

    client, db, ids, _ = web
    with store.open_db(db) as con:
        refs = [r for r in assignment.queue_calls(con, date(2026, 11, 22)) if r.call_id == ids["rude.wav"]]
        assignment.assign(con, refs, ["ana"], Actor("boss", "admin", None), "test")
    login(client, "ana")
    page = client.get("/queue?tab=mine").text
    assert "Assigned to me" in page and ids["rude.wav"] in page and ids["stereo_hold.wav"] not in page
    login(client, "boss")
    assert ids["rude.wav"] not in client.get("/queue?tab=mine").text


def test_one_open_per_page_and_the_file_free_after_each_request(web, monkeypatch):
    """The session check's read-only connection is the handler's (callqa.workspace.web.db): one open of
    the file per page; after every request (page, no-DB route, write, analyst SQL) nothing holds it."""
    from callqa.workspace.web import db as web_db

    client, db, ids, _ = web
    opens: list[bool] = []
    real = web_db.store.open_db

    def counting(path, *, read_only=False, **kw):
        opens.append(read_only)
        return real(path, read_only=read_only, **kw)

    assert login(client, "boss").status_code == 303
    monkeypatch.setattr(web_db.store, "open_db", counting)
    cid = next(iter(ids.values()))

    def free() -> None:
        lock = client.app.state.db.lock
        assert lock.acquire(blocking=False), "a request left the lock held"
        lock.release()
        with real(db) as con:  # read-write: refused in this process while a read-only connection is open
            con.execute("SELECT 1")

    for path in ("/queue", f"/calls/{cid}", "/queue?reason=auto-fail"):
        opens.clear()
        assert client.get(path).status_code == 200
        assert opens == [True], (path, opens)
        free()
    opens.clear()
    assert client.get("/", follow_redirects=False).status_code in (302, 303, 307)  # the handler reads nothing
    assert opens == [True]
    free()
    # a write after the session check's read: that connection is closed first, the POST is served
    token = csrf(client, "/admin/users")
    r = client.post(
        "/admin/users",
        data={"username": "newbie", "password": PASSWORD, "role": "reviewer", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code in (200, 303), r.text[:300]
    assert False in opens
    free()
    with real(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM users WHERE username = 'newbie'").fetchone()[0] == 1
    # a disabled user's session ends at the next request, and the file is free after that refusal too
    with real(db) as con:
        con.execute("UPDATE users SET disabled = true WHERE username = 'boss'")
    assert client.get("/queue", follow_redirects=False).status_code == 303
    free()
