"""`callqa report`: a static, self-contained HTML site over the QA views.

The site is plain files: index.html (dashboard), calls.html (every call with a page) and
calls/<call_id>.html, with plotly.js shipped beside them (plotly.min.js) so it opens from disk with
no network at all. Every figure is data from SQL over the views (`call_summary`, `flagged_queue`,
`agent_daily`, `criterion_pass_rates`, `hold_stats`) rendered by plotly; the database is opened in the
analyst sandbox (read-only, no files or network), so a report can never change what it reports on.

Files are written through `callqa.workspace.files`: never through a link planted in the report folder,
and over a file callqa did not write (per the folder's manifest) only with `force`. Call pages play
(or copy) a recording only when its real path lies inside its run's recording folder (`runs.input_dir`)
or redacted-audio folder (`redaction.audio_dir` in `runs.settings`): a path in a call's metadata
cannot make the report publish any other file.

Call pages are built for the flagged calls of the period first (the QA queue order) and then the
newest calls, up to `max_call_pages`: a dashboard over a million calls stays one page, the pages QA
will open are there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
from markupsafe import Markup

from callqa import __version__
from callqa.config.settings import KpiSettings
from callqa.pipeline.types import CallQAError
from callqa.workspace.files import OutputFolder, inside
from callqa.workspace.report import figures, queries
from callqa.workspace.report.fmt import fmt_dt, fmt_num, fmt_pct, fmt_s
from callqa.workspace.report.kpi_panels import PANEL_PERIODS, kpi_panels_html, template_env
from callqa.workspace.report.queries import Period
from callqa.workspace.report.transcript import transcript_html
from callqa.workspace.sandbox import connect_analyst, first_line


class ReportError(CallQAError):
    stage = "report"


AudioMode = Literal["link", "copy", "none"]


@dataclass(frozen=True)
class ReportSummary:
    out_dir: Path
    index: Path
    calls_total: int
    flagged: int
    call_pages: int
    bytes_written: int
    seconds: float


# ------------------------------------------------------------------------------------------------
# dashboard


def _hold_table(s: dict[str, Any]) -> tuple[list[dict], str]:
    n = s["calls"] or 0
    table = [
        {
            "label": "hold",
            "calls": f"{s['held'] or 0:,}",
            "share": fmt_pct((s["held"] or 0) / n if n else None),
            "mean": fmt_num(s["hold_mean"], 1, " s"),
            "max": fmt_num(s["hold_max"], 1, " s"),
            "total": fmt_num((s["hold_total"] or 0) / 3600, 1, " h"),
        },
        {
            "label": "dead air",
            "calls": f"{s['dead'] or 0:,}",
            "share": fmt_pct((s["dead"] or 0) / n if n else None),
            "mean": fmt_num(s["dead_mean"], 1, " s"),
            "max": fmt_num(s["dead_max"], 1, " s"),
            "total": fmt_num((s["dead_total"] or 0) / 3600, 1, " h"),
        },
    ]
    notes = ""
    if s["holds"]:
        notes = (
            f"{int(s['holds']):,} holds: {int(s['announced'] or 0):,} announced, "
            f"{int(s['thanked'] or 0):,} thanked on return, {int(s['unannounced'] or 0):,} unannounced."
        )
    return table, notes


def _agent_table(agents: list[dict]) -> list[dict]:
    return [
        {
            "agent_id": a["agent_id"],
            "calls": f"{int(a['calls']):,}",
            "avg_percent": fmt_num(a["avg_percent"], 1),
            "flagged_rate": fmt_pct(a["flagged_rate"]),
            "auto_failed": int(a["auto_failed"] or 0),
            "avg_hold_s": fmt_num(a["avg_hold_s"], 1),
            "avg_dead_air_s": fmt_num(a["avg_dead_air_s"], 1),
            "talk_ratio": fmt_pct(a["talk_ratio"]),
            "emotion_end": fmt_num(a["emotion_end"], 2),
        }
        for a in agents
    ]


def _dashboard(
    con: duckdb.DuckDBPyConnection, period: Period, scorecard: str | None, version: int | None, pages: dict[str, str]
) -> dict[str, Any]:
    k = queries.totals(con, period, scorecard)
    failures_total = queries.failures_total(con, period)
    to_check = queries.recordings_total(con, period)  # never graded or graded on the agent's side only
    calls = k["calls"] or 0
    flagged_share = f" ({100 * k['flagged'] / calls:.0f} %)" if calls else ""
    kpis = [
        {"label": "calls processed", "value": f"{calls:,}"},
        {"label": "audio hours", "value": fmt_num(k["hours"], 1)},
        {"label": "average score", "value": fmt_num(k["avg_percent"], 1, " %")},
        {"label": "flagged", "value": f"{k['flagged']:,}" + flagged_share},
        {"label": "auto-fail", "value": f"{k['auto_failed']:,}"},
        {"label": "agents", "value": f"{k['agents']:,}"},
        {"label": "failed recordings", "value": f"{failures_total:,}"},
        {"label": "recordings to check", "value": f"{sum(to_check.values()):,}"},
    ]

    figs: dict[str, Markup] = {
        "scores": figures.score_histogram(queries.score_bins(con, period, scorecard)),
        "grades": figures.grade_bars(queries.grade_counts(con, period, scorecard)),
        "reasons": figures.reason_bars(queries.flag_reasons(con, period, scorecard)),
        "criteria": (
            figures.criteria_bars(queries.criterion_rates(con, period, scorecard, version))
            if scorecard is not None
            else figures.empty("no scored calls")
        ),
        "holds": figures.hold_histogram(queries.hold_histogram(con, period)),
    }
    hold_table, hold_notes = _hold_table(queries.hold_summary(con, period))
    agent_rows = queries.agent_rows(con, period, scorecard)
    daily = queries.daily_scores(con, period, scorecard)
    busiest = [a["agent_id"] for a in sorted(agent_rows, key=lambda a: -a["calls"])[:8]]
    per_agent = queries.agent_days(con, period, scorecard, busiest) if daily and busiest else []
    figs["trend"] = figures.score_trend(daily, busiest, per_agent)

    queue = [
        {
            "file_name": q["file_name"],
            "agent_id": q["agent_id"],
            "queue": q["queue"],
            "started": fmt_dt(q["started_at"] or q["processed_at"]),
            "duration": fmt_s(q["duration_s"]),
            "percent": fmt_num(q["percent"], 0),
            "grade": q["grade"] or "na",
            "reasons": q["flag_reasons"] or [],
            "href": pages.get(q["call_id"]),
        }
        for q in queries.flagged_rows(con, period, scorecard)
    ]
    failures = [
        {"created_at": fmt_dt(f["created_at"]), "path": f["path"], "stage": f["stage"], "error": f["error"]}
        for f in queries.failure_rows(con, period)
    ]
    recordings = [
        {
            "file_name": r["file_name"],
            "agent_id": r["agent_id"],
            "queue": r["queue"],
            "started": fmt_dt(r["started_at"] or r["processed_at"]),
            "duration": fmt_s(r["duration_s"]),
            "status": "not graded" if r["scorable_status"] == "unscorable" else "agent side only",
            "reasons": r["scorable_reasons"] or [],
            "href": pages.get(r["call_id"]),
        }
        for r in queries.recording_rows(con, period)
    ]
    counts = [(to_check.get("unscorable", 0), "not graded"), (to_check.get("partial", 0), "graded on the agent's side")]
    return {
        "kpis": kpis,
        "figs": figs,
        "hold_table": hold_table,
        "hold_notes": hold_notes,
        "agents": _agent_table(agent_rows),
        "queue": queue,
        "flagged_total": f"{k['flagged']:,}",
        "failures": failures,
        "failures_total": failures_total,
        "recordings": recordings,
        "recordings_note": ", ".join(f"{n:,} {label}" for n, label in counts if n),
        "calls_total": calls,
        "flagged": k["flagged"],
    }


# ------------------------------------------------------------------------------------------------
# call pages


@dataclass(frozen=True)
class AudioRoots:
    """The folders (real paths) a call's audio may be played from."""

    recordings: tuple[str, ...]
    redacted: tuple[str, ...]


