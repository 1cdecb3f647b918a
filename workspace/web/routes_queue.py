"""The queue: flagged calls (filters and paging through callqa.workspace.queue, fast at a million calls),
the stratified samples drawn for review, and, when the workflow module provides assignments, the calls
assigned to the logged-in reviewer (callqa.workspace.assignment)."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from callqa.pipeline.store import StoreError
from callqa.workspace.queue import GRADES, SORTS, QueueFilter, flagged_page_counted
from callqa.workspace.report.queries import rows
from callqa.workspace.web.auth import current_user
from callqa.workspace.web.db import read_db
from callqa.workspace.web.render import NavItem, render
from callqa.workspace.web.users import ROLES, User

router = APIRouter()
# an agent's queue holds only their calls, but their bar links the reviews shared with them
# (routes_workflow's /workflow/mine, where they acknowledge or dispute) as "My calls"
NAV = [
    NavItem("Queue", "/queue", tuple(r for r in ROLES if r != "agent"), order=10),
    NavItem("My calls", "/workflow/mine", ("agent",), admin=False, order=10),
]
PAGE_SIZE = 50
ASSIGNMENT = "callqa.workspace.assignment"


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise StoreError(None, f"{name} must be a date like 2026-11-20, not {value!r}") from e


def _assignments() -> Any:
    """`assigned_ids(con, username) -> list[str]` from the workflow's assignment module, when it is installed."""
    try:
        module = importlib.import_module(ASSIGNMENT)
    except ModuleNotFoundError:
        return None

    def assigned_ids(con: Any, username: str) -> list[str]:
        if not con.execute("SELECT 1 FROM duckdb_views() WHERE view_name = 'current_assignments'").fetchone():
            return []  # a database from before the assignment migration
        return [r["call_id"] for r in module.assigned_to(con, username, limit=100_000)]

    return assigned_ids


def _reviewed(value: str | None) -> bool | None:
    """The "reviewed" filter: true (reviewed calls only), false (not reviewed yet), empty (either)."""
    v = (value or "").strip().lower()
    if v in ("", "any"):
        return None
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    raise StoreError(None, f"reviewed must be true, false or empty, not {value!r}")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _assigned_rows(con: Any, ids: list[str], f: QueueFilter) -> tuple[list[dict], int]:
    where, params = ["call_id IN (SELECT unnest(?::VARCHAR[]))"], [ids]
    if f.agents:
        where.append("agent_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(f.agents))
    sql = (
        "SELECT call_id, file_name, agent_id, queue, started_at, round(duration_s, 1) AS duration_s, "
        "round(percent, 1) AS percent, grade, flag_reasons, "
        "EXISTS (SELECT 1 FROM latest_reviews r WHERE r.call_id = s.call_id) AS reviewed "
        f"FROM call_summary s WHERE {' AND '.join(where)}"
    )
    total = int(con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
    found = rows(con, sql + " ORDER BY percent ASC NULLS FIRST, call_id LIMIT ? OFFSET ?", params + [f.limit, f.offset])
    return found, total


@router.get("/queue")
def queue_page(
    request: Request,
    user: Annotated[User, Depends(current_user)],
    tab: str = "flagged",
    since: str | None = None,
    until: str | None = None,
    agent: str | None = None,
    queue: str | None = None,
    reason: str | None = None,
    grade: str | None = None,
    unreviewed: bool = False,
    reviewed: str | None = None,
    assigned: bool = False,
    sort: str = "worst",
    page: int = 1,
    sample: str | None = None,
) -> Response:
    page = max(1, page)
    agents = _split(agent)
    if user.role == "agent":
        agents = (user.agent_id or "\0no agent id",)  # their own calls, whatever the filter says
    f = QueueFilter(
        since=_day(since, "since"),
        until=_day(until, "until"),
        agents=agents,
        queues=_split(queue),
        reasons=_split(reason),
        grades=_split(grade),
        unreviewed=unreviewed,
        reviewed=_reviewed(reviewed),
        # an agent is never assigned calls to review: the filter is the reviewers'
        assigned_to=user.username if assigned and user.can_review else None,
        sort=sort if sort in SORTS else "worst",
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    ).validate()
    assigned = _assignments()
    samples: list[dict] = []
    with read_db(request) as con:
        if tab == "samples":
            samples = rows(con, "SELECT * FROM samples ORDER BY created_at DESC, sample_id LIMIT 100")
            sample = sample or (samples[0]["sample_id"] if samples else None)
            sql = (
                "SELECT s.call_id, s.file_name, s.agent_id, s.queue, s.started_at, "
                "round(s.duration_s, 1) AS duration_s, "
                "round(s.percent, 1) AS percent, s.grade, s.flag_reasons, sc.stratum, "
                "EXISTS (SELECT 1 FROM latest_reviews r WHERE r.call_id = s.call_id) AS reviewed "
                "FROM sample_calls sc JOIN call_summary s USING (call_id) WHERE sc.sample_id = ? "
                + ("AND s.agent_id = ? " if user.role == "agent" else "")
            )
            params: list[Any] = [sample] + ([agents[0]] if user.role == "agent" else [])
            total = int(con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
            calls = rows(con, sql + "ORDER BY sc.draw LIMIT ? OFFSET ?", params + [f.limit, f.offset])
        elif tab == "mine" and assigned is not None:
            calls, total = _assigned_rows(con, list(assigned(con, user.username)), f)
        else:
            tab = "flagged"
            res, total = flagged_page_counted(con, f)
            calls = [dict(zip(res.columns, r)) for r in res.rows]
    query = {k: v for k, v in request.query_params.items() if k != "page"}
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "queue.html",
        {
            "tab": tab,
            "calls": calls,
            "total": total,
            "page": page,
            "pages": pages,
            "prev_href": f"/queue?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next_href": f"/queue?{urlencode({**query, 'page': page + 1})}" if page < pages else None,
            "filters": {
                "since": since or "",
                "until": until or "",
                "agent": "" if user.role == "agent" else agent or "",
                "queue": queue or "",
                "reason": reason or "",
                "grade": grade or "",
                "reviewed": "false" if f.unreviewed or f.reviewed is False else "true" if f.reviewed else "",
                "assigned": f.assigned_to is not None,
                "sort": f.sort,
            },
            "sorts": list(SORTS),
            "grades": GRADES,
            "samples": samples,
            "sample": sample,
            "has_assignments": assigned is not None,
        },
    )
