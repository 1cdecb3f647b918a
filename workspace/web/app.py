"""`callqa serve`: the QA workspace as a web application (FastAPI, Jinja2 templates, per-request DuckDB).

`create_app(settings, db_path)` builds one app; everything it keeps (the database handle, the session
codec, the login limiter, the templates, the navigation) is on `app.state`, so tests build as many
independent apps as they like. Routes live in the modules of ROUTER_MODULES, each exposing `router`
(a fastapi.APIRouter; or `make_router(core_deps(settings))`) and optionally `NAV` (a list of
render.NavItem); a module listed in OPTIONAL_ROUTERS is included when it is installed (the review
workflow plugs in that way).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from callqa.config.settings import Settings
from callqa.pipeline.store import StoreError, StoreLocked
from callqa.workspace.web.auth import COOKIE, LoginLimiter, LoginRequired, SessionCodec, session_gate
from callqa.workspace.web.db import Database, release_held
from callqa.workspace.web.keys import Passwords, load_secret
from callqa.workspace.web.render import environment, render

ROUTER_MODULES = (
    "callqa.workspace.web.routes_auth",
    "callqa.workspace.web.routes_queue",
    "callqa.workspace.web.routes_call",
    "callqa.workspace.web.routes_dashboard",
    "callqa.workspace.web.routes_admin",
    "callqa.workspace.web.routes_workflow",
)
OPTIONAL_ROUTERS = {"callqa.workspace.web.routes_workflow"}
STATIC = Path(__file__).parent / "static"

# Inline scripts stay allowed: plotly's figures and the report's transcript rows carry them. Every value
# a user or a recording supplies is escaped by the templates, never placed in a script.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'"
)


@dataclass(frozen=True)
class WebOptions:
    session_hours: float = 12.0  # a session ends this long after login
    login_failures: int = 5  # failed logins per user name and client address ...
    login_window_s: float = 300.0  # ... within this window, then refused until the window passes
    secret_file: Path | None = None  # None: beside the audit key ($XDG_CONFIG_HOME/callqa/web.key)
    secure_cookies: bool = False  # set when served over TLS (behind a reverse proxy): cookies only over https
    lock_timeout_s: float | None = None  # waiting for the batch's lock; None: the store's default


def _include_routers(app: FastAPI) -> None:
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if name in OPTIONAL_ROUTERS and e.name == name:
                continue
            raise
        router = getattr(module, "router", None)
        if router is None and hasattr(module, "make_router"):
            # a router built from the core's pieces (routes_workflow: make_router(core_deps(settings)))
            router = module.make_router(module.core_deps(app.state.settings))
        app.include_router(router)
        app.state.nav.extend(getattr(module, "NAV", []))


def _is_page(request: Request) -> bool:
    # a GET is a page to go back to after login; a POST without a session has nothing to come back to
    return request.method in ("GET", "HEAD")


def create_app(
    settings: Settings, db_path: Path | str, options: WebOptions = WebOptions(), clock: Callable[[], float] = time.time
) -> FastAPI:
    """The workspace app over the database at db_path (opened per request, never held)."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise StoreError(db_path, "no such database file (check --db; `callqa run` or `callqa demo` creates one)")
    secret = load_secret(options.secret_file)
    app = FastAPI(
        title="callqa workspace",
        dependencies=[Depends(session_gate)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.options = options
    app.state.clock = clock
    app.state.db = Database(db_path, options.lock_timeout_s)
    app.state.sessions = SessionCodec(secret, options.session_hours * 3600, clock)
    app.state.passwords = Passwords(secret)
    app.state.limiter = LoginLimiter(options.login_failures, options.login_window_s, clock)
    app.state.public_paths = {"/login"}
    app.state.nav = []
    app.state.templates = environment()
    with app.state.db.write():
        pass  # migrate once at start (users table), so read-only requests find the current schema
    _include_routers(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _install_handlers(app)
    return app


def _install_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def headers_and_cookie(request: Request, call_next: Callable) -> Response:
        try:
            response = await call_next(request)
        finally:
            release_held(request)  # a handler that never read: the session check's connection
        state = request.state
        if getattr(state, "session_changed", False) and getattr(state, "session", None) is not None:
            secure = app.state.options.secure_cookies or request.url.scheme == "https"
            response.set_cookie(
                COOKIE,
                app.state.sessions.dumps(state.session),
                max_age=int(app.state.options.session_hours * 3600),
                httponly=True,
                samesite="strict",
                secure=secure,
                path="/",
            )
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _is_page(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return HTMLResponse("login required", status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not hasattr(request.state, "session"):  # before the gate ran (an unknown path): no page chrome
            return HTMLResponse(f"{exc.status_code}", status_code=exc.status_code)
        return render(request, "error.html", {"status": exc.status_code, "message": exc.detail}, exc.status_code)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> Response:
        # the batch kept the file locked past the timeout: a busy server, not a bad request
        status = 503 if isinstance(exc, StoreLocked) else 400
        if not hasattr(request.state, "session"):  # the gate itself could not read the users table
            return HTMLResponse(f"{status}: {exc}", status_code=status)
        return render(request, "error.html", {"status": status, "message": str(exc)}, status)
