"""Templates: one Jinja2 environment per app (autoescape on), and the render helper every route uses.

Templates live in workspace/web/templates and extend `base.html` (blocks: title, style, body,
script). `render` adds what every page needs: the user, the CSRF token (`csrf_input` is the hidden
form field), the navigation for the user's role, flash messages from the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from callqa import __version__
from callqa.workspace.report.fmt import fmt_dt, fmt_num, fmt_s
from callqa.workspace.web.auth import CSRF_FIELD

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    roles: tuple[str, ...]  # who sees the link: the roles the route admits (its require_role / need)
    admin: bool = True  # admins see it too (False: a link for one role's view, as the agent's "My calls")
    order: int = 50  # place in the bar, lowest first (modules add their links in import order)


def environment(extra: list[Path] | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES)] + [str(p) for p in extra or []]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(dt=fmt_dt, num=fmt_num, secs=fmt_s)
    return env


def nav_for(request: Request) -> list[NavItem]:
    user = getattr(request.state, "user", None)
    if user is None:
        return []
    shown = [n for n in request.app.state.nav if user.role in n.roles or (user.role == "admin" and n.admin)]
    return sorted(shown, key=lambda n: n.order)


def base_context(request: Request) -> dict[str, Any]:
    """What base.html needs on every page (the workflow pages, rendered by their own router, use it too)."""
    session = request.state.session
    return {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": session.csrf,
        "csrf_input": Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(session.csrf)}">'),
        "nav": nav_for(request),
        "path": request.url.path,
        "version": __version__,
        "db_name": request.app.state.db.path.name,
        "notice": request.query_params.get("notice"),
    }


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """The named template rendered for this request, as an HTML response."""
    ctx = {**base_context(request), **(context or {})}
    html = request.app.state.templates.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
