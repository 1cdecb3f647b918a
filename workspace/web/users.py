"""The workspace's users (table `users`, migration 0009): who may log in, with which role.

Roles: admin (everything, users), supervisor (queue, calls, reviews, dashboard, SQL), reviewer (queue,
calls, reviews, dashboard), analyst (read-only: queue, calls, dashboard, SQL), agent (only the calls
whose agent_id is theirs; cannot review). Every change names who made it (`actor`: the logged-in user
in the web, the OS user on the CLI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from callqa.pipeline.store import StoreError

ROLES = ("admin", "supervisor", "reviewer", "agent", "analyst")
REVIEW_ROLES = ("admin", "supervisor", "reviewer")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_COLUMNS = "username, display_name, role, agent_id, password_hash, disabled, created_at, updated_at"


class UserError(StoreError):
    stage = "users"


@dataclass(frozen=True)
class User:
    username: str
    display_name: str | None
    role: str
    agent_id: str | None
    disabled: bool
    password_hash: str = field(repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def can_review(self) -> bool:
        return self.role in REVIEW_ROLES


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_username(username: str) -> str:
    if not _USERNAME.match(username or ""):
        raise UserError(
            None,
            f"bad user name {username!r}: 1-64 letters, digits, '.', '_', '@' or '-', first a letter or digit",
        )
    return username


def check_role(role: str, agent_id: str | None) -> None:
    if role not in ROLES:
        raise UserError(None, f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if role == "agent" and not (agent_id or "").strip():
        raise UserError(None, "an agent needs --agent-id (the agent_id their calls carry)")


def _user(row: tuple[Any, ...] | None) -> User | None:
    if row is None:
        return None
    username, display, role, agent_id, pw, disabled, created, updated = row
    return User(username, display, role, agent_id, bool(disabled), pw, created, updated)


def get_user(con: duckdb.DuckDBPyConnection, username: str) -> User | None:
    return _user(con.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", [username]).fetchone())


def list_users(con: duckdb.DuckDBPyConnection) -> list[User]:
    rows = con.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username").fetchall()
    return [u for u in map(_user, rows) if u is not None]


def add_user(
    con: duckdb.DuckDBPyConnection,
    username: str,
    role: str,
    password_hash: str,
    *,
    actor: str,
    display_name: str | None = None,
    agent_id: str | None = None,
) -> User:
    check_username(username)
    check_role(role, agent_id)
    if get_user(con, username) is not None:
        raise UserError(None, f"user {username!r} exists already (`callqa users reset-password` sets a new password)")
    now = _now()
    con.execute(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?, false, ?, ?, ?, ?)",
        [username, (display_name or "").strip() or None, role, (agent_id or "").strip() or None, password_hash]
        + [now, actor, now, actor],
    )
    user = get_user(con, username)
    assert user is not None
    return user


def _update(con: duckdb.DuckDBPyConnection, username: str, column: str, value: Any, actor: str) -> User:
    if get_user(con, username) is None:
        raise UserError(None, f"no user {username!r} (see `callqa users list`)")
    con.execute(
        f"UPDATE users SET {column} = ?, updated_at = ?, updated_by = ? WHERE username = ?",
        [value, _now(), actor, username],
    )
    user = get_user(con, username)
    assert user is not None
    return user


def set_disabled(con: duckdb.DuckDBPyConnection, username: str, disabled: bool, *, actor: str) -> User:
    """Disabled users cannot log in, and their open sessions end at their next request."""
    return _update(con, username, "disabled", disabled, actor)


def set_password(con: duckdb.DuckDBPyConnection, username: str, password_hash: str, *, actor: str) -> User:
    return _update(con, username, "password_hash", password_hash, actor)


def can_see_call(user: User, call_agent_id: str | None) -> bool:
    """An agent sees only their own calls; every other role sees every call."""
    if user.role != "agent":
        return True
    return bool(user.agent_id) and call_agent_id == user.agent_id
