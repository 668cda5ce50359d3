"""Validation and forms shared by the SAYMON config flow and options flow.

The same check serves the user step, reauthentication, reconfiguration and the options flow, so
it lives here once: log in, read the current user, optionally complete a Comet handshake and read
the object catalogue, and always log out again so a flow leaves no SAYMON session behind. Every
failure the user can act on becomes a :class:`ValidationError` carrying its translation key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
import logging
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
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
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .api.comet import CometClient
from .api.errors import (
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonTLSError,
)
from .api.models import CurrentUser, SaymonObject
from .api.rest import Credentials, PasswordCredentials, SaymonRestClient, TokenCredentials
from .api.url import InvalidURLError, comet_endpoint, normalize_base_url
from .const import (
    AUTH_PASSWORD,
    CONF_API_TOKEN,
    CONF_AUTH_METHOD,
    CONF_CLASSES,
    CONF_COMET,
    CONF_GRACE_PERIOD,
    CONF_LINKS,
    CONF_PARENTS,
    CONF_SCOPE,
    CONF_TAGS,
    SCOPE_ALL,
    SCOPE_SELECTED,
)
from .schema_lib import vol
from .scope import Scope, children_index, default_scope_options, object_path

_LOGGER = logging.getLogger(__name__)

MAX_SELECT_OPTIONS: Final = 1000
"""Longest list a multi-select offers: the frontend renders every option at once."""

MAX_GRACE_PERIOD: Final = 3600

OBJECT_FIELDS: Final = ("name", "parent_id", "class_id", "tags")
"""All the scope form needs; asking for less keeps the answer of a large server small."""

SECRET_KEYS: Final = frozenset({CONF_PASSWORD, CONF_API_TOKEN})


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

    @classmethod
    def from_input(cls, data: Mapping[str, Any]) -> ServerAddress:
        """Read and check the address fields, naming the field that cannot be used."""
        try:
            url = normalize_base_url(str(data[CONF_URL]))
        except InvalidURLError as err:
            raise ValidationError("invalid_url", field=CONF_URL) from err
        comet = str(data.get(CONF_COMET) or "").strip()
        try:
            comet_endpoint(url, comet)
        except InvalidURLError as err:
            raise ValidationError("invalid_url", field=CONF_COMET) from err
        return cls(url, comet, bool(data.get(CONF_VERIFY_SSL, True)))

    @property
    def host(self) -> str:
        """The server's host name, without the port."""
        return urlsplit(self.url).hostname or self.url

    def as_data(self) -> dict[str, Any]:
        """The config entry data keys this address is stored under."""
        return {CONF_URL: self.url, CONF_COMET: self.comet, CONF_VERIFY_SSL: self.verify_ssl}


