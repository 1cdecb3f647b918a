"""Screenshots of the workspace's main pages for the closing note (an artefact generator, as the audit
report's test_screenshots): run with CALLQA_SCREENSHOTS=<folder>; skipped without it or without chromium.
Each page is checked to have rendered (an element only that page has) before it is captured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.workspace import calibration_sessions as cs
from callqa.workspace import workflow
from callqa.workspace.web.app import create_app
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.users import add_user
from callqa.workspace.workflow import Actor
from qa_data import build_db_with_recordings
from web_helpers import browser_missing, chromium, log_in, serving, wait_for

pytestmark = pytest.mark.skipif(
    browser_missing() is not None or not os.environ.get("CALLQA_SCREENSHOTS"),
    reason=browser_missing() or "screenshots when CALLQA_SCREENSHOTS names a folder",
)
PASSWORD = "correct horse battery"
USERS = [
    ("root", "admin", None, "Rita Admin"),
    ("sue", "supervisor", None, "Sue Lead"),
    ("ana", "reviewer", None, "Ana"),
    ("bo", "reviewer", None, "Bo"),
    ("sam", "agent", "A1", "Sam"),
]


def shot(driver, name: str) -> Path:
    """The whole page (the window stretched to the document's height, at most 3,000 px)."""
    folder = Path(os.environ["CALLQA_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 200, 700), 3000))  # + the window's own frame
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    assert path.stat().st_size > 8_000, path  # a blank page compresses to 2-3 kB
    return path


def test_screenshots_of_the_main_pages(tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CALLQA_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CALLQA_WEB_SECRET", raising=False)
    db, calls = build_db_with_recordings(tmp_path)
    ids = {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}
    cid = ids["stereo_hold.wav"]  # agent A1's
    with store.open_db(db) as con:
        passwords = Passwords(load_secret())
        for name, role, agent, display in USERS:
            add_user(con, name, role, passwords.hash(PASSWORD), actor="test", agent_id=agent, display_name=display)
        workflow.transition(con, cid, "start_review", Actor("ana", "reviewer"))
        workflow.transition(con, cid, "share", Actor("ana", "reviewer"), window_days=7)
        workflow.transition(con, cid, "dispute", Actor("sam", "agent", "A1"), comment="I did give my name")
        session = cs.create_session(
            con, "Week 48 calibration", list(ids.values())[:3], ["ana", "bo"], Actor("sue", "supervisor")
        )
    app = create_app(load_settings(), db)
    with serving(app) as base, chromium() as driver:
        driver.get(f"{base}/login")
        wait_for(lambda: driver.find_elements(By.ID, "login"), "the login form")
        shot(driver, "login")
        log_in(driver, base, "sue", PASSWORD)
        pages = [
            ("queue", "/queue", "#queue a.call-link"),
            ("call", f"/calls/{cid}", "#criteria tr.criterion"),
            ("workflow", f"/workflow/call/{cid}", "#wf-decide"),
            ("calibration", f"/calibration/{session.session_id}", "#session-calls"),
            ("dashboard", "/dashboard", ".plotly-graph-div .main-svg"),
            ("calibration_list", "/calibration", "#sessions"),
            ("disputes", "/workflow/disputes", "#disputes"),
            ("assign", "/assign", "#assign-form"),
        ]
        for name, path, marker in pages:
            driver.get(base + path)
            wait_for(lambda m=marker: driver.find_elements(By.CSS_SELECTOR, m), f"the {name} page ({marker})")
            assert driver.find_elements(By.CSS_SELECTOR, "header.top a[href='/queue']"), name  # the bar is there
            shot(driver, name)
        driver.get(f"{base}/workflow/call/{cid}")
        assert driver.find_element(By.ID, "wf-state").text == "disputed"
        driver.delete_all_cookies()
        log_in(driver, base, "root", PASSWORD)
        driver.get(f"{base}/admin/users")
        rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#users tr"), "the users table")
        assert len(rows) == len(USERS) + 1  # a header row and one a user
        shot(driver, "admin_users")
        driver.delete_all_cookies()
        log_in(driver, base, "ana", PASSWORD)  # a reviewer of the session, scoring blind
        driver.get(f"{base}/calibration/{session.session_id}/call/{cid}")
        wait_for(lambda: driver.find_elements(By.ID, "blind"), "the blind scoring form")
        shot(driver, "calibration_score")
        driver.delete_all_cookies()
        log_in(driver, base, "sam", PASSWORD)
        driver.get(f"{base}/workflow/mine")
        wait_for(lambda: driver.find_elements(By.ID, "answered"), "the agent's calls")
        shot(driver, "agent_my_calls")
