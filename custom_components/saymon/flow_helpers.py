"""Validation and forms shared by the SAYMON config flow and options flow.

The same checks serve the user step, reauthentication, reconfiguration and the options flow, so
they live here once. :func:`async_check_address` needs no credentials: it finds SAYMON's API and
its Comet server at the address typed (falling back to plain HTTP when no scheme was given and
HTTPS gets no answer), so address errors appear on the address step. :func:`async_validate` logs
in, reads the current user, optionally completes a Comet handshake and reads the object
catalogue, and always logs out again so a flow leaves no SAYMON session behind. Every failure
the user can act on becomes a :class:`ValidationError` carrying its translation key and the
placeholders its message needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
import logging
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from homeassistant.const import (
    CONF_PASSWORD,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .api.comet import CometClient
from .api.errors import (
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonPlainHTTPError,
    SaymonTLSError,
)
from .api.live import TRANSPORTS
from .api.models import CurrentUser
from .api.probe import NotSaymonError, plain_http_url, probe_api, probe_comet
from .api.rest import Credentials, SaymonRestClient, TokenCredentials
from .api.url import (
    InvalidURLError,
    comet_endpoint,
    has_scheme,
    normalize_base_url,
    with_scheme,
)
from .const import (
    AUTH_PASSWORD,
    CONF_API_TOKEN,
    CONF_AUTH_METHOD,
    CONF_COMET,
    CONF_GRACE_PERIOD,
)
from .schema_lib import vol
from .scope_flow import ServerCatalog

_LOGGER = logging.getLogger(__name__)

MAX_GRACE_PERIOD: Final = 3600

SECRET_KEYS: Final = frozenset({CONF_PASSWORD, CONF_API_TOKEN})

URL_EXAMPLE: Final = "https://saymon.example.com"
"""Shown in the address field's help and the invalid-address message (no URLs in strings)."""


class ValidationError(Exception):
    """A failure the user can fix; ``key`` is its translation key under ``error``."""

    def __init__(
        self, key: str, *, field: str = "base", placeholders: Mapping[str, str] | None = None
    ) -> None:
        """Keep what the form needs: which field to mark and the message's placeholders."""
        super().__init__(key)
        self.key = key
        self.field = field
        self.placeholders: dict[str, str] = dict(placeholders or {})


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where SAYMON is: the normalised web address, the Comet address as typed, TLS checking."""

    url: str
    comet: str
    verify_ssl: bool
    scheme_given: bool = True
    """Whether the user wrote http or https; without it HTTPS is tried, then plain HTTP."""
    transport: str = "websocket"
    """How Comet was reached: ``websocket``, or ``polling`` where WebSocket is refused."""

    @classmethod
    def from_input(cls, data: Mapping[str, Any]) -> ServerAddress:
        """Read and check the address fields, naming the field that cannot be used."""
        text = str(data[CONF_URL])
        try:
            url = normalize_base_url(text)
        except InvalidURLError as err:
            raise ValidationError("invalid_url", field=CONF_URL) from err
        comet = str(data.get(CONF_COMET) or "").strip()
        try:
            comet_endpoint(url, comet)
        except InvalidURLError as err:
            raise ValidationError("invalid_url", field=CONF_COMET) from err
        return cls(url, comet, bool(data.get(CONF_VERIFY_SSL, True)), has_scheme(text))

    @property
    def host(self) -> str:
        """The server's host name, without the port."""
        return urlsplit(self.url).hostname or self.url

    @property
    def comet_address(self) -> str:
        """Where Comet is looked for, as messages show it."""
        endpoint = comet_endpoint(self.url, self.comet)
        return f"{endpoint.url}/{endpoint.socketio_path.strip('/')}/"

    def as_data(self) -> dict[str, Any]:
        """The config entry data keys this address is stored under."""
        return {CONF_URL: self.url, CONF_COMET: self.comet, CONF_VERIFY_SSL: self.verify_ssl}


def address_placeholders(address: ServerAddress | None = None) -> dict[str, str]:
    """Placeholders of the address step's texts and of every error shown on the address."""
    placeholders = {"url_example": URL_EXAMPLE}
    if address is not None:
        placeholders["url"] = address.url
        placeholders["comet_address"] = address.comet_address
    return placeholders


