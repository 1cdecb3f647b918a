"""Sessions, login throttling, CSRF, and the dependencies routes use to know who is asking.

The session is a cookie signed with a key derived from the server secret (itsdangerous): a session id,
the CSRF token, and, once logged in, the user name, the fingerprint of their password hash and the
login time. It expires a fixed time after login (WebOptions.session_hours); a disabled user or a reset
password ends it at the next request, because the user is read from the database on every request.

Every request passes `session_gate` (an app-wide dependency, so a router added later is covered too):
it loads or starts the session, refuses any POST whose CSRF token is missing or wrong (403), and
requires a logged-in, enabled user on every path but the public ones (login, static files).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.concurrency import run_in_threadpool

from callqa.workspace.web.db import hold_read, release_held
from callqa.workspace.web.keys import derive, fingerprint
from callqa.workspace.web.users import User, get_user

COOKIE = "callqa_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """No valid session: pages redirect to the login page, other requests get 401."""


@dataclass(frozen=True)
class Session:
    sid: str
    csrf: str
    username: str | None = None
    pw: str | None = None  # fingerprint of the password hash at login
    login_at: float | None = None

    @staticmethod
    def new() -> Session:
        return Session(secrets.token_urlsafe(16), secrets.token_urlsafe(32))


class SessionCodec:
    """Signs and reads session cookies; a session older than max_age_s since login is no session."""

    def __init__(self, secret: bytes, max_age_s: float, clock: Callable[[], float]) -> None:
        self._serializer = URLSafeSerializer(derive(secret, "session").hex(), salt="callqa-session")
        self.max_age_s = max_age_s
        self.clock = clock

    def dumps(self, s: Session) -> str:
        return self._serializer.dumps(asdict(s))

    def loads(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
            s = Session(**data)
        except (BadSignature, TypeError, ValueError):
            return None
        if s.username is not None and (s.login_at is None or self.clock() - s.login_at > self.max_age_s):
            return None  # expired: the caller starts a fresh anonymous session
        return s

    def logged_in(self, username: str, password_hash: str) -> Session:
        """A new session id and CSRF token at login, so a token seen before login is worth nothing after."""
        return replace(Session.new(), username=username, pw=fingerprint(password_hash), login_at=self.clock())


class LoginLimiter:
    """At most `max_failures` failed logins per (user name, client address) in `window_s` seconds."""

    MAX_KEYS = 100_000  # bounded memory under a flood of made-up names

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float]) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.get(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        return q

    def wait_s(self, username: str, client: str) -> float:
        """Seconds until this user may try again from this address (0: now)."""
        key, now = (username.lower(), client), self.clock()
        with self._lock:
            q = self._recent(key, now)
            return self.window_s - (now - q[0]) if len(q) >= self.max_failures else 0.0

    def failed(self, username: str, client: str) -> None:
        key, now = (username.lower(), client), self.clock()
        with self._lock:
            if len(self._failures) >= self.MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))
            q = self._recent(key, now)
            q.append(now)
            self._failures[key] = q

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), client), None)


def client_address(request: Request) -> str:
    # behind a reverse proxy uvicorn's --proxy-headers/--forwarded-allow-ips put the real client here
    return request.client.host if request.client else "unknown"


def session_of(request: Request) -> Session:
    return request.state.session


def set_session(request: Request, s: Session | None) -> None:
    """Replace the request's session (login, logout); the response middleware writes the cookie."""
    request.state.session = s or Session.new()
    request.state.session_changed = True


async def _posted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request) -> None:
    """403 unless the request carries this session's CSRF token (form field `csrf_token` or header)."""
    token = await _posted_token(request)
    if not token or not hmac.compare_digest(token, session_of(request).csrf):
        raise HTTPException(403, "the form's security token is missing or out of date: reload the page and retry")


def _load_user(request: Request, s: Session) -> User | None:
    """The session's user, read on the connection the handler then reuses (db.hold_read); a worker thread."""
    if s.username is None:
        return None
    try:
        user = get_user(hold_read(request), s.username)
    except BaseException:
        release_held(request)
        raise
    if user is None or user.disabled or fingerprint(user.password_hash) != s.pw:
        release_held(request)  # no handler will run for this session: free the file now
        return None
    return user


async def session_gate(request: Request) -> None:
    """App-wide: load the session, check CSRF on every unsafe method, require a user off the public paths."""
    state = request.app.state
    s = state.sessions.loads(request.cookies.get(COOKIE))
    request.state.session_changed = s is None
    request.state.session = s or Session.new()
    request.state.user = None
    if request.method not in SAFE_METHODS:
        await check_csrf(request)
    # in the threadpool: opening may wait for the lock, which must never block the event loop
    user = await run_in_threadpool(_load_user, request, request.state.session)
    if user is None and request.state.session.username is not None:
        set_session(request, None)  # disabled, deleted or password reset since login
    request.state.user = user
    if user is None and request.url.path not in state.public_paths:
        raise LoginRequired()


def current_user(request: Request) -> User:
    """Dependency: the logged-in user (session_gate has already refused anonymous requests)."""
    user = getattr(request.state, "user", None)
    if user is None:
        raise LoginRequired()
    return user


def require_role(*roles: str) -> Callable[..., User]:
    """Dependency factory: the logged-in user if their role is one of `roles` (admin always passes), else 403."""

    def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role != "admin" and user.role not in roles:
            raise HTTPException(403, f"this page is not open to the {user.role} role")
        return user

    return dependency


def now_s() -> float:
    return time.time()
