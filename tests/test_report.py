"""`callqa report`: the static site over the views, its call pages (stereo, mono, no events), read-only
access, and screenshots of the rendered pages in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pytest

import qa_data
from callqa.flows.artifacts import run_markdown
from callqa.workspace import kpis
from callqa.workspace.report import ReportError, build_report

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    db, calls = qa_data.build_db_with_recordings(root, step_hz=200)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    summary = build_report(db, root / "site")
    return {
        "root": root,
        "db": db,
        "calls": {Path(c.source.path).name: c for c in calls},
        "summary": summary,
        "digest": digest,
    }


def page(site, name: str) -> str:
    cid = site["calls"][name].source.call_id
    return (site["root"] / "site" / "calls" / f"{cid}.html").read_text(encoding="utf-8")


def figures(html: str) -> dict[str, dict]:
    """div id -> (data, layout) of each plotly figure in a page, parsed from the newPlot calls."""
    out = {}
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{', html, re.S):
        out[m.group(1)] = {"data": json.loads(m.group(2)), "layout": json.loads(m.group(3))}
    return out


def test_site_files_and_no_network(site):
    out = site["root"] / "site"
    s = site["summary"]
    assert (s.calls_total, s.flagged, s.call_pages) == (4, 2, 4)
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    for html in [out / "index.html", out / "calls.html", *sorted((out / "calls").glob("*.html"))]:
        text = html.read_text(encoding="utf-8")
        srcs = re.findall(r'<script[^>]+src="([^"]+)"', text)
        assert srcs and all(not re.match(r"(https?:)?//", s) for s in srcs), (html, srcs)
        assert "cdn.plot.ly" not in text
        assert (html.parent / srcs[0]).resolve() == (out / "plotly.min.js").resolve()


def test_report_never_writes_the_database(site):
    assert hashlib.sha256(site["db"].read_bytes()).hexdigest() == site["digest"]


def test_dashboard_has_every_plot_and_the_queue(site):
    html = (site["root"] / "site" / "index.html").read_text(encoding="utf-8")
    figs = figures(html)
    # no call has a survey answer: every KPI panel but satisfaction
    panels = {f"fig-kpi-{p.key}" for p in kpis.PANELS if p.kpi != "satisfaction"}
    assert set(figs) == {"fig-scores", "fig-grades", "fig-reasons", "fig-criteria", "fig-holds", "fig-trend"} | panels
    grades = figs["fig-grades"]["data"][0]
    assert dict(zip(grades["x"], grades["y"])) == {"excellent": 2, "poor": 2}
    reasons = figs["fig-reasons"]["data"][0]
    assert dict(zip(reasons["y"], reasons["x"])) == {"grade poor below fair": 2, "auto-fail: no_forbidden_language": 1}
    crit = figs["fig-criteria"]["data"][0]
    assert dict(zip(crit["y"], crit["x"]))["greeting"] == 50.0
    trend = figs["fig-trend"]["data"]
    assert trend[0]["name"] == "all agents" and trend[0]["x"] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert {t["name"] for t in figs["fig-holds"]["data"]} == {"hold", "dead air"}
    for label in ("calls processed", "flagged", "Agent leaderboard", "Flagged queue", "rude.wav", "1 announced"):
        assert label in html, label
    # queue rows link to their call pages, worst first
    links = re.findall(r'<a href="(calls/[0-9a-f]{64}\.html)">([^<]+)</a>', html)
    assert [n for _, n in links][:2] == ["rude.wav", "mono_plain.wav"]


def test_stereo_call_page_timeline_evidence_and_player(site):
    html = page(site, "stereo_hold.wav")
    figs = figures(html)
    lanes = {t["name"]: t for t in figs["fig-timeline"]["data"]}
    assert {"agent", "customer", "hold", "overtalk", "dead air"} <= set(lanes)
    assert lanes["hold"]["base"] == [12.5] and lanes["hold"]["x"] == [29.0]
    assert lanes["dead air"]["base"] == [48.2]
    emo = figs["fig-emotion"]["data"][0]
    assert emo["name"] == "customer" and emo["y"] == [-0.7, 0.6]
    # evidence quotes are highlighted inside the transcript line they came from
    assert "<mark>Thank you for calling Acme Energy, my name is Sarah</mark>" in html
    assert '<mark class="neg">this is ridiculous</mark>' in html
    # criteria cite their evidence with a button that seeks the player to it
    assert re.search(r'onclick="seek\(0\.5\)"[^>]*>▶ greeting', html)
    assert re.search(r'onclick="seek\(42\.0\)"[^>]*>▶ hold_thanked', html)
    src = re.search(r'<audio id="player"[^>]*src="([^"]+)"', html).group(1)
    assert (site["root"] / "site" / "calls" / src).resolve() == Path(
        site["calls"]["stereo_hold.wav"].source.path
    ).resolve()


def test_mono_call_without_events_and_mandarin_call(site):
    mono = page(site, "mono_plain.wav")
    figs = figures(mono)
    assert [t["name"] for t in figs["fig-timeline"]["data"]] == ["spk0"]
    assert "no emotion was measured" in mono
    assert "mono, 8000 Hz" in mono and "Right, it is booked for Monday." in mono
    zh = page(site, "zh_call.wav")
    assert "<mark>您好，这里是星河银行，我是小王</mark>" in zh and '<mark class="neg">我要投诉</mark>' in zh


def test_copy_mode_period_filter_and_errors(site, tmp_path):
    s = build_report(site["db"], tmp_path / "copy", audio="copy", since=__import__("datetime").date(2026, 11, 21))
    assert s.calls_total == 3 and s.call_pages == 3
    copied = sorted(p.name for p in (tmp_path / "copy" / "audio").iterdir())
    assert len(copied) == 3 and all(n.endswith(".wav") for n in copied)
    s = build_report(site["db"], tmp_path / "none", audio="none", max_call_pages=1)
    assert (
        s.call_pages == 1
        and "calls/" + site["calls"]["rude.wav"].source.call_id in (tmp_path / "none" / "calls.html").read_text()
    )
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(ReportError, match="not a callqa database"):
        build_report(empty, tmp_path / "x")
    with pytest.raises(Exception, match="does not exist"):
        build_report(tmp_path / "missing.duckdb", tmp_path / "y")


def test_cli_report(site, tmp_path):
    from typer.testing import CliRunner

    from callqa.cli import app

    r = CliRunner().invoke(app, ["report", "--db", str(site["db"]), "--out", str(tmp_path / "cli"), "--audio", "none"])
    assert r.exit_code == 0, r.output
    assert "4 calls, 2 flagged, 4 call pages" in r.output and (tmp_path / "cli" / "index.html").is_file()


def test_run_markdown_lists_counts_flagged_calls_and_report():
    md = run_markdown(
        {
            "run_id": "r1",
            "db_path": "/x/qa.duckdb",
            "discovered": 5,
            "skipped": 1,
            "processed": 3,
            "failed": 1,
            "flagged": 2,
            "audio_s": 600.0,
            "wall_s": 30.0,
        },
        3,
        [
            {
                "file_name": "a|b.wav",
                "agent_id": "A1",
                "queue": "q",
                "percent": 41.0,
                "grade": "poor",
                "flag_reasons": ["grade poor (41%) below fair"],
                "call_id": "abcdef1234567890",
            }
        ],
        "/x/report/index.html",
    )
    assert "| 5 | 1 | 3 | 1 | 2 | 10.0 min | 30.0 s | 20.0× real time |" in md
    assert "a\\|b.wav" in md and "`abcdef123456`" in md and "and 2 more" in md
    assert "file:///x/report/index.html" in md


# ------------------------------------------------------------------------------------------------
# screenshots


def screenshot(url: str, png: Path, profile: Path, height: int = 1000) -> Path:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size=1400,{height}",
        "--virtual-time-budget=8000",
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return png


def colour_pixels(img: np.ndarray, hex_colour: str, tol: int = 12) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(img[:, :, :3].astype(int) - rgb) <= tol, axis=2)))


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless screenshots need Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_screenshots_render_the_dashboard_and_call_pages(site, tmp_path):
    from PIL import Image

    out = site["root"] / "site"
    shots = site["root"] / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = {
        "dashboard": (out / "index.html", ["#7c3aed", "#f59e0b", "#15803d"]),  # holds, dead air, grade bars
        "call_stereo": (
            out / "calls" / f"{site['calls']['stereo_hold.wav'].source.call_id}.html",
            ["#7c3aed", "#f59e0b", "#2563eb"],
        ),
        "call_mono": (out / "calls" / f"{site['calls']['mono_plain.wav'].source.call_id}.html", ["#64748b"]),
    }
    for name, (html, colours) in pages.items():
        # the dashboard opens with the KPI panels (two rows of ~370 px): its charts come below them
        height = 2400 if name == "dashboard" else 1000
        png = screenshot(html.resolve().as_uri(), shots / f"{name}.png", tmp_path / f"profile-{name}", height)
        img = np.asarray(Image.open(png).convert("RGB"))
        assert img.shape == (height, 1400, 3), (name, img.shape)
        assert img.std() > 20, f"{name}: the screenshot is (nearly) blank"
        for c in colours:  # these colours only exist in the plots: plotly.js ran and drew them
            assert colour_pixels(img, c) > 300, f"{name}: no {c} pixels, the plots did not render"
    keep = os.environ.get("CALLQA_SCREENSHOTS")  # a folder to keep the PNGs in, to look at them
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
