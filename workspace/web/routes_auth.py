"""Log in and out; `/` sends a logged-in user to the queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from callqa.workspace.web.auth import client_address, current_user, set_session
from callqa.workspace.web.db import read_db
from callqa.workspace.web.render import render
from callqa.workspace.web.users import User, get_user

router = APIRouter()


def _local(target: str | None) -> str:
    """Only a path on this site after login: `//evil.example` or `https://...` would be an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/queue") -> Response:
    return render(request, "login.html", {"error": None, "next": _local(next), "username": ""})


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/queue")) -> Response:
    app = request.app.state
    client = client_address(request)
    username = username.strip()
    wait = app.limiter.wait_s(username, client)
    if wait > 0:
        msg = f"too many failed logins for this user from your address: try again in {int(wait) + 1} s"
        return render(request, "login.html", {"error": msg, "next": _local(next), "username": username}, 429)
    with read_db(request) as con:
        user = get_user(con, username) if username else None
    ok = app.passwords.verify(user.password_hash if user else None, password)  # always hashes: no timing tell
    if not ok or user is None or user.disabled:
        app.limiter.failed(username, client)
        msg = "wrong user name or password, or the account is disabled"
        return render(request, "login.html", {"error": msg, "next": _local(next), "username": username}, 401)
    app.limiter.succeeded(username, client)
    set_session(request, app.sessions.logged_in(user.username, user.password_hash))
    return RedirectResponse(_local(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    set_session(request, None)
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(
    user: Annotated[User, Depends(current_user)],
) -> Response:
    return RedirectResponse("/queue", status_code=303)
