"""A call: the player, timeline, transcript with evidence, each criterion's machine verdict with a review
form, and the audio route, which serves only the call's own recording."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from callqa.pipeline.redact import options_from_settings
from callqa.workspace.qa import add_review
from callqa.workspace.report import figures
from callqa.workspace.report.fmt import fmt_num, fmt_pct, fmt_s
from callqa.workspace.report.queries import call_data, rows
from callqa.workspace.report.transcript import transcript_html
from callqa.workspace.web.audio import call_audio, media_type
from callqa.workspace.web.auth import current_user, require_role
from callqa.workspace.web.db import read_db, write_db
from callqa.workspace.web.render import render
from callqa.workspace.web.users import REVIEW_ROLES, User, can_see_call

router = APIRouter()

# The call's current scorecard versions as a list, not a join: a join's dynamic filter turns the call_id
# index lookups on call_scores into a scan of the table (40 ms at 1 M calls, against 6 ms).
CRITERIA_SQL = """
SELECT r.scorecard_id, r.scorecard_version, r.section_id, r.criterion_id, r.result, r.points, r.max_points,
       r.auto_fail, r.evidence_event_ids, r.rationale
FROM criterion_results r
WHERE r.call_id = ?
  AND list_contains((SELECT list(struct_pack(i := scorecard_id, v := scorecard_version)) FROM current_scores
                     WHERE call_id = ?), struct_pack(i := r.scorecard_id, v := r.scorecard_version))
ORDER BY r.scorecard_id, r.section_id, r.criterion_id"""
REVIEWS_SQL = """
SELECT seq, scorecard_id, scorecard_version, criterion_id, reviewer, verdict, comment, auto_result, created_at
FROM reviews WHERE call_id = ? ORDER BY seq"""


def _own_call(con: Any, user: User, call_id: str) -> dict[str, Any]:
    """The call's data, or 404: for an unknown call and for another agent's call alike (no existence tell)."""
    d = call_data(con, [call_id]).get(call_id)
    if d is None or not can_see_call(user, d["summary"]["agent_id"]):
        raise HTTPException(404, "no such call")
    return d


def _criteria(d: dict, crit: list[dict], reviews: list[dict]) -> list[dict]:
    ev_by_id = {e["event_id"]: e for e in d["events"]}
    latest: dict[tuple, dict] = {}
    for r in reviews:  # in seq order: the last one per criterion wins
        latest[(r["scorecard_id"], r["scorecard_version"], r["criterion_id"])] = r
    out = []
    for c in crit:
        evs = [ev_by_id[i] for i in (c["evidence_event_ids"] or []) if i in ev_by_id]
        out.append(
            {
                **c,
                "points_label": f"{c['points']:g}/{c['max_points']:g}",
                "evidence": [
                    {
                        "type": e["type"],
                        "start": f"{e['start_s']:.2f}",
                        "at": fmt_s(e["start_s"]),
                        "text": e["evidence"],
                    }
                    for e in evs
                ],
                "review": latest.get((c["scorecard_id"], c["scorecard_version"], c["criterion_id"])),
            }
        )
    return out


def _meta(s: dict, m: dict) -> list[tuple[str, str]]:
    talk = m.get("talk_ratio_agent")
    return [
        ("agent", s["agent_id"] or "—"),
        ("queue", s["queue"] or "—"),
        ("started", str(s["started_at"] or "—")),
        ("duration", fmt_s(s["duration_s"])),
        ("audio", f"{'stereo' if (s['channels'] or 1) > 1 else 'mono'}, {s['sample_rate']} Hz, {s['codec'] or ''}"),
        ("language", s["language"] or "—"),
        ("talk", f"agent {fmt_pct(talk)} of talk time" if talk is not None else "—"),
        ("hold", fmt_num(m.get("hold_total_s"), 1, " s")),
        ("dead air", fmt_num(m.get("dead_air_total_s"), 1, " s")),
    ]


@router.get("/calls/{call_id}")
def call_page(request: Request, user: Annotated[User, Depends(current_user)], call_id: str) -> Response:
    with read_db(request) as con:
        d = _own_call(con, user, call_id)
        crit = rows(con, CRITERIA_SQL, [call_id, call_id])
        reviews = rows(con, REVIEWS_SQL, [call_id])
        audio_path, audio_note = call_audio(con, d["summary"])
    s = d["summary"]
    return render(
        request,
        "call.html",
        {
            "call": s,
            "grade": s["grade"] or ("na" if s["scorecard_id"] else None),
            "audio_src": f"/calls/{quote(call_id, safe='')}/audio" if audio_path else None,
            "audio_note": audio_note,
            "meta": _meta(s, d["metrics"]),
            "criteria": _criteria(d, crit, reviews),
            "reviews": reviews,
            "can_review": user.role in REVIEW_ROLES,
            "timeline": figures.timeline(d, "fig-timeline"),
            "transcript": transcript_html(d)[0],
            "n_utterances": len(d["utterances"]),
        },
    )


@router.get("/calls/{call_id}/audio")
def call_audio_file(request: Request, user: Annotated[User, Depends(current_user)], call_id: str) -> Response:
    with read_db(request) as con:
        d = _own_call(con, user, call_id)
        path, note = call_audio(con, d["summary"])
    if path is None:
        raise HTTPException(404, note)
    # FileResponse answers Range requests, which the browser's player needs to seek
    return FileResponse(path, media_type=media_type(path), headers={"Cache-Control": "private, no-store"})


@router.post("/calls/{call_id}/review")
def review(
    request: Request,
    user: Annotated[User, Depends(require_role(*REVIEW_ROLES))],
    call_id: str,
    criterion_id: str = Form(...),
    scorecard_id: str = Form(...),
    action: str = Form(...),
    verdict: str = Form(""),
    reason: str = Form(""),
) -> Response:
    reason = reason.strip()
    settings = request.app.state.settings
    red = settings.redaction
    with write_db(request) as con:
        _own_call(con, user, call_id)
        machine = con.execute(
            """SELECT r.result FROM criterion_results r
               JOIN current_scores s USING (call_id, scorecard_id, scorecard_version)
               WHERE r.call_id = ? AND r.scorecard_id = ? AND r.criterion_id = ?""",
            [call_id, scorecard_id, criterion_id],
        ).fetchone()
        if machine is None:
            raise HTTPException(400, f"this call has no current result for criterion {criterion_id!r}")
        if action == "agree":
            verdict = machine[0]
        elif action == "override":
            if verdict not in ("pass", "fail", "na") or verdict == machine[0]:
                raise HTTPException(400, f"an override needs a verdict other than the machine's ({machine[0]})")
            if not reason:
                raise HTTPException(400, "an override needs a reason")
        else:
            raise HTTPException(400, "action must be agree or override")
        row = add_review(
            con,
            call_id,
            criterion_id,
            verdict,  # type: ignore[arg-type]
            user.username,  # the logged-in user, never a name typed into the form
            reason or None,
            scorecard_id,
            key_file=settings.audit.key_file,
            redaction=options_from_settings(red) if red.enabled else None,
        )
    notice = f"review #{row['seq']} recorded: {criterion_id} = {verdict}"
    return RedirectResponse(
        f"/calls/{quote(call_id, safe='')}?notice={quote(notice)}#criterion-{quote(criterion_id)}", status_code=303
    )
