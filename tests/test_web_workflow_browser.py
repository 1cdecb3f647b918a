"""In headless chromium: an agent disputes, a supervisor resolves, two reviewers run a calibration session.

Served by uvicorn in a thread with the workflow router on the stand-in login of tests/test_web_workflow.py
(the user is the `who` cookie); skipped where chromium or chromedriver is absent."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from qa_data import build_db
from test_web_workflow import build_app

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()) and not shutil.which("chromedriver"),
    reason="chromium and chromedriver are not installed (apt install chromium chromium-driver)",
)


@pytest.fixture()
def site(tmp_path):
    import uvicorn

    path = tmp_path / "qa.duckdb"
    calls = build_db(path)
    ids = {c.source.path.rsplit("/", 1)[-1]: c.source.call_id for c in calls}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    yield f"http://127.0.0.1:{port}", ids
    server.should_exit = True
    thread.join(10)


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(5)  # a click navigates: wait for the next page's elements
    yield driver
    driver.quit()


def state_is(driver, state: str) -> bool:
    """Wait (bounded) until the workflow panel shows `state`: the form post redirects back to the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(ec.text_to_be_present_in_element((By.ID, "wf-state"), state))


def as_user(driver, base: str, who: str, path: str) -> None:
    driver.get(base + "/workflow/mine")  # any page of the site, to set its cookie
    driver.delete_all_cookies()
    driver.add_cookie({"name": "who", "value": who, "path": "/"})
    driver.get(base + path)


@pytest.mark.slow
def test_dispute_as_the_agent_then_resolve_as_the_supervisor(site, browser):
    from selenium.webdriver.common.by import By

    base, ids = site
    cid = ids["rude.wav"]
    as_user(browser, base, "ana", f"/workflow/call/{cid}")
    browser.find_element(By.CSS_SELECTOR, "#wf-start_review button").click()
    browser.find_element(By.CSS_SELECTOR, "#wf-share button").click()
    assert state_is(browser, "shared")
    as_user(browser, base, "sam", "/workflow/mine")
    browser.find_element(By.LINK_TEXT, "rude.wav").click()
    browser.find_element(By.CSS_SELECTOR, "#wf-dispute input[name=comment]").send_keys("the customer swore first")
    browser.find_element(By.CSS_SELECTOR, "#wf-dispute button").click()
    assert state_is(browser, "disputed")
    as_user(browser, base, "sue", "/workflow/disputes")
    assert "the customer swore first" in browser.find_element(By.ID, "disputes").text
    browser.find_element(By.LINK_TEXT, "rude.wav").click()
    form = browser.find_element(By.ID, "wf-decide")
    form.find_element(By.CSS_SELECTOR, "select[name=decision] option[value=upheld]").click()
    form.find_element(By.NAME, "comment").send_keys("the agent's wording was the problem")
    form.find_element(By.TAG_NAME, "button").click()
    assert state_is(browser, "final")
    history = browser.find_element(By.ID, "wf-history").text
    assert "sam (agent)" in history and "sue (supervisor)" in history and "upheld" in history


@pytest.mark.slow
def test_a_calibration_session_from_creation_to_the_kappa_table(site, browser):
    from selenium.webdriver.common.by import By

    base, ids = site
    as_user(browser, base, "sue", "/calibration")
    form = browser.find_element(By.ID, "new-session")
    form.find_element(By.NAME, "name").send_keys("December greeting")
    form.find_element(By.NAME, "calls").send_keys("rude.wav\nmono_plain.wav")
    form.find_element(By.NAME, "reviewers").send_keys("ana\nbo")
    form.find_element(By.TAG_NAME, "button").click()
    session_url = browser.current_url
    verdicts = {
        "ana": {"rude.wav": "fail", "mono_plain.wav": "fail"},
        "bo": {"rude.wav": "fail", "mono_plain.wav": "pass"},
    }
    for who, by_call in verdicts.items():
        as_user(browser, base, who, session_url[len(base) :])
        for name, g in by_call.items():
            browser.find_element(By.LINK_TEXT, name).click()
            assert browser.find_element(By.ID, "blind")
            browser.find_element(By.CSS_SELECTOR, f"input[name='v:greeting'][value={g}]").click()
            browser.find_element(By.CSS_SELECTOR, "input[name='v:no_forbidden_language'][value=pass]").click()
            browser.find_element(By.CSS_SELECTOR, "#score-form button").click()
            assert browser.find_element(By.ID, "verdicts")  # submitted: the verdicts show
            browser.get(session_url)
    as_user(browser, base, "sue", session_url[len(base) :] + "/results")
    row = browser.find_element(By.ID, "crit-greeting").text
    # items (f, f), (f, p): P̄ = 1/2, p_fail = 3/4 -> P_e = 5/8 -> Fleiss (1/2 − 5/8) / (3/8) = −1/3
    assert "50%" in row and "-0.333" in row
