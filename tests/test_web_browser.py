"""The workspace in a real browser (headless chromium via selenium): log in, queue, a call, the player
seeking to an evidence link, an override shown after it is stored. Screenshots of the queue, the call page
and the dashboard go to $CALLQA_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callqa.config.settings import load_settings
from callqa.pipeline import store
from callqa.workspace.web.app import create_app
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.users import add_user
from qa_data import build_db_with_recordings
from web_helpers import browser_missing, chromium, log_in, serving, wait_for

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
PASSWORD = "correct horse battery"


def _shot(driver, name: str) -> None:
    folder = os.environ.get("CALLQA_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_review_a_call_in_the_browser(tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CALLQA_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CALLQA_WEB_SECRET", raising=False)
    db, calls = build_db_with_recordings(tmp_path)  # 60 s stereo tone for the stereo call: seekable
    with store.open_db(db) as con:
        add_user(con, "ana", "reviewer", Passwords(load_secret()).hash(PASSWORD), actor="test", display_name="Ana")
    stereo = next(c for c in calls if c.source.path.endswith("stereo_hold.wav"))
    cue = next(e for e in stereo.events if e.type == "hold_announced")  # evidence of hold_etiquette
    app = create_app(load_settings(), db)
    with serving(app) as base, chromium() as driver:
        log_in(driver, base, "ana", PASSWORD)
        driver.get(f"{base}/queue")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#queue a.call-link"), "the queue")
        _shot(driver, "queue")
        driver.get(f"{base}/calls/{stereo.source.call_id}")
        player = wait_for(lambda: driver.find_elements(By.ID, "player"), "the player")[0]
        wait_for(lambda: driver.execute_script("return arguments[0].readyState >= 1", player), "audio metadata")
        row = driver.find_element(By.ID, "criterion-hold_etiquette")
        button = row.find_element(By.CSS_SELECTOR, "button.evidence")
        assert float(button.get_attribute("data-seek")) == pytest.approx(cue.start, abs=0.01)
        button.click()
        moved = wait_for(
            lambda: (t := driver.execute_script("return arguments[0].currentTime", player)) >= cue.start - 0.05 and t,
            "the player to seek to the evidence",
        )
        assert cue.start - 0.05 <= moved < cue.start + 2.0
        _shot(driver, "call")
        row = driver.find_element(By.ID, "criterion-greeting")
        driver.execute_script(
            "arguments[0].value = 'fail'", row.find_element(By.CSS_SELECTOR, "select.override-verdict")
        )
        row.find_element(By.CSS_SELECTOR, "input.override-reason").send_keys("greeting <b>cut</b> off")
        row.find_element(By.CSS_SELECTOR, "button.override").click()
        wait_for(lambda: "review #1 recorded" in driver.page_source, "the review notice")
        row = driver.find_element(By.ID, "criterion-greeting")
        assert row.find_element(By.CSS_SELECTOR, ".human .verdict").text == "fail"
        assert "greeting <b>cut</b> off" in row.find_element(By.CSS_SELECTOR, ".human").text  # shown as text
        driver.get(f"{base}/dashboard")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div .main-svg"), "the dashboard figures")
        _shot(driver, "dashboard")
    with store.open_db(db, read_only=True) as con:
        assert con.execute("SELECT reviewer, verdict FROM reviews").fetchall() == [("ana", "fail")]