def auth_data(method: str, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The entry data of the credentials the user typed, for ``method``."""
    if method == AUTH_PASSWORD:
        return {
            CONF_AUTH_METHOD: AUTH_PASSWORD,
            CONF_USERNAME: str(user_input[CONF_USERNAME]).strip(),
            CONF_PASSWORD: str(user_input[CONF_PASSWORD]),
        }
    return {CONF_AUTH_METHOD: method, CONF_API_TOKEN: str(user_input[CONF_API_TOKEN]).strip()}


def without_secrets(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Suggested values for a form shown again: never echo a password or token back."""
    return {key: value for key, value in (values or {}).items() if key not in SECRET_KEYS}


# -- the address check (no credentials) ----------------------------------------------------


async def async_check_address(hass: HomeAssistant, data: Mapping[str, Any]) -> ServerAddress:
    """Read the address fields and find SAYMON's API and its Comet server there.

    An address typed without a scheme is tried with HTTPS first, as a browser would; when
    nothing answers HTTPS there, or a plain-HTTP server does, plain HTTP is tried and kept if
    SAYMON answers it. A rejected certificate is never "fixed" by dropping to plain HTTP: the
    user decides that. Returns the address to store; raises :class:`ValidationError`.
    """
    address = ServerAddress.from_input(data)
    session = async_get_clientsession(hass, verify_ssl=address.verify_ssl)
    try:
        await probe_api(session, address.url, ssl_context=address.verify_ssl)
    except SaymonError as err:
        fallback = _plain_http_fallback(address, err)
        if fallback is None:
            raise _address_error(address, err) from err
        try:
            await probe_api(session, fallback.url, ssl_context=fallback.verify_ssl)
        except NotSaymonError as http_err:  # plain HTTP got further: say what it found
            raise _address_error(fallback, http_err) from http_err
        except SaymonError:
            raise _address_error(address, err) from err
        _LOGGER.debug("No SAYMON over HTTPS at %s; using %s", address.url, fallback.url)
        address = fallback
    endpoint = comet_endpoint(address.url, address.comet)
    try:
        transport = await probe_comet(session, endpoint, ssl_context=address.verify_ssl)
    except SaymonError as err:
        _LOGGER.debug("Comet check at %s failed: %s", address.comet_address, err)
        raise _comet_error(address, err) from err
    if transport != address.transport:
        _LOGGER.debug("Comet at %s refuses WebSocket; using long-polling", address.comet_address)
    return replace(address, transport=transport)


def _plain_http_fallback(address: ServerAddress, err: SaymonError) -> ServerAddress | None:
    """The plain-HTTP address to try after ``err``, when the user left the scheme open."""
    if address.scheme_given or urlsplit(address.url).scheme != "https":
        return None
    if isinstance(err, SaymonTLSError) and not isinstance(err, SaymonPlainHTTPError):
        return None  # a real HTTPS server whose certificate was rejected
    if isinstance(err, NotSaymonError):
        return None
    return replace(address, url=with_scheme(address.url, "http"))


def _address_error(address: ServerAddress, err: SaymonError) -> ValidationError:
    """The message for a failed API check, on the address field."""
    placeholders = address_placeholders(address)
    if isinstance(err, SaymonPlainHTTPError):
        placeholders["http_url"] = plain_http_url(address.url)
        return ValidationError("plain_http", field=CONF_URL, placeholders=placeholders)
    if isinstance(err, SaymonTLSError):
        return ValidationError("tls_error", field=CONF_URL, placeholders=placeholders)
    if isinstance(err, NotSaymonError):
        placeholders["status"] = str(err.status)
        return ValidationError("not_saymon", field=CONF_URL, placeholders=placeholders)
    _LOGGER.debug("No answer from SAYMON at %s: %s", address.url, err)
    return ValidationError("cannot_connect", field=CONF_URL, placeholders=placeholders)


def _comet_error(address: ServerAddress, err: SaymonError) -> ValidationError:
    """The message for a failed Comet check, on the Comet field."""
    placeholders = address_placeholders(address)
    if isinstance(err, SaymonPlainHTTPError):
        placeholders["http_url"] = plain_http_url(comet_endpoint(address.url, address.comet).url)
        return ValidationError("comet_plain_http", field=CONF_COMET, placeholders=placeholders)
    if isinstance(err, SaymonTLSError):
        return ValidationError("tls_error", field=CONF_COMET, placeholders=placeholders)
    return ValidationError("comet_unreachable", field=CONF_COMET, placeholders=placeholders)


# -- the server check (credentials) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerCheck:
    """What a successful check learned."""

    user: CurrentUser
    catalog: ServerCatalog | None = None


async def async_validate(
    hass: HomeAssistant,
    address: ServerAddress,
    credentials: Credentials,
    *,
    check_comet: bool = True,
    read_catalog: bool = False,
) -> ServerCheck:
    """Log in, read the current user, check Comet, read the catalogue; always log out.

    Comet is checked before the catalogue is read: it is the likelier failure, and a large
    server's object list is not worth fetching for steps that will not be shown. Raises
    :class:`ValidationError` with the key of the message to show; unexpected errors
    propagate so the caller can log them as bugs.
    """
    session = async_get_clientsession(hass, verify_ssl=address.verify_ssl)
    rest = SaymonRestClient(session, address.url, credentials, ssl_context=address.verify_ssl)
    try:
        with _rest_errors(address, credentials):
            user = await rest.current_user()
        if check_comet:
            await _async_check_comet(rest, address, session)
        catalog = None
        if read_catalog:
            with _rest_errors(address, credentials):
                catalog = await ServerCatalog.async_fetch(rest)
        return ServerCheck(user, catalog)
    finally:
        await rest.logout()


@contextmanager
def _rest_errors(address: ServerAddress, credentials: Credentials) -> Iterator[None]:
    """Turn the REST client's errors into the message keys of the form.

    A rejected password and a rejected token have their own messages: a user who typed a
    password must not be told about API tokens.
    """
    placeholders = address_placeholders(address)
    try:
        yield
    except SaymonInvalidCredentialsError as err:
        key = "invalid_token" if isinstance(credentials, TokenCredentials) else "invalid_auth"
        raise ValidationError(key, placeholders=placeholders) from err
    except SaymonPlainHTTPError as err:
        placeholders["http_url"] = plain_http_url(address.url)
        raise ValidationError("plain_http", placeholders=placeholders) from err
    except SaymonTLSError as err:
        _LOGGER.debug("TLS certificate of SAYMON at %s rejected: %s", address.url, err)
        raise ValidationError("tls_error", placeholders=placeholders) from err
    except SaymonError as err:
        # Unreachable, timed out, or something that is not SAYMON's API at this address.
        _LOGGER.debug("Checking SAYMON at %s failed: %s", address.url, err)
        raise ValidationError("cannot_connect", placeholders=placeholders) from err


async def _async_check_comet(
    rest: SaymonRestClient, address: ServerAddress, session: aiohttp.ClientSession
) -> None:
    """Complete one Comet handshake with the session the REST login created."""
    comet = CometClient(
        session,
        comet_endpoint(address.url, address.comet),
        lambda refresh: rest.ensure_session(refresh=refresh),
        ssl_context=address.verify_ssl,
        transports=TRANSPORTS[address.transport],
    )
    try:
        await comet.check()
    except SaymonTLSError as err:
        _LOGGER.debug("Comet TLS check failed: %s", err)
        raise ValidationError("tls_error", placeholders=address_placeholders(address)) from err
    except SaymonError as err:
        _LOGGER.debug("Comet check failed: %s", err)
        raise ValidationError(
            "comet_unreachable",
            placeholders={**address_placeholders(address), "comet_address": comet.address},
        ) from err


# -- forms --------------------------------------------------------------------------------


def address_schema() -> vol.Schema:
    """SAYMON's web address, the Comet address and TLS checking (user and reconfigure)."""
    return vol.Schema(
        {
            vol.Required(CONF_URL): TextSelector(
                TextSelectorConfig(type=TextSelectorType.URL, autocomplete="url")
            ),
            vol.Optional(CONF_COMET): TextSelector(),
            vol.Required(CONF_VERIFY_SSL, default=True): BooleanSelector(),
        }
    )


def credentials_schema(method: str) -> vol.Schema:
    """The login and password, or the API token."""
    if method == AUTH_PASSWORD:
        return vol.Schema(
            {
                vol.Required(CONF_USERNAME): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.TEXT, autocomplete="username")
                ),
                vol.Required(CONF_PASSWORD): TextSelector(
                    TextSelectorConfig(
                        type=TextSelectorType.PASSWORD, autocomplete="current-password"
                    )
                ),
            }
        )
    return vol.Schema(
        {
            vol.Required(CONF_API_TOKEN): TextSelector(
                TextSelectorConfig(type=TextSelectorType.PASSWORD)
            )
        }
    )


def grace_period_schema() -> vol.Schema:
    """Seconds the connection may be down before entities turn unavailable."""
    return vol.Schema(
        {
            vol.Required(CONF_GRACE_PERIOD): vol.All(
                NumberSelector(
                    NumberSelectorConfig(
                        min=0,
                        max=MAX_GRACE_PERIOD,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="s",
                    )
                ),
                vol.Coerce(int),
            )
        }
    )