def _real(path: str | None) -> tuple[str, ...]:
    return (os.path.realpath(path),) if path else ()


def audio_roots(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, AudioRoots]:
    """Per call: its run's recording folder and redacted-audio folder, as the runs table recorded them.

    A call stored outside a run (no runs row: test and bench databases) may play audio from the folder
    its own source path names, and from nowhere else.
    """
    rows = con.execute(
        """SELECT c.call_id, c.source_path, r.run_id, r.input_dir, r.settings
           FROM calls c LEFT JOIN runs r USING (run_id) WHERE c.call_id IN (SELECT unnest(?::VARCHAR[]))""",
        [list(ids)],
    ).fetchall()
    out = {}
    for cid, source_path, run_id, input_dir, settings in rows:
        try:
            redaction = (json.loads(settings) if settings else {}).get("redaction") or {}
            audio_dir = redaction.get("audio_dir") if isinstance(redaction, dict) else None
        except (TypeError, ValueError, AttributeError):
            audio_dir = None
        recordings = input_dir if run_id is not None else (os.path.dirname(source_path) or ".")
        out[cid] = AudioRoots(_real(recordings), _real(audio_dir if isinstance(audio_dir, str) else None))
    return out


def _audio_src(
    d: dict, page_dir: Path, folder: OutputFolder, mode: AudioMode, roots: AudioRoots
) -> tuple[str | None, str]:
    s = d["summary"]
    if mode == "none":
        return None, "audio not included in this report (--audio none)"
    meta = {}
    try:
        meta = json.loads(s["metadata"]) if s.get("metadata") else {}
    except (TypeError, ValueError):
        meta = {}
    redacted = meta.get("redacted_audio") if isinstance(meta, dict) else None
    if redacted is not None and not isinstance(redacted, str):
        return None, "audio not played: the call's redacted-audio entry is not a path"
    use_redacted = bool(redacted) and Path(redacted).is_file()
    if not use_redacted and isinstance(meta, dict) and isinstance(meta.get("redaction"), dict):
        # redaction was on for this call (set by the redact stage, never by a sidecar): the original
        # recording still says what its stored text had removed
        why = "its redacted copy is missing" if redacted else "no redacted audio copy was made (redaction.audio)"
        return None, f"audio not played: this call was redacted and {why}; the original recording is not published"
    src = Path(redacted) if use_redacted else Path(s["source_path"])
    label = "redacted copy" if use_redacted else "original recording"
    if not src.is_file():
        return None, f"recording not found at {src} (moved or deleted since it was processed)"
    if not inside(src, roots.redacted + roots.recordings if use_redacted else roots.recordings):
        return None, (
            f"audio not played: the {label} {src} resolves outside the recording and redacted-audio "
            "folders of its run, and callqa publishes no other file"
        )
    real = Path(os.path.realpath(src))
    if mode == "copy":
        dest = folder.folder("audio") / f"{s['call_id']}{real.suffix.lower()}"
        entry = folder.entry(dest)
        unchanged = entry is not None and entry.get("source") == str(real) and entry.get("size") == real.stat().st_size
        if not (unchanged and folder.owns(dest)):
            folder.copy_from(real, dest, source=str(real))
        real = dest.resolve()
        label += ", copied into the report"
    try:
        rel = os.path.relpath(real, page_dir.resolve())
        href = Path(rel).as_posix()
    except ValueError:  # another drive (Windows): absolute file URI
        href = real.as_uri()
    return href, f"{label}: {src.name} — click any time, bar or evidence to play from there"


