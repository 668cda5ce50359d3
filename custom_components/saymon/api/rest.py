"""REST client for SAYMON's ``/node/api``.

The caller injects the ``aiohttp.ClientSession`` (Home Assistant's shared one), so the client
never opens sessions of its own. The SAYMON session (``sid`` cookie, plus ``csrf`` cookie and
``x-csrf-token`` header where the server uses them) is kept by the client and sent explicitly
on every request instead of living in the session's cookie jar: several config entries for
the same host but different users would otherwise overwrite each other's cookies.

An expired session is renewed once, transparently, with the stored credentials; wrong
credentials surface as :class:`~.errors.SaymonInvalidCredentialsError` so the caller can ask
the user. Every call has a timeout.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import json
import logging
import ssl
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from ._fields import as_mapping, opt_name, req_id
from .errors import (
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonNotFoundError,
    SaymonPermissionError,
    SaymonPlainHTTPError,
    SaymonProtocolError,
    SaymonResponseError,
    SaymonSessionExpiredError,
    SaymonTimeoutError,
    SaymonTLSError,
)
from .models import (
    CurrentUser,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)
from .probe import speaks_plain_http
from .url import api_url, normalize_base_url

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
"""Largest REST answer read (as for Comet messages); a larger one is a protocol error."""
INCIDENT_PAGE_SIZE: Final = 500
HISTORY_PAGE_SIZE: Final = 200
HISTORY_MAX_RECORDS: Final = 5000
_SESSION_PATH: Final = "users/session"
_INVALID_CREDENTIAL_MESSAGES: Final = ("invalid login or password", "invalid api token")


@dataclass(frozen=True, slots=True)
class PasswordCredentials:
    """Log in with a SAYMON login and password."""

    login: str
    password: str

    def __repr__(self) -> str:
        """Keep the password out of logs and tracebacks."""
        return f"PasswordCredentials(login={self.login!r}, password='***')"

    def login_body(self) -> dict[str, str]:
        """Body of ``POST /users/session``."""
        return {"login": self.login, "password": self.password}


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """Log in with an API token, exchanged for a session (the documented, portable route)."""

    token: str

    def __repr__(self) -> str:
        """Keep the token out of logs and tracebacks."""
        return "TokenCredentials(token='***')"

    def login_body(self) -> dict[str, str]:
        """Body of ``POST /users/session``."""
        return {"auth-token": self.token}


type Credentials = PasswordCredentials | TokenCredentials


def _error_details(body: str) -> tuple[str | None, str | None]:
    """Return SAYMON's ``code`` and innermost ``message`` from an error body.

    For 401 SAYMON nests a JSON document in ``message``: the body's ``message`` is itself
    ``{"errorCode": 3, "message": "Session expired."}`` encoded as text.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, body.strip()[:200] or None
    if not isinstance(data, Mapping):
        return None, None
    code = data.get("code")
    message = data.get("message")
    if isinstance(message, str) and message.startswith("{"):
        try:
            inner = json.loads(message)
        except (ValueError, RecursionError):
            inner = None
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            message = inner["message"]
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def _raise_for_status(status: int, body: str, *, login: bool) -> None:
    code, message = _error_details(body)
    if status == 401:
        text = (message or "").lower()
        if login or code == "InvalidCredentials" or text.startswith(_INVALID_CREDENTIAL_MESSAGES):
            raise SaymonInvalidCredentialsError(message or "SAYMON rejected the credentials")
        raise SaymonSessionExpiredError(message or "SAYMON session is not valid")
    if status == 403:
        raise SaymonPermissionError(message or "the SAYMON user lacks a permission for this")
    if status == 404:
        raise SaymonNotFoundError(message or "not found")
    raise SaymonResponseError(status, code, message)


