"""Users, for admins: list, add, disable/enable, set a new password. Every change names the admin."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from callqa.pipeline.store import StoreError
from callqa.workspace.web.auth import require_role
from callqa.workspace.web.db import read_db, write_db
from callqa.workspace.web.render import NavItem, render
from callqa.workspace.web.users import ROLES, User, add_user, list_users, set_disabled, set_password

router = APIRouter(prefix="/admin")
NAV = [NavItem("Users", "/admin/users", ("admin",), order=90)]


def _back(notice: str) -> Response:
    return RedirectResponse(f"/admin/users?notice={quote(notice)}", status_code=303)


def _users_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    with read_db(request) as con:
        users = list_users(con)
    return render(request, "users.html", {"users": users, "roles": ROLES, "error": error}, status)


@router.get("/users")
def users_page(request: Request, admin: Annotated[User, Depends(require_role("admin"))]) -> Response:
    return _users_page(request)


@router.post("/users")
def create_user(
    request: Request,
    admin: Annotated[User, Depends(require_role("admin"))],
    username: str = Form(...),
    role: str = Form(...),
    password: str = Form(...),
    display_name: str = Form(""),
    agent_id: str = Form(""),
) -> Response:
    try:
        pw_hash = request.app.state.passwords.hash(password)
        with write_db(request) as con:
            add_user(
                con, username.strip(), role, pw_hash, actor=admin.username, display_name=display_name, agent_id=agent_id
            )
    except StoreError as e:
        return _users_page(request, str(e), 400)
    return _back(f"user {username.strip()} added")


@router.post("/users/{username}/disable")
def disable(
    request: Request, admin: Annotated[User, Depends(require_role("admin"))], username: str, enable: bool = Form(False)
):
    if username == admin.username and not enable:
        return _users_page(request, "you cannot disable your own account", 400)
    try:
        with write_db(request) as con:
            set_disabled(con, username, not enable, actor=admin.username)
    except StoreError as e:
        return _users_page(request, str(e), 400)
    return _back(f"user {username} {'enabled' if enable else 'disabled'}")


@router.post("/users/{username}/password")
def reset_password(
    request: Request, admin: Annotated[User, Depends(require_role("admin"))], username: str, password: str = Form(...)
) -> Response:
    try:
        pw_hash = request.app.state.passwords.hash(password)
        with write_db(request) as con:
            set_password(con, username, pw_hash, actor=admin.username)
    except StoreError as e:
        return _users_page(request, str(e), 400)
    return _back(f"password of {username} reset (their open sessions have ended)")