def _call_meta(s: dict[str, Any], m: dict[str, Any]) -> list[tuple[str, str]]:
    roles = s.get("roles")
    talk = m.get("talk_ratio_agent")
    holds = m.get("hold_count")
    return [
        ("agent", s["agent_id"] or "—"),
        ("queue", s["queue"] or "—"),
        ("customer", s["customer_id"] or "—"),
        ("started", fmt_dt(s["started_at"]) or "—"),
        ("processed", fmt_dt(s["processed_at"])),
        ("duration", fmt_s(s["duration_s"])),
        ("audio", f"{'stereo' if (s['channels'] or 1) > 1 else 'mono'}, {s['sample_rate']} Hz, {s['codec'] or ''}"),
        ("language", f"{s['language'] or '—'}"),
        ("roles", f"{s['role_method'] or '—'} {roles or ''}"),
        ("talk", f"agent {fmt_pct(talk)} of talk time" if talk is not None else "—"),
        ("hold", f"{int(holds or 0)} holds, {fmt_num(m.get('hold_total_s'), 1, ' s')}" if holds is not None else "—"),
        ("dead air", fmt_num(m.get("dead_air_total_s"), 1, " s")),
        ("overtalk", fmt_num(m.get("overtalk_total_s"), 1, " s")),
        ("source", s["source_path"]),
    ]


