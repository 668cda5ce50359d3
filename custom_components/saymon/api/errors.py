"""Typed errors of the SAYMON client.

Each class tells the caller what to do next, so the Home Assistant side can map them one to one:
retry later (:class:`SaymonConnectionError`), log in again silently
(:class:`SaymonSessionExpiredError`), ask the user for new credentials
(:class:`SaymonInvalidCredentialsError`), or report a bug in the exchange
(:class:`SaymonProtocolError`). Messages never contain credentials or session ids.
"""

from __future__ import annotations


class SaymonError(Exception):
    """Base class of every error raised by the SAYMON client."""


class SaymonConnectionError(SaymonError):
    """The server could not be reached or did not answer; retry later."""


class SaymonTimeoutError(SaymonConnectionError):
    """The server did not answer within the client's timeout."""


class SaymonTLSError(SaymonConnectionError):
    """The server's TLS certificate was rejected (untrusted, expired or for another host)."""


class SaymonCometError(SaymonConnectionError):
    """The Comet (Socket.IO) server could not be reached or refused the handshake."""


class SaymonAuthError(SaymonError):
    """SAYMON refused to authenticate the request."""


class SaymonInvalidCredentialsError(SaymonAuthError):
    """The login, password or API token is wrong: only the user can fix this (reauth)."""


class SaymonSessionExpiredError(SaymonAuthError):
    """The session is unknown, expired or absent: log in again with the stored credentials."""


class SaymonPermissionError(SaymonError):
    """The SAYMON user lacks a permission the request needs (HTTP 403)."""


class SaymonNotFoundError(SaymonError):
    """The requested object, link or incident does not exist (HTTP 404)."""


class SaymonProtocolError(SaymonError):
    """SAYMON answered with something the client cannot understand."""


class SaymonResponseError(SaymonError):
    """SAYMON answered with an HTTP error the other classes do not cover (e.g. 500)."""

    def __init__(self, status: int, code: str | None, message: str | None) -> None:
        """Keep the status and SAYMON's error code so callers can tell server faults apart."""
        self.status = status
        self.code = code
        self.message = message
        detail = f"{code}: {message}" if code or message else "no details"
        super().__init__(f"SAYMON answered HTTP {status} ({detail})")


class SaymonPlainHTTPError(SaymonTLSError):
    """HTTPS was asked for, but the server at that address speaks plain HTTP."""
