"""Users, their credentials and sessions: what POST /users/session and Comet's sessionId check use.

Sessions expire by time (`session_ttl`) or all at once (`expire_all`), which is how tests make
the client meet "Session expired." without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import random
import secrets
import time
from typing import Any, Final
import uuid

ADMIN_PERMISSIONS: Final = (
    "manage-objects",
    "manage-links",
    "modify-objects",
    "manage-incidents",
    "manage-configuration",
    "manage-users",
    "execute-operations",
)
VIEWER_PERMISSIONS: Final = ("view-objects", "view-links")
VIEWER_LOGIN: Final = "viewer"
VIEWER_PASSWORD: Final = "viewer"


@dataclass(slots=True)
class User:
    """A SAYMON user with a password and an optional API token."""

    id: str
    login: str
    password: str
    api_token: str | None
    permissions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """GET /users/current, in the documented shape."""
        return {
            "id": self.id,
            "login": self.login,
            "group": None,
            "authenticationToken": None,
            "status": 2,
            "eventFilter": [],
            "permissions": list(self.permissions),
            "contacts": [],
        }

    def ref(self) -> dict[str, str]:
        """`{id, login}` as `model-changed` names the acting user."""
        return {"id": self.id, "login": self.login}


@dataclass(slots=True)
class Session:
    """A login session; `csrf` is the value of the csrf cookie issued with it."""

    id: str
    user: User
    csrf: str
    expires_at: float
    expired: bool = field(default=False)


class Accounts:
    """The admin user (credentials chosen by the caller), a read-only viewer, and sessions."""

    def __init__(
        self,
        *,
        login: str,
        password: str,
        api_token: str | None,
        seed: int,
        session_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the users; user ids come from `seed`, the token is random when not given."""
        rng = random.Random(f"{seed}:users")
        token = api_token if api_token is not None else str(uuid.uuid4())
        self.admin = User(f"{rng.getrandbits(96):024x}", login, password, token, ADMIN_PERMISSIONS)
        self.viewer = User(
            f"{rng.getrandbits(96):024x}", VIEWER_LOGIN, VIEWER_PASSWORD, None, VIEWER_PERMISSIONS
        )
        self.session_ttl = session_ttl
        self._clock = clock
        self.sessions: dict[str, Session] = {}

    @property
    def users(self) -> tuple[User, ...]:
        """All users."""
        return (self.admin, self.viewer)

    def by_password(self, login: str, password: str) -> User | None:
        """Return the user with these credentials, if any."""
        for user in self.users:
            if user.login == login and secrets.compare_digest(user.password, password):
                return user
        return None

    def by_token(self, token: str) -> User | None:
        """Return the user owning this API token, if it is still valid."""
        for user in self.users:
            if user.api_token is not None and secrets.compare_digest(user.api_token, token):
                return user
        return None

    def create_session(self, user: User) -> Session:
        """Open a session (uuid4 id, fresh csrf value)."""
        session = Session(
            id=str(uuid.uuid4()),
            user=user,
            csrf=secrets.token_urlsafe(16),
            expires_at=self._clock() + self.session_ttl,
        )
        self.sessions[session.id] = session
        return session

    def valid(self, session_id: str | None) -> Session | None:
        """Return the session if it exists and has not expired."""
        session = self.sessions.get(session_id or "")
        if session is None:
            return None
        if session.expired or self._clock() >= session.expires_at:
            session.expired = True
            return None
        return session

    def delete(self, session_id: str) -> None:
        """Log out."""
        self.sessions.pop(session_id, None)

    def expire_all(self) -> set[str]:
        """Expire every session now; returns their ids (to disconnect their sockets)."""
        for session in self.sessions.values():
            session.expired = True
        return set(self.sessions)

    def set_password(self, password: str) -> None:
        """Change the admin password; existing sessions stay valid."""
        self.admin.password = password

    def revoke_token(self) -> None:
        """Delete the admin API token; logging in with it then fails with "Invalid API token."."""
        self.admin.api_token = None

    def new_token(self) -> str:
        """Issue a fresh admin API token."""
        self.admin.api_token = str(uuid.uuid4())
        return self.admin.api_token