def _call_page(d: dict, folder: OutputFolder, audio: AudioMode, roots: AudioRoots) -> dict[str, Any]:
    s = d["summary"]
    cid = s["call_id"]
    page_dir = folder.root / "calls"
    audio_src, audio_note = _audio_src(d, page_dir, folder, audio, roots)
    ev_by_id = {e["event_id"]: e for e in d["events"]}
    criteria = []
    for c in d["criteria"]:
        evs = [ev_by_id[i] for i in (c["evidence_event_ids"] or []) if i in ev_by_id]
        criteria.append(
            {
                "criterion_id": c["criterion_id"],
                "result": c["result"],
                "auto_fail": c["auto_fail"],
                "points": f"{c['points']:g}/{c['max_points']:g}",
                "rationale": c["rationale"],
                "evidence": [
                    {
                        "type": e["type"],
                        "start": round(e["start_s"], 2),
                        "at": fmt_s(e["start_s"]),
                        "evidence": e["evidence"],
                    }
                    for e in evs
                ],
            }
        )
    return {
        "call": {
            "call_id": cid,
            "file_name": s["file_name"],
            "grade": s["grade"] or ("na" if s["scorecard_id"] else None),
            "percent": fmt_num(s["percent"], 1),
            "reasons": s["flag_reasons"] or [],
            "scorecard": f"{s['scorecard_id']} v{s['scorecard_version']}" if s["scorecard_id"] else None,
        },
        "audio_src": audio_src,
        "audio_note": audio_note,
        "meta": _call_meta(s, d["metrics"]),
        "criteria": criteria,
        "figs": {"timeline": figures.timeline(d, "fig-timeline"), "emotion": figures.emotion_curve(d, "fig-emotion")},
        "transcript": transcript_html(d)[0],
        "n_utterances": len(d["utterances"]),
        "n_events": len(d["events"]),
    }


def _listing_row(href: str, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "href": href,
        "file_name": s["file_name"],
        "agent_id": s["agent_id"],
        "queue": s["queue"],
        "started": fmt_dt(s["started_at"] or s["processed_at"]),
        "duration": fmt_s(s["duration_s"]),
        "channels": s["channels"],
        "language": s["language"],
        "percent": fmt_num(s["percent"], 1),
        "grade": s["grade"] or "na",
        "flagged": s["flagged"],
    }


# ------------------------------------------------------------------------------------------------
# entry point