def auth_data(method: str, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The entry data of the credentials the user typed, for ``method``."""
    if method == AUTH_PASSWORD:
        return {
            CONF_AUTH_METHOD: AUTH_PASSWORD,
            CONF_USERNAME: str(user_input[CONF_USERNAME]).strip(),
            CONF_PASSWORD: str(user_input[CONF_PASSWORD]),
        }
    return {CONF_AUTH_METHOD: method, CONF_API_TOKEN: str(user_input[CONF_API_TOKEN]).strip()}


def credentials_from(data: Mapping[str, Any]) -> Credentials:
    """Build the client's credentials from entry data (or :func:`auth_data`)."""
    if data[CONF_AUTH_METHOD] == AUTH_PASSWORD:
        return PasswordCredentials(data[CONF_USERNAME], data[CONF_PASSWORD])
    return TokenCredentials(data[CONF_API_TOKEN])


def without_secrets(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Suggested values for a form shown again: never echo a password or token back."""
    return {key: value for key, value in (values or {}).items() if key not in SECRET_KEYS}


# -- the server check ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerCatalog:
    """What the scope form offers: the server's objects and the names of their classes."""

    objects: Mapping[str, SaymonObject]
    class_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    async def async_fetch(cls, rest: SaymonRestClient) -> ServerCatalog:
        """Read the objects (only the fields the form needs) and the classes."""
        objects = await rest.objects(fields=OBJECT_FIELDS)
        classes = await rest.classes()
        return cls({obj.id: obj for obj in objects}, {cls_.id: cls_.name for cls_ in classes})

    def count(self, options: Mapping[str, Any]) -> int:
        """How many objects (devices) a scope choice selects."""
        return len(Scope.from_options(options).select(self.objects))

    def _depth(self, object_id: str) -> int:
        depth, seen = 0, {object_id}
        current = self.objects[object_id].parent_ids
        while current and current[0] in self.objects and current[0] not in seen:
            seen.add(current[0])
            depth += 1
            current = self.objects[current[0]].parent_ids
        return depth

    def parent_options(self, keep: Iterable[str] = ()) -> list[SelectOptionDict]:
        """Objects with children, labelled by their path; the highest ones when there are many.

        People pick subtrees from the top of the tree, so when the list has to be cut the
        deepest objects are left out first.
        """
        labels = {
            oid: object_path(self.objects, oid)
            for oid in children_index(self.objects.values())
            if oid in self.objects
        }
        return _options(labels, lambda oid: (self._depth(oid), labels[oid]), keep)

    def tag_options(self, keep: Iterable[str] = ()) -> list[SelectOptionDict]:
        """The tags found on objects, with how many objects carry each (most used kept)."""
        counts = Counter(tag for obj in self.objects.values() for tag in set(obj.tags))
        labels = {tag: f"{tag} ({n})" for tag, n in counts.items()}
        return _options(labels, lambda tag: (-counts[tag], tag), keep)

    def class_options(self, keep: Iterable[str] = ()) -> list[SelectOptionDict]:
        """The classes objects belong to, by name, with how many objects each has."""
        counts = Counter(obj.class_id for obj in self.objects.values() if obj.class_id)
        labels = {
            class_id: f"{self.class_names.get(class_id, class_id)} ({n})"
            for class_id, n in counts.items()
        }
        return _options(labels, lambda class_id: (-counts[class_id], labels[class_id]), keep)


def _options(
    labels: Mapping[str, str], rank: Callable[[str], Any], keep: Iterable[str]
) -> list[SelectOptionDict]:
    """Options sorted by label; beyond the cap, the best-ranked ones plus those already chosen."""
    values = list(labels)
    if len(values) > MAX_SELECT_OPTIONS:
        values.sort(key=rank)
        chosen = set(values[:MAX_SELECT_OPTIONS])
        chosen.update(value for value in keep if value in labels)
        values = list(chosen)
    options = [SelectOptionDict(value=value, label=labels[value]) for value in values]
    options.sort(key=lambda option: (option["label"].casefold(), option["value"]))
    return options


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
    server's object list is not worth fetching for a form that will not be shown. Raises
    :class:`ValidationError` with the key of the message to show; unexpected errors
    propagate so the caller can log them as bugs.
    """
    session = async_get_clientsession(hass, verify_ssl=address.verify_ssl)
    rest = SaymonRestClient(session, address.url, credentials, ssl_context=address.verify_ssl)
    try:
        with _rest_errors(address):
            user = await rest.current_user()
        if check_comet:
            await _async_check_comet(rest, address, session)
        catalog = None
        if read_catalog:
            with _rest_errors(address):
                catalog = await ServerCatalog.async_fetch(rest)
        return ServerCheck(user, catalog)
    finally:
        await rest.logout()


@contextmanager
def _rest_errors(address: ServerAddress) -> Iterator[None]:
    """Turn the REST client's errors into the message keys of the form."""
    try:
        yield
    except SaymonInvalidCredentialsError as err:
        raise ValidationError("invalid_auth") from err
    except SaymonTLSError as err:
        _LOGGER.debug("TLS certificate of SAYMON at %s rejected: %s", address.url, err)
        raise ValidationError("tls_error") from err
    except SaymonError as err:
        # Unreachable, timed out, or something that is not SAYMON's API at this address.
        _LOGGER.debug("Checking SAYMON at %s failed: %s", address.url, err)
        raise ValidationError("cannot_connect") from err


async def _async_check_comet(
    rest: SaymonRestClient, address: ServerAddress, session: aiohttp.ClientSession
) -> None:
    """Complete one Comet handshake with the session the REST login created."""
    comet = CometClient(
        session,
        comet_endpoint(address.url, address.comet),
        lambda refresh: rest.ensure_session(refresh=refresh),
        ssl_context=address.verify_ssl,
    )
    try:
        await comet.check()
    except SaymonTLSError as err:
        _LOGGER.debug("Comet TLS check failed: %s", err)
        raise ValidationError("tls_error") from err
    except SaymonError as err:
        _LOGGER.debug("Comet check failed: %s", err)
        raise ValidationError(
            "comet_unreachable", placeholders={"comet_address": comet.address}
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


def _multi_select(options: list[SelectOptionDict]) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=options, multiple=True, mode=SelectSelectorMode.DROPDOWN, sort=False
        )
    )


def scope_options(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The options a scope form answer is stored as (every key present, lists sorted)."""
    return {
        CONF_SCOPE: user_input[CONF_SCOPE],
        CONF_PARENTS: sorted(user_input.get(CONF_PARENTS, ())),
        CONF_TAGS: sorted(user_input.get(CONF_TAGS, ())),
        CONF_CLASSES: sorted(user_input.get(CONF_CLASSES, ())),
        CONF_LINKS: bool(user_input.get(CONF_LINKS, False)),
    }


def scope_errors(options: Mapping[str, Any]) -> dict[str, str]:
    """Refuse "selected objects" with nothing selected: it would create no devices at all."""
    if options[CONF_SCOPE] == SCOPE_SELECTED and not (
        options[CONF_PARENTS] or options[CONF_TAGS] or options[CONF_CLASSES]
    ):
        return {"base": "empty_scope"}
    return {}


def default_options(catalog: ServerCatalog) -> dict[str, Any]:
    """Everything on small servers, nothing pre-selected on large ones."""
    return default_scope_options(len(catalog.objects))


def show_scope_form(
    flow: ConfigFlow | OptionsFlow,
    catalog: ServerCatalog,
    values: Mapping[str, Any],
    errors: dict[str, str] | None = None,
) -> ConfigFlowResult:
    """Show the scope form pre-filled with ``values`` and how many devices they make.

    Choices that no longer exist on the server are left out of the suggestions: a stale value
    would fail the selector's validation when the form is sent back unchanged.
    """
    fields: dict[Any, Any] = {
        vol.Required(CONF_SCOPE): SelectSelector(
            SelectSelectorConfig(
                options=[SCOPE_ALL, SCOPE_SELECTED],
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_SCOPE,
            )
        )
    }
    suggested: dict[str, Any] = {CONF_SCOPE: values.get(CONF_SCOPE, SCOPE_ALL)}
    for key, options in (
        (CONF_PARENTS, catalog.parent_options(values.get(CONF_PARENTS, ()))),
        (CONF_TAGS, catalog.tag_options(values.get(CONF_TAGS, ()))),
        (CONF_CLASSES, catalog.class_options(values.get(CONF_CLASSES, ()))),
    ):
        if options:
            fields[vol.Optional(key)] = _multi_select(options)
            offered = {option["value"] for option in options}
            suggested[key] = [value for value in values.get(key, ()) if value in offered]
    fields[vol.Optional(CONF_LINKS, default=False)] = BooleanSelector()
    suggested[CONF_LINKS] = bool(values.get(CONF_LINKS, False))
    return flow.async_show_form(
        step_id="scope",
        data_schema=flow.add_suggested_values_to_schema(vol.Schema(fields), suggested),
        errors=errors,
        description_placeholders={
            "object_count": str(len(catalog.objects)),
            "selected_count": str(catalog.count(suggested)),
        },
    )
