"""Web pages for the review workflow, calibration sessions and assignment (callqa serve).

The core app hands in what it owns through `WorkflowDeps`: the dependency that yields the logged-in user
(an object or mapping with `username`, `role`, `agent_id`, as the users table has them), the CSRF check
run on every POST and the token its forms carry, and the settings. `make_router(deps)` returns the
router to include. Every write names the logged-in user (as the Actor of callqa.workspace.workflow);
the rules themselves (who may move which state, blind scoring) are the domain modules', so the pages
cannot bypass them; an agent sees only their own calls (others answer 404, as if absent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from callqa.config.settings import Settings
from callqa.pipeline.redact import options_from_settings
from callqa.pipeline.types import CallQAError
from callqa.workspace import assignment, workflow
from callqa.workspace import calibration_sessions as cs
from callqa.workspace.web.db import read_db, write_db
from callqa.workspace.web.render import NavItem
from callqa.workspace.workflow import Actor

TEMPLATES_DIR = Path(__file__).parent / "templates"
STAFF = frozenset({"admin", "supervisor", "reviewer"})
OVERSEERS = frozenset({"admin", "supervisor"})
# the core app's bar; the roles are those `need` admits on each page
NAV = [
    NavItem("Assigned to me", "/workflow/mine", tuple(sorted(STAFF)), order=20),
    NavItem("Calibration", "/calibration", tuple(sorted(STAFF)), order=30),
    NavItem("Disputes", "/workflow/disputes", tuple(sorted(OVERSEERS)), order=40),
    NavItem("Assign", "/assign", tuple(sorted(OVERSEERS)), order=45),
]


@dataclass(frozen=True)
class WorkflowDeps:
    current_user: Callable[..., Any]  # a FastAPI dependency: the logged-in user, or it redirects to login
    csrf_check: Callable[..., Any]  # a FastAPI dependency that refuses a POST without its valid token
    csrf_token: Callable[[Request], str]  # the token a form of this session carries
    settings: Settings
    csrf_field: str = "csrf_token"
    templates: Jinja2Templates | None = None  # the core's (its base template); else this folder's own
    base_template: str | None = None  # the core's base page; my pages fill its `content` block
    page_context: Callable[[Request], dict[str, Any]] | None = None  # what the core's base page needs


def core_deps(settings: Settings) -> WorkflowDeps:
    """The deps from the core app's auth module (its session gate also checks CSRF on every POST)."""
    from callqa.workspace.web import auth, render

    return WorkflowDeps(
        auth.current_user,
        auth.check_csrf,
        lambda r: auth.session_of(r).csrf,
        settings,
        auth.CSRF_FIELD,
        base_template="workflow_base.html",  # base.html with the app's navigation bar
        page_context=render.base_context,
    )


def actor_of(user: Any) -> Actor:
    get = user.get if isinstance(user, dict) else lambda k: getattr(user, k, None)
    return Actor(str(get("username")), str(get("role")), get("agent_id"))


def _lines(text: str | None, commas: bool = False) -> list[str]:
    """One entry a line (and, for user names, a comma): file names may hold commas."""
    text = (text or "").replace(",", "\n") if commas else (text or "")
    return [x.strip() for x in text.splitlines() if x.strip()]


def panel_context(con: Any, call_id: str, user: Any) -> dict[str, Any]:
    """What workflow_panel.html needs, for the core's call page to include it (add csrf_field/csrf_token)."""
    me = user if isinstance(user, Actor) else actor_of(user)
    current = workflow.state_of(con, call_id)
    # call_id alone in the WHERE: DuckDB then reads the call's rows through the criterion_results_call_id
    # index (migration 0012); a second condition there makes it scan the table (1 M calls: 80-125 ms
    # against 1-4), so the scorecard is picked here
    criteria = sorted(
        r[0]
        for r in con.execute(
            "SELECT criterion_id, scorecard_id, scorecard_version FROM criterion_results WHERE call_id = ?",
            [current.call_id],
        ).fetchall()
        if r[1] == current.scorecard_id and r[2] == current.scorecard_version
    )
    return {
        "current": current,
        "history": workflow.history(con, current.call_id),
        "actions": workflow.allowed_actions(current, me),
        "rules": workflow.RULES,
        "criteria": criteria,
    }


