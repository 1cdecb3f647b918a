"""The web workspace: `callqa serve` and `callqa users add/disable/enable/reset-password/list`.

Passwords come from a hidden prompt (typed twice) or the first line of --password-file, never from an
option's value (it would sit in the shell history and the process list) and are never echoed. The CLI
records the OS user as the actor of its changes.
"""

from __future__ import annotations

from pathlib import Path

import typer

from callqa.cli.common import CONFIG_OPTION, DB_OPTION, _fail, _table, console
from callqa.pipeline.types import CallQAError

users_app = typer.Typer(no_args_is_help=True, help="Users of the web workspace (callqa serve).")
PASSWORD_FILE = typer.Option(None, "--password-file", help="read the password from this file's first line")


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise CallQAError(password_file, f"cannot read the password file: {e.strerror}") from e
        if not lines or not lines[0]:
            raise CallQAError(password_file, "the password file is empty")
        return lines[0]
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _passwords():
    from callqa.workspace.web.keys import Passwords, load_secret

    return Passwords(load_secret())


def _with_db(db: Path):
    from callqa.pipeline import store

    if not db.is_file():
        raise CallQAError(db, "no such database file (check --db; `callqa run` creates one)")
    return store.open_db(db)


@users_app.command("add")
def add(
    username: str = typer.Argument(..., help="the login name"),
    role: str = typer.Option(..., "--role", help="admin | supervisor | reviewer | agent | analyst"),
    name: str | None = typer.Option(None, "--name", help="display name"),
    agent_id: str | None = typer.Option(None, "--agent-id", help="for agents: the agent_id their calls carry"),
    password_file: Path | None = PASSWORD_FILE,
    db: Path = DB_OPTION,
) -> None:
    """Add a user; the password is asked for (hidden) unless --password-file gives it."""
    from callqa.workspace.ledger import os_user
    from callqa.workspace.web.users import add_user, check_role, check_username

    try:
        check_username(username)
        check_role(role, agent_id)
        pw_hash = _passwords().hash(_password(password_file))
        with _with_db(db) as con:
            add_user(con, username, role, pw_hash, actor=os_user(), display_name=name, agent_id=agent_id)
    except CallQAError as e:
        _fail(e)
    console.print(f"user {username} added as {role}", markup=False)


@users_app.command("disable")
def disable(username: str = typer.Argument(...), db: Path = DB_OPTION) -> None:
    """Disable a user: they cannot log in, and their open sessions end at their next request."""
    _set_disabled(username, True, db)


@users_app.command("enable")
def enable(username: str = typer.Argument(...), db: Path = DB_OPTION) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False, db)


def _set_disabled(username: str, disabled: bool, db: Path) -> None:
    from callqa.workspace.ledger import os_user
    from callqa.workspace.web.users import set_disabled

    try:
        with _with_db(db) as con:
            set_disabled(con, username, disabled, actor=os_user())
    except CallQAError as e:
        _fail(e)
    console.print(f"user {username} {'disabled' if disabled else 'enabled'}", markup=False)


@users_app.command("reset-password")
def reset_password(
    username: str = typer.Argument(...), password_file: Path | None = PASSWORD_FILE, db: Path = DB_OPTION
):
    """Set a new password (asked for, hidden); the user's open sessions end."""
    from callqa.workspace.ledger import os_user
    from callqa.workspace.web.users import get_user, set_password

    try:
        with _with_db(db) as con:
            if get_user(con, username) is None:
                raise CallQAError(None, f"no user {username!r} (see `callqa users list`)")
        pw_hash = _passwords().hash(_password(password_file))
        with _with_db(db) as con:
            set_password(con, username, pw_hash, actor=os_user())
    except CallQAError as e:
        _fail(e)
    console.print(f"password of {username} reset", markup=False)


@users_app.command("list")
def list_cmd(db: Path = DB_OPTION) -> None:
    """The users, their roles and whether they are disabled (never the password hashes)."""
    from callqa.workspace.web.users import list_users

    try:
        with _with_db(db) as con:
            users = list_users(con)
    except CallQAError as e:
        _fail(e)
    rows = [(u.username, u.display_name, u.role, u.agent_id, "disabled" if u.disabled else "active") for u in users]
    console.print(_table(["user", "name", "role", "agent id", "status"], rows, title=f"{len(rows)} users"))


def serve(
    db: Path = DB_OPTION,
    config: Path | None = CONFIG_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (keep 127.0.0.1 behind a reverse proxy)"),
    port: int = typer.Option(8000, "--port"),
    session_hours: float = typer.Option(12.0, "--session-hours", help="a session ends this long after login"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="send cookies over https only (TLS proxy)"),
    proxy: bool = typer.Option(False, "--proxy", help="trust X-Forwarded-For/-Proto from 127.0.0.1 (reverse proxy)"),
) -> None:
    """Serve the QA workspace (queue, call pages with the player, reviews, dashboard, SQL) on the database."""
    import uvicorn

    from callqa.config.settings import load_settings
    from callqa.workspace.web.app import WebOptions, create_app

    try:
        app = create_app(
            load_settings(config), db, WebOptions(session_hours=session_hours, secure_cookies=secure_cookies)
        )
    except CallQAError as e:
        _fail(e)
    console.print(f"callqa workspace on http://{host}:{port}/ (database {db}; Ctrl-C stops)", markup=False)
    uvicorn.run(app, host=host, port=port, proxy_headers=proxy, forwarded_allow_ips="127.0.0.1" if proxy else None)
