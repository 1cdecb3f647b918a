"""The navigation bar (base.html) per role: each role sees exactly the pages its routes admit, every linked
page answers 200 for that role, and the pages left out of its bar refuse it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.workspace.web.app import create_app
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.users import add_user
from qa_data import build_db

PASSWORD = "correct horse battery"
USERS = {
    "root": ("admin", None),
    "sue": ("supervisor", None),
    "ana": ("reviewer", None),
    "an": ("analyst", None),
    "sam": ("agent", "A1"),
}
# the links each role's bar must show, in order (label, path)
EXPECTED = {
    "admin": [
        ("Queue", "/queue"),
        ("Assigned to me", "/workflow/mine"),
        ("Calibration", "/calibration"),
        ("Disputes", "/workflow/disputes"),
        ("Assign", "/assign"),
        ("Dashboard", "/dashboard"),
        ("SQL", "/sql"),
        ("Users", "/admin/users"),
    ],
    "supervisor": [
        ("Queue", "/queue"),
        ("Assigned to me", "/workflow/mine"),
        ("Calibration", "/calibration"),
        ("Disputes", "/workflow/disputes"),
        ("Assign", "/assign"),
        ("Dashboard", "/dashboard"),
        ("SQL", "/sql"),
    ],
    "reviewer": [
        ("Queue", "/queue"),
        ("Assigned to me", "/workflow/mine"),
        ("Calibration", "/calibration"),
        ("Dashboard", "/dashboard"),
    ],
    "analyst": [("Queue", "/queue"), ("Dashboard", "/dashboard"), ("SQL", "/sql")],
    "agent": [("My calls", "/workflow/mine")],
}
ALL_PAGES = {p for links in EXPECTED.values() for _, p in links}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nav")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CONFIG_HOME", str(tmp / "config"))
    mp.delenv("CALLQA_WEB_SECRET", raising=False)
    db = tmp / "qa.duckdb"
    build_db(db)
    passwords = Passwords(load_secret())
    with store.open_db(db) as con:
        for name, (role, agent) in USERS.items():
            add_user(con, name, role, passwords.hash(PASSWORD), actor="test", agent_id=agent)
    yield TestClient(create_app(load_settings(), db))
    mp.undo()


def login(client: TestClient, user: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    page = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert page.status_code == 200 and 'id="whoami"' in page.text
    return page.text


def bar(html: str) -> list[tuple[str, str]]:
    header = html.split('<header class="top">', 1)[1].split("</header>", 1)[0]
    return [(label, path) for path, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', header)]


@pytest.mark.parametrize("user", list(USERS))
def test_each_role_sees_its_pages_and_each_answers(client, user):
    role = USERS[user][0]
    login(client, user)
    expected = EXPECTED[role]
    for _, path in expected:
        page = client.get(path)
        assert page.status_code == 200, (role, path, page.text[:300])
        assert bar(page.text) == expected, (role, path)  # the same bar on every page, workflow pages too
    for path in ALL_PAGES - {p for _, p in expected}:
        if role == "agent" and path == "/queue":
            continue  # open to an agent, holding only their own calls (test_web), linked from "My calls"
        # a page left out of the bar is one the role may not open
        assert client.get(path).status_code in (403, 404), (role, path)


def test_reviewer_has_no_admin_link_and_agent_only_my_calls(client):
    html = login(client, "ana")
    assert "/admin/users" not in html and "Users" not in [label for label, _ in bar(html)]
    html = login(client, "sam")
    assert bar(html) == [("My calls", "/workflow/mine")]
    page = client.get("/workflow/mine").text
    assert "Reviews shared with you" in page and 'id="answered"' in page and 'href="/queue"' in page


def test_nav_marks_the_page_being_shown(client):
    login(client, "sue")
    html = client.get("/calibration").text
    assert re.search(r'<a href="/calibration" class="on">Calibration</a>', html)
    assert not re.search(r'<a href="/queue" class="on">', html)


def test_workflow_pages_keep_their_own_layout_without_the_core(tmp_path: Path):
    # the workflow router still renders standalone (no core base page): its own small layout
    from fastapi.templating import Jinja2Templates

    from callqa.workspace.web import routes_workflow

    t = Jinja2Templates(directory=str(routes_workflow.TEMPLATES_DIR))
    html = t.get_template("workflow_error.html").render(core_base=None, error="x", me=None)
    assert '<a href="/workflow/mine">mine</a>' in html and "x" in html
