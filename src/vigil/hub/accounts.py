"""Users, login sessions and device tokens of the hub, kept in its database.

Passwords are stored as Argon2id hashes (``argon2-cffi``). Session secrets, CSRF secrets and
device-token secrets are random (256 bits) and only their sha256 is stored, so a copy of the
database lets nobody in. A device token reads ``vigil_<token id>_<secret>``: the id finds the
row, the secret is compared by hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigil.errors import ConfigError, DependencyError, VigilError
from vigil.hub import db
from vigil.hub.db import HubDatabase

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
"""A user name: 1 to 64 letters, digits, ``_ . @ -``, starting with a letter or digit."""

DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A device id, as every app's config takes it (:data:`vigil.apps.base.DeviceId`)."""

TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")
TOKEN_PREFIX = "vigil_"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class AccountError(VigilError):
    """A user or token operation cannot be done (unknown name, duplicate, bad password)."""

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in to the hub."""

    id: int
    name: str
    role: Role
    created: float


@dataclass(frozen=True, slots=True)
class Session:
    """A login session, found by its secret."""

    id: int
    user: User
    expires: float
    csrf_hash: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A device token as it is listed: never its secret."""

    id: str
    device_id: str
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        """Whether the token still lets its device in."""
        return self.revoked is None


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A secret made just now: shown once, only its hash is kept."""

    id: str
    secret: str


def sha256_hex(text: str) -> str:
    """Return the sha256 of ``text`` (UTF-8) as 64 hex digits."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Compare two secrets (or their hashes) in constant time."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` when it can name a device.

    Raises:
        ConfigError: it is empty, too long, or has characters other than letters, digits, . _ -.
    """
    if not DEVICE_ID.match(device_id):
        raise ConfigError(
            f"{device_id[:80]!r} is not a device id: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return device_id


def check_user_name(name: str) -> str:
    """Return ``name`` when it can name a user.

    Raises:
        ConfigError: it is empty, too long or has odd characters.
    """
    if not USER_NAME.match(name):
        raise ConfigError(
            f"{name[:80]!r} cannot name a user: use 1 to 64 letters, digits, '_', '.', '@' or "
            "'-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """Return ``password`` when it is long enough and not absurdly long.

    Raises:
        ConfigError: it is shorter than 8 or longer than 1024 characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConfigError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_role(role: str) -> Role:
    """Return ``role`` when it is ``admin`` or ``viewer``.

    Raises:
        ConfigError: it is neither.
    """
    for known in ROLES:
        if role == known:
            return known
    raise ConfigError(f"a role is admin or viewer, not {role[:40]!r}")


def parse_token(token: str) -> tuple[str, str] | None:
    """Split ``vigil_<id>_<secret>`` into its id and secret; None when it is not that shape."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token.removeprefix(TOKEN_PREFIX).partition("_")
    if not sep or not TOKEN_ID.match(token_id) or not 16 <= len(secret) <= 128:
        return None
    return token_id, secret


class PasswordHashing:
    """Argon2id hashing of passwords (argon2-cffi's recommended parameters)."""

    def __init__(self) -> None:
        try:
            from argon2 import PasswordHasher
        except ModuleNotFoundError:
            raise DependencyError("argon2-cffi", "hub", "the hub's logins") from None
        self._hasher = PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """Return the Argon2id hash of ``password`` (with its own random salt)."""
        return str(self._hasher.hash(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``; without a hash, take as long anyway."""
        from argon2.exceptions import InvalidHashError, VerificationError

        if password_hash is None:
            if self._dummy is None:
                self._dummy = self.hash(secrets.token_urlsafe(16))
            password_hash, password = self._dummy, password + "\x00"
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False


class Accounts:
    """Users, sessions and device tokens in the hub's database.

    Args:
        database: The hub's database.
        session_hours: How long a login session lasts.
    """

    def __init__(self, database: HubDatabase, session_hours: float = 168.0) -> None:
        self.database = database
        self.session_seconds = session_hours * 3600.0
        self._passwords: PasswordHashing | None = None

    @property
    def passwords(self) -> PasswordHashing:
        """The password hasher (made on first use)."""
        if self._passwords is None:
            self._passwords = PasswordHashing()
        return self._passwords

    # Users

    def add_user(self, name: str, password: str, role: str = "viewer") -> User:
        """Add a user with a new password.

        Raises:
            ConfigError: the name, password or role is not valid.
            AccountError: a user with that name exists (409).
        """
        check_user_name(name)
        checked_role = check_role(role)
        password_hash = self.passwords.hash(check_password(password))
        now = time.time()

        def insert(conn: Connection) -> int:
            if conn.execute(sa.select(db.users.c.id).where(db.users.c.name == name)).first():
                raise AccountError(
                    f"there is already a user called {name}", status=409, code="exists"
                )
            row = {"name": name, "role": checked_role, "password_hash": password_hash}
            result = conn.execute(sa.insert(db.users).values(**row, created=now))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

        user_id = self.database.write("add a user", insert)
        return User(user_id, name, checked_role, now)

    def users(self) -> list[User]:
        """Every user, by name."""
        rows = self.database.read(
            "list users", lambda c: c.execute(sa.select(db.users).order_by(db.users.c.name)).all()
        )
        return [_user(row._mapping) for row in rows]

    def remove_user(self, name: str) -> User:
        """Remove a user and end their sessions.

        Raises:
            AccountError: there is no such user (404).
        """

        def delete(conn: Connection) -> User:
            row = conn.execute(sa.select(db.users).where(db.users.c.name == name)).first()
            if row is None:
                raise AccountError(f"there is no user called {name}", status=404, code="not_found")
            user = _user(row._mapping)
            conn.execute(sa.delete(db.sessions).where(db.sessions.c.user_id == user.id))
            conn.execute(sa.delete(db.users).where(db.users.c.id == user.id))
            return user

        return self.database.write("remove a user", delete)

    def has_admin(self) -> bool:
        """Whether at least one admin user exists."""
        query = sa.select(db.users.c.id).where(db.users.c.role == "admin").limit(1)
        return self.database.read("look up users", lambda c: c.execute(query).first()) is not None

    def authenticate(self, name: str, password: str) -> User | None:
        """Return the user when ``password`` is theirs; None otherwise (in about the same time)."""
        query = sa.select(db.users).where(db.users.c.name == name[:ID_LENGTH_LIMIT])
        row = self.database.read("look up a user", lambda c: c.execute(query).first())
        mapping = row._mapping if row is not None else None
        stored = str(mapping["password_hash"]) if mapping is not None else None
        if not self.passwords.verify(stored, password[:MAX_PASSWORD_LENGTH]) or mapping is None:
            return None
        return _user(mapping)

    # Sessions

    def start_session(self, user: User) -> tuple[str, str]:
        """Open a session for ``user``; return its secret and its CSRF secret (shown once)."""
        self.remove_expired_sessions()
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        row = {
            "secret_hash": sha256_hex(secret),
            "csrf_hash": sha256_hex(csrf),
            "user_id": user.id,
            "created": now,
            "expires": now + self.session_seconds,
        }
        self.database.write("start a session", lambda c: c.execute(sa.insert(db.sessions), row))
        return secret, csrf

    def session(self, secret: str) -> Session | None:
        """Return the live session whose secret this is, or None (unknown or expired)."""
        if not 16 <= len(secret) <= 128:
            return None
        digest = sha256_hex(secret)
        query = (
            sa.select(
                db.sessions.c.id.label("session_id"),
                db.sessions.c.secret_hash,
                db.sessions.c.csrf_hash,
                db.sessions.c.expires,
                db.users,
            )
            .join(db.users, db.users.c.id == db.sessions.c.user_id)
            .where(db.sessions.c.secret_hash == digest)
        )
        row = self.database.read("look up a session", lambda c: c.execute(query).first())
        if row is None or not same_secret(row._mapping["secret_hash"], digest):
            return None
        mapping = row._mapping
        if mapping["expires"] <= time.time():
            return None
        return Session(
            int(mapping["session_id"]), _user(mapping), mapping["expires"], mapping["csrf_hash"]
        )

    def end_session(self, secret: str) -> None:
        """End the session whose secret this is (nothing happens for an unknown one)."""
        statement = sa.delete(db.sessions).where(db.sessions.c.secret_hash == sha256_hex(secret))
        self.database.write("end a session", lambda c: c.execute(statement))

    def remove_expired_sessions(self) -> None:
        """Delete sessions that have expired."""
        statement = sa.delete(db.sessions).where(db.sessions.c.expires <= time.time())
        self.database.write("remove expired sessions", lambda c: c.execute(statement))

    # Device tokens

    def create_token(self, device_id: str) -> NewSecret:
        """Make a token for ``device_id`` (adding the device when it is new); return it once.

        Raises:
            ConfigError: the device id is not valid.
        """
        check_device_id(device_id)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = time.time()
        row = {
            "id": token_id,
            "device_id": device_id,
            "secret_hash": sha256_hex(secret),
            "created": now,
        }

        def insert(conn: Connection) -> None:
            ensure_device(conn, device_id, now)
            conn.execute(sa.insert(db.tokens), row)

        self.database.write("create a token", insert)
        return NewSecret(token_id, f"{TOKEN_PREFIX}{token_id}_{secret}")

    def tokens(self, device_id: str | None = None) -> list[TokenInfo]:
        """Return the tokens (of one device, or all), oldest first; never their secrets."""
        query = sa.select(db.tokens).order_by(db.tokens.c.created, db.tokens.c.id)
        if device_id is not None:
            query = query.where(db.tokens.c.device_id == device_id)
        rows = self.database.read("list tokens", lambda c: c.execute(query).all())
        return [_token(row._mapping) for row in rows]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token; revoking a revoked token changes nothing.

        Raises:
            AccountError: there is no such token (404).
        """

        def revoke(conn: Connection) -> TokenInfo:
            row = conn.execute(sa.select(db.tokens).where(db.tokens.c.id == token_id)).first()
            if row is None:
                raise AccountError(
                    f"there is no token {token_id[:40]!r}", status=404, code="not_found"
                )
            info = _token(row._mapping)
            if info.revoked is not None:
                return info
            now = time.time()
            conn.execute(sa.update(db.tokens).where(db.tokens.c.id == token_id).values(revoked=now))
            return TokenInfo(info.id, info.device_id, info.created, info.last_used, now)

        return self.database.write("revoke a token", revoke)

    def token_device(self, token: str) -> str | None:
        """Return the device a live token belongs to (noting its use); None for any other."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        query = sa.select(db.tokens).where(db.tokens.c.id == token_id)
        row = self.database.read("look up a token", lambda c: c.execute(query).first())
        if row is None:
            return None
        mapping = row._mapping
        if not same_secret(mapping["secret_hash"], sha256_hex(secret)) or mapping["revoked"]:
            return None
        self._note_use(token_id, mapping["last_used"])
        return str(mapping["device_id"])

    def _note_use(self, token_id: str, last_used: float | None) -> None:
        now = time.time()
        if last_used is not None and now - last_used < TOKEN_USE_RESOLUTION_SECONDS:
            return  # one write a minute is enough for "last used"
        statement = sa.update(db.tokens).where(db.tokens.c.id == token_id).values(last_used=now)
        self.database.write("note a token's use", lambda c: c.execute(statement))


ID_LENGTH_LIMIT = db.ID_LENGTH
TOKEN_USE_RESOLUTION_SECONDS = 60.0


def ensure_device(conn: Connection, device_id: str, now: float, app: str | None = None) -> None:
    """Add ``device_id`` to the devices table when it is not there yet."""
    row = {"id": device_id, "name": device_id, "app": app, "created": now}
    db.insert_ignoring_duplicates(conn, db.devices, [row])


def _user(mapping: Any) -> User:
    return User(
        int(mapping["id"]), str(mapping["name"]), check_role(mapping["role"]), mapping["created"]
    )


def _token(mapping: Any) -> TokenInfo:
    return TokenInfo(
        id=str(mapping["id"]),
        device_id=str(mapping["device_id"]),
        created=float(mapping["created"]),
        last_used=mapping["last_used"],
        revoked=mapping["revoked"],
    )