def build_report(
    db_path: str | Path,
    out_dir: str | Path,
    *,
    since: date | None = None,
    until: date | None = None,
    audio: AudioMode = "link",
    max_call_pages: int = 5000,
    call_ids: Sequence[str] | None = None,
    scorecard: str | None = None,
    force: bool = False,
    kpi: KpiSettings | None = None,
    kpi_period: str = "week",
    lang: str = "en",
) -> ReportSummary:
    """Write the report site for the calls of [since, until] into out_dir; the database is opened read-only.

    A file in out_dir that callqa did not write is replaced only with `force`; a link there never.
    The dashboard's centre-KPI panels go per `kpi_period` (week | month), labelled in `lang` (en | zh).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if audio not in ("link", "copy", "none"):
        raise ReportError(None, f"--audio must be link, copy or none, not {audio!r}")
    if kpi_period not in PANEL_PERIODS or lang not in ("en", "zh"):
        raise ReportError(None, f"--kpi-period must be week or month and --lang en or zh, not {kpi_period!r}/{lang!r}")
    con = connect_analyst(db_path)
    try:
        try:
            con.execute("SELECT 1 FROM flagged_queue LIMIT 0")
        except duckdb.Error as e:
            raise ReportError(
                db_path, f"not a callqa database at the current schema (open it once with `callqa run`): {e}"
            ) from e
        period = Period(since, until)
        if scorecard is None:
            scorecard, version = queries.main_scorecard(con)
        else:
            version = queries.scorecard_version(con, scorecard)
        env = template_env()
        common = {
            "version": __version__,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "db_name": Path(db_path).name,
            "period_label": period.label,
        }
        folder = OutputFolder.open(out_dir, force)
        calls_dir = folder.folder("calls")
        try:
            import plotly.offline

            written = folder.write_bytes(out_dir / "plotly.min.js", plotly.offline.get_plotlyjs().encode("utf-8"))
            ids = queries.select_calls(con, period, scorecard, max_call_pages, call_ids)
            pages = {cid: f"calls/{cid}.html" for cid in ids}
            call_tpl = env.get_template("call.html.j2")
            listing = []
            for start in range(0, len(ids), 500):  # bounded memory on big reports
                chunk = ids[start : start + 500]
                data = queries.call_data(con, chunk)
                roots = audio_roots(con, chunk)
                for cid in chunk:
                    d = data.get(cid)
                    if d is None:
                        pages.pop(cid, None)
                        continue
                    ctx = _call_page(d, folder, audio, roots.get(cid, AudioRoots((), ())))
                    page = call_tpl.render(root="../", **common, **ctx)
                    written += folder.write_bytes(calls_dir / f"{cid}.html", page.encode("utf-8"))
                    listing.append(_listing_row(pages[cid], d["summary"]))
            dash = _dashboard(con, period, scorecard, version, pages)
            panels = kpi_panels_html(con, period, kpi_period=kpi_period, settings=kpi, lang=lang)
            index = env.get_template("dashboard.html.j2").render(
                root="", scorecard=scorecard, scorecard_version=version, kpi_panels=panels, **common, **dash
            )
            written += folder.write_bytes(out_dir / "index.html", index.encode("utf-8"))
            omitted = max(0, dash["calls_total"] - len(listing)) if call_ids is None else 0
            calls = env.get_template("calls.html.j2").render(root="", calls=listing, omitted=omitted, **common)
            written += folder.write_bytes(out_dir / "calls.html", calls.encode("utf-8"))
        finally:
            # what was written stays callqa's even when a later file is refused
            folder.save()
    except duckdb.PermissionException as e:
        raise ReportError(db_path, f"refused: a view of this database reads outside it ({first_line(e)})") from e
    finally:
        con.close()
    return ReportSummary(
        out_dir=out_dir,
        index=out_dir / "index.html",
        calls_total=dash["calls_total"],
        flagged=int(dash["flagged"] or 0),
        call_pages=len(listing),
        bytes_written=written,
        seconds=time.perf_counter() - t0,
    )