def make_router(deps: WorkflowDeps) -> APIRouter:
    templates = deps.templates or Jinja2Templates(directory=str(TEMPLATES_DIR))
    if deps.templates is not None:  # the core's loader must also find this folder's templates
        loader = templates.env.loader
        from jinja2 import ChoiceLoader, FileSystemLoader

        templates.env.loader = ChoiceLoader([loader, FileSystemLoader(str(TEMPLATES_DIR))]) if loader else None
    router = APIRouter()
    post = {"dependencies": [Depends(deps.csrf_check)]}
    logged_in = Depends(deps.current_user)  # every page: the user, or the core sends them to log in
    redaction = options_from_settings(deps.settings.redaction) if deps.settings.redaction.enabled else None

    def page(request: Request, name: str, me: Actor, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx = {
            **(deps.page_context(request) if deps.page_context else {}),
            "me": me,
            "csrf_field": deps.csrf_field,
            "csrf_token": deps.csrf_token(request),
            "core_base": deps.base_template,
            **ctx,
        }
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    def refused(request: Request, me: Actor, e: Exception, status: int = 400) -> HTMLResponse:
        return page(request, "workflow_error.html", me, status, error=str(e))

    def need(me: Actor, roles: frozenset[str]) -> None:
        if me.role not in roles:
            raise HTTPException(403, f"this page is for {', '.join(sorted(roles))}")

    def own_call_or_404(con: Any, me: Actor, call_id: str) -> None:
        row = con.execute("SELECT agent_id FROM calls WHERE call_id = ?", [call_id]).fetchone()
        if row is None or (me.role == "agent" and (me.agent_id is None or row[0] != me.agent_id)):
            raise HTTPException(404, "no such call")
        if me.role == "analyst":
            raise HTTPException(403, "analysts read through the SQL page")

    # ------------------------------------------------------------------ workflow

    @router.get("/workflow/call/{call_id}", response_class=HTMLResponse)
    def call_panel(request: Request, call_id: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        with read_db(request) as con:
            own_call_or_404(con, me, call_id)
            try:
                ctx = panel_context(con, call_id, me)
            except CallQAError as e:
                return refused(request, me, e, 404)
        return page(request, "workflow_call.html", me, **ctx)

    @router.post("/workflow/call/{call_id}/{action}", **post)
    async def call_action(request: Request, call_id: str, action: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        form = await request.form()
        changes_text = str(form.get("changes") or "")
        try:
            with write_db(request) as con:
                own_call_or_404(con, me, call_id)
                workflow.transition(
                    con,
                    call_id,
                    action,
                    me,
                    comment=str(form.get("comment") or "") or None,
                    decision=str(form.get("decision") or "") or None,
                    changes=workflow.parse_changes(_lines(changes_text)),
                    scorecard_id=str(form.get("scorecard_id") or "") or None,
                    window_days=deps.settings.workflow.dispute_window_days,
                    key_file=deps.settings.audit.key_file,
                    redaction=redaction,
                )
        except CallQAError as e:
            return refused(request, me, e, 403 if " may not " in str(e) or "not yours" in str(e) else 400)
        return RedirectResponse(f"/workflow/call/{call_id}", status_code=303)

    @router.get("/workflow/disputes", response_class=HTMLResponse)
    def disputes(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, OVERSEERS)
        with read_db(request) as con:
            rows = workflow.calls_in_state(con, "disputed")
            waiting = workflow.calls_in_state(con, "acknowledged")
        return page(request, "workflow_disputes.html", me, disputes=rows, acknowledged=waiting)

    @router.get("/workflow/mine", response_class=HTMLResponse)
    def mine(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        with read_db(request) as con:
            if me.role == "agent":
                shared = workflow.calls_in_state(con, "shared", agent_id=me.agent_id or "\0")
                answered = sorted(
                    (
                        c
                        for state in ("acknowledged", "disputed", "final")
                        for c in workflow.calls_in_state(con, state, agent_id=me.agent_id or "\0")
                    ),
                    key=lambda c: c["since"],
                    reverse=True,
                )
                return page(request, "workflow_mine.html", me, shared=shared, answered=answered, assigned=None)
            need(me, STAFF)
            return page(request, "workflow_mine.html", me, shared=None, assigned=assignment.assigned_to(con, me.name))

    # ------------------------------------------------------------------ calibration

    @router.get("/calibration", response_class=HTMLResponse)
    def sessions(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, STAFF)
        with read_db(request) as con:
            rows = cs.list_sessions(con, None if me.role in OVERSEERS else me.name)
        return page(
            request,
            "calibration_list.html",
            me,
            sessions=rows,
            hide_default=deps.settings.workflow.calibration_hide_machine,
        )

    @router.post("/calibration", **post)
    async def create(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, OVERSEERS)
        form = await request.form()
        try:
            with write_db(request) as con:
                s = cs.create_session(
                    con,
                    str(form.get("name") or ""),
                    _lines(str(form.get("calls") or "")),
                    _lines(str(form.get("reviewers") or ""), commas=True),
                    me,
                    hide_machine=form.get("hide_machine") == "on",
                    key_file=deps.settings.audit.key_file,
                )
        except CallQAError as e:
            return refused(request, me, e)
        return RedirectResponse(f"/calibration/{s.session_id}", status_code=303)

    @router.get("/calibration/{session_id}", response_class=HTMLResponse)
    def session_page(request: Request, session_id: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, STAFF)
        try:
            with read_db(request) as con:
                s = cs.get_session(con, session_id)
                if me.name not in s.reviewers and me.role not in OVERSEERS:
                    raise HTTPException(404, "no such session")
                done = cs.submitted_calls(con, session_id, me.name)
        except CallQAError as e:
            return refused(request, me, e, 404)
        return page(request, "calibration_session.html", me, session=s, done=done)

    @router.get("/calibration/{session_id}/call/{call_id}", response_class=HTMLResponse)
    def score_page(request: Request, session_id: str, call_id: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, STAFF)
        try:
            with read_db(request) as con:
                view = cs.call_view(con, session_id, call_id, me)
                participant = me.name in cs.get_session(con, session_id).reviewers
        except CallQAError as e:
            return refused(request, me, e, 404)
        return page(request, "calibration_score.html", me, view=view, participant=participant)

    @router.post("/calibration/{session_id}/call/{call_id}", **post)
    async def score(request: Request, session_id: str, call_id: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, STAFF)
        form = await request.form()
        verdicts = {k[2:]: str(v) for k, v in form.items() if k.startswith("v:")}
        comments = {k[2:]: str(v) for k, v in form.items() if k.startswith("c:") and str(v).strip()}
        try:
            with write_db(request) as con:
                cs.submit(
                    con,
                    session_id,
                    call_id,
                    me,
                    verdicts,
                    comments,
                    key_file=deps.settings.audit.key_file,
                    redaction=redaction,
                )
        except CallQAError as e:
            return refused(request, me, e)
        return RedirectResponse(f"/calibration/{session_id}/call/{call_id}", status_code=303)

    @router.get("/calibration/{session_id}/results", response_class=HTMLResponse)
    def results_page(request: Request, session_id: str, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, STAFF)
        try:
            with read_db(request) as con:
                res = cs.results(con, session_id, me)
        except CallQAError as e:
            return refused(request, me, e, 403)
        return page(request, "calibration_results.html", me, res=res)

    # ------------------------------------------------------------------ assignment

    @router.get("/assign", response_class=HTMLResponse)
    def assign_page(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, OVERSEERS)
        with read_db(request) as con:
            samples = con.execute(
                "SELECT sample_id, created_at, n_drawn FROM samples ORDER BY created_at DESC LIMIT 20"
            ).fetchall()
            batches = con.execute(
                "SELECT batch_id, created_at, created_by, source, method, n_assigned, n_skipped "
                "FROM assignment_batches ORDER BY created_at DESC LIMIT 20"
            ).fetchall()
        return page(request, "workflow_assign.html", me, samples=samples, batches=batches, result=None)

    @router.post("/assign", **post)
    async def assign_post(request: Request, user: Any = logged_in) -> Response:
        me = actor_of(user)
        need(me, OVERSEERS)
        form = await request.form()
        try:
            with write_db(request) as con:
                sample, day = str(form.get("sample_id") or "").strip(), str(form.get("day") or "").strip()
                if bool(sample) == bool(day):
                    raise workflow.WorkflowError(None, "choose a sample or a day, not both")
                if sample:
                    calls, source = assignment.sample_calls(con, sample), f"sample:{sample}"
                else:
                    try:
                        d = date.fromisoformat(day)
                    except ValueError as e:
                        raise workflow.WorkflowError(None, f"day {day!r}: give YYYY-MM-DD") from e
                    calls, source = assignment.queue_calls(con, d), f"queue:{d.isoformat()}"
                method = str(form.get("method") or "round_robin")
                covers = assignment.parse_queues([x for x in str(form.get("covers") or "").splitlines() if x.strip()])
                b = assignment.assign(
                    con,
                    calls,
                    _lines(str(form.get("reviewers") or ""), commas=True),
                    me,
                    source,
                    method,
                    covers,
                    form.get("reassign") == "on",
                )
        except CallQAError as e:
            return refused(request, me, e)
        return page(request, "workflow_assign.html", me, samples=[], batches=[], result=b)

    return router
