"""The web workspace's secret and its password hashes.

One random secret, kept in a 0600 file beside the audit key (`$XDG_CONFIG_HOME/callqa/web.key`, or
$CALLQA_WEB_SECRET), never in the database. Two keys are derived from it: one signs the session
cookies, one peppers the passwords. A password is stored as argon2id(HMAC-SHA256(pepper, password)),
so the `users.password_hash` column, which an analyst's SQL can read, is useless without the file.
Replacing the secret logs everybody out and needs every password reset (`callqa users reset-password`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from callqa.workspace.ledger import AuditError, default_key_file

SECRET_ENV = "CALLQA_WEB_SECRET"
MIN_PASSWORD = 10


def default_secret_file() -> Path:
    return default_key_file().parent / "web.key"


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # another process (the CLI, the server) created it first: use theirs
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_secret(secret_file: Path | str | None = None) -> bytes:
    """The server secret: $CALLQA_WEB_SECRET, else the file (created 0600 on first use)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        if len(env) < 32:
            raise AuditError(None, f"{SECRET_ENV} is too short: give at least 32 random characters")
        return env.encode()
    path = Path(secret_file).expanduser() if secret_file else default_secret_file()
    if not path.exists():
        _create(path)
    if path.is_symlink() or not path.is_file():
        raise AuditError(path, "the web secret must be a regular file, not a link or a folder")
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise AuditError(path, "the web secret file is readable or writable by others: chmod 600 it")
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < 32:
        raise AuditError(
            path, "the web secret file is empty or truncated: restore it or delete it (then reset passwords)"
        )
    return text.encode()


def derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"callqa web {label}".encode(), hashlib.sha256).digest()


class Passwords:
    """argon2id over the peppered password (argon2-cffi's default parameters, RFC 9106 low-memory)."""

    def __init__(self, secret: bytes) -> None:
        self._pepper = derive(secret, "password pepper")
        self._hasher = PasswordHasher()
        # verified against when the user does not exist, so a wrong name takes as long as a wrong password
        self._dummy = self._hasher.hash(self._peppered("not a password"))

    def _peppered(self, password: str) -> str:
        return hmac.new(self._pepper, password.encode("utf-8"), hashlib.sha256).hexdigest()

    def hash(self, password: str) -> str:
        problem = password_problem(password)
        if problem:
            raise AuditError(None, problem)
        return self._hasher.hash(self._peppered(password))

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, self._peppered(password)) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"the password is too short: give at least {MIN_PASSWORD} characters"
    if password.strip() != password:
        return "the password starts or ends with white space (a paste error?)"
    return None


def fingerprint(password_hash: str) -> str:
    """Names a password hash in the session cookie: a reset password ends the sessions made with the old one."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]
