"""The dashboard (the static report's figures, queried live) and the analyst's read-only SQL page."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import duckdb
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from callqa.pipeline.store import StoreError
from callqa.workspace.audit.labels import LANGS, labels
from callqa.workspace.report import queries
from callqa.workspace.report.kpi_panels import PANEL_PERIODS, kpi_panels_html
from callqa.workspace.report.queries import Period
from callqa.workspace.report.site import _dashboard  # the report's own dashboard data, served live
from callqa.workspace.sandbox import ReadOnlyViolation, check_read_only, first_line
from callqa.workspace.web.auth import current_user, require_role
from callqa.workspace.web.db import analyst_db
from callqa.workspace.web.render import NavItem, render
from callqa.workspace.web.users import User

router = APIRouter()
DASHBOARD_ROLES = ("supervisor", "reviewer", "analyst")
SQL_ROLES = ("supervisor", "analyst")
NAV = [NavItem("Dashboard", "/dashboard", DASHBOARD_ROLES), NavItem("SQL", "/sql", SQL_ROLES)]
MAX_ROWS = 500


class _CallLinks:
    """Every call links to its live page (the report maps only the calls it wrote pages for)."""

    def get(self, call_id: str, default: Any = None) -> str:
        return f"/calls/{call_id}"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as e:
        raise StoreError(None, f"a date must look like 2026-11-20, not {value!r}") from e


@router.get("/plotly.min.js")
def plotly_js(request: Request, user: Annotated[User, Depends(current_user)]) -> Response:
    # plotly.js ships inside the plotly package: served from there, no CDN (works with no internet)
    state = request.app.state
    if getattr(state, "plotly_js", None) is None:
        import plotly.offline

        state.plotly_js = plotly.offline.get_plotlyjs().encode("utf-8")
    return Response(state.plotly_js, media_type="text/javascript", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/dashboard")
def dashboard(
    request: Request,
    user: Annotated[User, Depends(require_role(*DASHBOARD_ROLES))],
    since: str | None = None,
    until: str | None = None,
    kpi_period: str = "week",
    lang: str = "en",
) -> Response:
    period = Period(_day(since), _day(until))
    if kpi_period not in PANEL_PERIODS:
        raise StoreError(None, f"kpi_period must be week or month, not {kpi_period!r}")
    if lang not in LANGS:
        raise StoreError(None, f"lang must be en or zh, not {lang!r}")
    with analyst_db(request) as con:
        scorecard, version = queries.main_scorecard(con)
        dash = _dashboard(con, period, scorecard, version, _CallLinks())  # type: ignore[arg-type]
        panels = kpi_panels_html(
            con,
            period,
            kpi_period=kpi_period,
            settings=request.app.state.settings.kpi,
            lang=lang,
            switch=_switch(since, until, kpi_period, lang),
        )
    return render(
        request,
        "dashboard.html",
        {
            **dash,
            "since": since or "",
            "until": until or "",
            "period_label": period.label,
            "scorecard": scorecard,
            "scorecard_version": version,
            "kpi_panels": panels,
            "kpi_period": kpi_period,
            "lang": lang,
        },
    )


def _switch(since: str | None, until: str | None, kpi_period: str, lang: str) -> list[dict[str, Any]]:
    """Links to the same dashboard per week / per month and in English / Chinese (the current one not a link)."""
    base = {k: v for k, v in (("since", since), ("until", until)) if v}
    lab = labels(lang)
    out = []
    for p, word in (("week", lab["per_week"]), ("month", lab["per_month"])):
        out.append(
            {
                "label": word,
                "on": p == kpi_period,
                "href": "/dashboard?" + urlencode({**base, "kpi_period": p, "lang": lang}),
            }
        )
    for lg, word in (("en", "English"), ("zh", "中文")):
        out.append(
            {
                "label": word,
                "on": lg == lang,
                "href": "/dashboard?" + urlencode({**base, "kpi_period": kpi_period, "lang": lg}),
            }
        )
    return out


def _page(request: Request, query: str, **extra: Any) -> Response:
    ctx = {"query": query, "max_rows": MAX_ROWS, "error": None, "columns": [], "rows": [], "shown": 0, "total": 0}
    return render(request, "sql.html", {**ctx, "truncated": False, **extra}, extra.pop("status", 200))


@router.get("/sql")
def sql_page(request: Request, user: Annotated[User, Depends(require_role(*SQL_ROLES))]) -> Response:
    return _page(request, "SELECT * FROM flagged_queue LIMIT 20")


@router.post("/sql")
def run_sql(
    request: Request, user: Annotated[User, Depends(require_role(*SQL_ROLES))], query: str = Form("")
) -> Response:
    try:
        check_read_only(query)
        with analyst_db(request) as con:
            cur = con.execute(query)
            columns = [d[0] for d in cur.description] if cur.description else []
            got = cur.fetchmany(MAX_ROWS + 1)
    except ReadOnlyViolation as e:
        return _page(request, query, error=str(e).replace("`callqa sql`", "this page"), status=403)
    except duckdb.PermissionException as e:
        msg = f"refused: this page reads the database only, no files, URLs or extensions ({first_line(e)})"
        return _page(request, query, error=msg, status=403)
    except (duckdb.Error, StoreError) as e:
        return _page(request, query, error=first_line(e), status=400)
    return _page(
        request,
        query,
        columns=columns,
        rows=got[:MAX_ROWS],
        shown=min(len(got), MAX_ROWS),
        total=f"{MAX_ROWS}+" if len(got) > MAX_ROWS else len(got),
        truncated=len(got) > MAX_ROWS,
    )