async def _read_body(response: aiohttp.ClientResponse, path: str) -> str:
    """Read an answer of at most :data:`MAX_RESPONSE_BYTES`; a larger one is refused."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise SaymonProtocolError(f"{path}: the answer exceeds {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    try:
        encoding = response.get_encoding()
    except (RuntimeError, LookupError):  # an unknown charset
        encoding = "utf-8"
    return b"".join(chunks).decode(encoding, errors="replace")


def _tag(value: Any) -> tuple[str, str]:
    """One element of ``GET /tags``: its id and name (the id when it has none)."""
    data = as_mapping(value, "tag")
    tag_id = req_id(data, "id", "tag")
    return tag_id, opt_name(data.get("name"), f"tag {tag_id}.name") or tag_id


def _parse_list[T](
    data: Any, parse: Callable[[Any], T], what: str, rejected: Counter[str]
) -> list[T]:
    """Read every record of a list answer; one unreadable record is skipped, not fatal.

    A record SAYMON sends broken (an id with control characters, a wrong type) must not cost
    the rest of the list: it is counted in ``rejected`` and logged once per list.
    """
    if not isinstance(data, list):
        raise SaymonProtocolError(f"{what}: expected a list, got {type(data).__name__}")
    records: list[T] = []
    for item in data:
        try:
            records.append(parse(item))
        except SaymonProtocolError as err:
            rejected[what] += 1
            _LOGGER.log(
                logging.WARNING if rejected[what] == 1 else logging.DEBUG,
                "Skipped a SAYMON %s record that cannot be read: %s",
                what,
                err,
            )
    return records


class SaymonRestClient:
    """Talks to one SAYMON server's REST API as one user."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext | bool = True,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Create a client; nothing is sent before the first call.

        ``ssl_context``: ``True`` verifies certificates against the system store, ``False``
        disables verification, an ``SSLContext`` verifies against its own CAs.
        """
        self._session = session
        self.base_url = normalize_base_url(base_url)
        self._credentials = credentials
        self._ssl: ssl.SSLContext | bool = ssl_context
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._sid: str | None = None
        self._csrf: str | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0
        self.rejected: Counter[str] = Counter()
        """Records skipped because they could not be read, per list (for diagnostics)."""

    def _parse_list[T](self, data: Any, parse: Callable[[Any], T], what: str) -> list[T]:
        return _parse_list(data, parse, what, self.rejected)

    @property
    def session_id(self) -> str | None:
        """The current SAYMON session id (a secret: never log it)."""
        return self._sid

    # -- transport ------------------------------------------------------------------------

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"Accept": "application/json"}
        cookies: dict[str, str] = {}
        if self._sid:
            cookies["sid"] = self._sid
        if self._csrf:
            cookies["csrf"] = self._csrf
            headers["x-csrf-token"] = self._csrf
        return headers, cookies

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[aiohttp.ClientResponse, str]:
        """Send one request; map transport failures to typed errors and return the body."""
        headers, cookies = self._auth()
        url = api_url(self.base_url, path)
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                headers=headers,
                cookies=cookies,
                ssl=self._ssl,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                return response, await _read_body(response, path)
        except aiohttp.ClientConnectorCertificateError as err:
            raise SaymonTLSError(
                f"TLS certificate of {self.base_url} rejected: {err.certificate_error}"
            ) from None
        except aiohttp.ClientSSLError as err:
            if await speaks_plain_http(self._session, self.base_url):
                raise SaymonPlainHTTPError(
                    f"{self.base_url} speaks plain HTTP, not HTTPS: use an http address"
                ) from None
            raise SaymonTLSError(f"TLS handshake with {self.base_url} failed: {err}") from None
        except TimeoutError:
            raise SaymonTimeoutError(
                f"{self.base_url} did not answer {method} {path} in time"
            ) from None
        except aiohttp.ClientError as err:
            raise SaymonConnectionError(f"cannot reach {self.base_url}: {err}") from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Send an authenticated request, renewing the session once if it has expired."""
        if self._sid is None:
            await self.login()
        for attempt in (1, 2):
            sid_used = self._sid
            response, body = await self._send(method, path, json_body=json_body, params=params)
            if response.status < 400:
                return self._decode(body, path) if expect_json else body
            try:
                _raise_for_status(response.status, body, login=False)
            except SaymonSessionExpiredError:
                if attempt == 2:
                    raise
                _LOGGER.debug("SAYMON session expired; logging in again")
                await self._relogin(sid_used)
        raise AssertionError("unreachable")  # pragma: no cover

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """An authenticated request (session renewed once), for the API's other modules.

        Returns the decoded JSON answer (``None`` for an empty one); errors are typed as for
        every other call.
        """
        return await self._request(method, path, json_body=json_body, params=params)

    @staticmethod
    def _decode(body: str, path: str) -> Any:
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested beyond the stack
            raise SaymonProtocolError(f"{path}: the answer is not JSON") from None

    # -- session ----------------------------------------------------------------------------

    async def login(self) -> str:
        """Create a SAYMON session with the stored credentials and return its id."""
        response, body = await self._send(
            "POST", _SESSION_PATH, json_body=self._credentials.login_body()
        )
        if response.status >= 400:
            _raise_for_status(response.status, body, login=True)
        # The body is the session id as a JSON string; the ``sid`` cookie carries the same.
        decoded = self._decode(body, _SESSION_PATH)
        cookie = response.cookies.get("sid")
        sid: str | None = decoded if isinstance(decoded, str) and decoded else None
        if sid is None and cookie is not None:
            sid = cookie.value
        if not sid:
            raise SaymonProtocolError("login answered without a session id")
        csrf = response.cookies.get("csrf")
        self._sid = sid
        self._csrf = csrf.value if csrf is not None and csrf.value else None
        self.logins += 1
        return sid

    async def _relogin(self, expired_sid: str | None) -> None:
        """Log in again unless a concurrent call already replaced the expired session."""
        async with self._login_lock:
            if self._sid == expired_sid:
                self._sid = None
                self._csrf = None
                await self.login()

    async def ensure_session(self, *, refresh: bool = False) -> str:
        """Return a session id for Comet, logging in first when there is none or ``refresh``."""
        async with self._login_lock:
            if refresh or self._sid is None:
                self._sid = None
                self._csrf = None
                await self.login()
            sid = self._sid
        if sid is None:  # pragma: no cover - login() either sets it or raises
            raise SaymonProtocolError("login answered without a session id")
        return sid

    async def verify_session(self) -> bool:
        """Ask SAYMON whether the current session is still valid (``false``/``null`` = no)."""
        if self._sid is None:
            return False
        response, body = await self._send(
            "GET", f"{_SESSION_PATH}/verify/{quote(self._sid, safe='')}"
        )
        if response.status == 401:
            return False
        if response.status >= 400:
            _raise_for_status(response.status, body, login=False)
        return self._decode(body, "session/verify") is True

    async def logout(self) -> None:
        """Delete the SAYMON session; errors are ignored since the session is gone either way."""
        if self._sid is None:
            return
        try:
            await self._send("DELETE", _SESSION_PATH)
        except SaymonError as err:
            _LOGGER.debug("Logging out of SAYMON failed: %s", err)
        finally:
            self._sid = None
            self._csrf = None

    # -- reading ----------------------------------------------------------------------------

    async def current_user(self) -> CurrentUser:
        """Return the logged-in user (its id is part of the config entry's unique id)."""
        return CurrentUser.from_json(await self._request("GET", "users/current"))

    async def objects(self, fields: Sequence[str] | None = None) -> list[SaymonObject]:
        """All objects visible to the user; ``fields`` limits the answer (``id`` always comes)."""
        params = {"fields": ",".join(fields)} if fields else None
        return self._parse_list(
            await self._request("GET", "objects", params=params), SaymonObject.from_json, "objects"
        )

    async def object(self, object_id: str) -> SaymonObject:
        """One object by id."""
        return SaymonObject.from_json(
            await self._request("GET", f"objects/{quote(object_id, safe='')}")
        )

    async def links(self, fields: Sequence[str] | None = None) -> list[SaymonLink]:
        """All links visible to the user."""
        params = {"fields": ",".join(fields)} if fields else None
        return self._parse_list(
            await self._request("GET", "links", params=params), SaymonLink.from_json, "links"
        )

    async def states(self) -> list[SaymonState]:
        """Built-in and custom object/link states."""
        return self._parse_list(
            await self._request("GET", "states"), SaymonState.from_json, "states"
        )

    async def classes(self) -> list[SaymonClass]:
        """Object classes."""
        return self._parse_list(
            await self._request("GET", "classes"), SaymonClass.from_json, "classes"
        )

    async def tags(self) -> dict[str, str]:
        """Tag names by tag id (objects carry tag ids).

        SAYMON documents the Tag model (``id``, ``name``) and ``POST /tags``; reading them with
        ``GET /tags`` follows the API's convention for every other collection.
        """
        tags: dict[str, str] = {}
        for item in self._parse_list(await self._request("GET", "tags"), _tag, "tags"):
            tags[item[0]] = item[1]
        return tags

    async def incident_levels(self) -> list[IncidentLevel]:
        """Incident levels (severities)."""
        return self._parse_list(
            await self._request("GET", "incident-levels"),
            IncidentLevel.from_json,
            "incident-levels",
        )

    async def incidents(
        self, *, page_size: int = INCIDENT_PAGE_SIZE, owner: bool = True
    ) -> list[Incident]:
        """All active incidents, read page by page (``limit``/``skip``) so no answer is huge."""
        result: list[Incident] = []
        seen: set[str] = set()
        skip = 0
        while True:
            params = {
                "limit": str(page_size),
                "skip": str(skip),
                "owner": "true" if owner else "false",
                "sortField": "timestamp",
                "sortDirection": "asc",
            }
            page = self._parse_list(
                await self._request("GET", "incidents", params=params),
                Incident.from_json,
                "incidents",
            )
            # Incidents closing between two pages shift the rest: de-duplicate by id.
            result.extend(item for item in page if item.id not in seen)
            seen.update(item.id for item in page)
            if len(page) < page_size:
                return result
            skip += page_size

    async def incident_history(
        self,
        *,
        since: int | None = None,
        page_size: int = HISTORY_PAGE_SIZE,
        max_records: int = HISTORY_MAX_RECORDS,
    ) -> list[Incident]:
        """Closed incidents, newest first (``/incident-history?inverse=true``).

        Without ``since`` one page is read; with it (a ``clearTimestamp`` in ms) pages are read
        until one holds nothing cleared at or after ``since``, at most ``max_records``.
        """
        result: list[Incident] = []
        skip = 0
        while True:
            params = {
                "inverse": "true",
                "limit": str(page_size),
                "skip": str(skip),
                "owner": "true",
            }
            page = self._parse_list(
                await self._request("GET", "incident-history", params=params),
                Incident.from_json,
                "incident-history",
            )
            result.extend(page)
            if (
                since is None
                or len(page) < page_size
                or len(result) >= max_records
                or all((item.clear_timestamp or 0) < since for item in page)
            ):
                return result
            skip += page_size

    async def incident(self, incident_id: str) -> Incident:
        """One incident by id (active or in the history)."""
        return Incident.from_json(
            await self._request("GET", f"incidents/{quote(incident_id, safe='')}")
        )

    # -- acting -----------------------------------------------------------------------------

    async def acknowledge_incident(self, incident_id: str) -> None:
        """Mark an incident as acknowledged by the logged-in user."""
        await self._incident_action(incident_id, "acknowledge")

    async def unacknowledge_incident(self, incident_id: str) -> None:
        """Take an acknowledgement back."""
        await self._incident_action(incident_id, "unacknowledge")

    async def clear_incident(self, incident_id: str) -> None:
        """Clear an incident (it moves to the history after SAYMON's incident timeout)."""
        await self._incident_action(incident_id, "clear")

    async def _incident_action(self, incident_id: str, action: str) -> None:
        await self._request(
            "POST", f"incidents/{quote(incident_id, safe='')}/{action}", expect_json=False
        )
