"""Config flow for SAYMON: address, credentials, what becomes devices; reauth, reconfigure, options.

Every path that accepts an address or credentials proves them against the server first, each
where the user can fix it: the address step finds SAYMON's API and Comet there without
credentials (:func:`.flow_helpers.async_check_address`); the credentials steps log in, read the
current user and complete a Comet handshake (:func:`.flow_helpers.async_validate`), so a saved
entry is one that worked. The scope steps (:mod:`.scope_flow`) say how many devices and
entities a choice creates before creating them. The entry's unique id is the SAYMON user id,
never the address (see :mod:`.identity`): the same person may add one server with several
users, but not the same user twice, and a new address of the same server keeps the entry, its
devices and its entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import logging
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_URL, CONF_USERNAME
from homeassistant.core import callback

from .api.rest import Credentials
from .const import (
    AUTH_PASSWORD,
    AUTH_TOKEN,
    CONF_AUTH_METHOD,
    CONF_GRACE_PERIOD,
    CONF_TRANSPORT,
    CONF_USER_ID,
    DEFAULT_GRACE_PERIOD,
    DOMAIN,
    TRANSPORT_POLLING,
)
from .credentials import credentials_from
from .events_flow import EventsOptionsMixin
from .flow_helpers import (
    ServerAddress,
    ServerCheck,
    ValidationError,
    address_placeholders,
    address_schema,
    async_check_address,
    async_validate,
    auth_data,
    credentials_schema,
    grace_period_schema,
    without_secrets,
)
from .identity import default_title
from .metrics_flow import MetricsOptionsMixin
from .migration import ENTRY_MINOR_VERSION, ENTRY_VERSION
from .mqtt_flow import MqttOptionsMixin
from .scope_flow import ScopeSteps, ScopeStepsMixin

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Attempt:
    """The outcome of one validation: the check, or the errors and placeholders to show."""

    check: ServerCheck | None = None
    address: ServerAddress | None = None
    errors: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)


def _required[T](value: T | None) -> T:
    """Return state an earlier step set; the flow cannot reach a step without it."""
    if value is None:  # pragma: no cover - steps are only entered in order
        raise RuntimeError("config flow step entered out of order")
    return value


async def _async_attempt(
    flow: ConfigFlow | OptionsFlow,
    address: ServerAddress,
    credentials: Credentials,
    **kwargs: bool,
) -> _Attempt:
    """Run the check and turn its failures into form errors, logging only the unexpected."""
    attempt = _Attempt()
    try:
        attempt.check = await async_validate(flow.hass, address, credentials, **kwargs)
    except ValidationError as err:
        attempt.errors[err.field] = err.key
        attempt.placeholders.update(err.placeholders)
    except Exception:
        _LOGGER.exception("Unexpected error while checking SAYMON at %s", address.url)
        attempt.errors["base"] = "unknown"
    return attempt


async def _async_check_address(flow: ConfigFlow, user_input: Mapping[str, Any]) -> _Attempt:
    """Run the address check; on success ``placeholders`` is empty and ``address`` is set."""
    attempt = _Attempt(placeholders=address_placeholders())
    try:
        attempt.address = await async_check_address(flow.hass, user_input)
    except ValidationError as err:
        attempt.errors[err.field] = err.key
        attempt.placeholders.update(err.placeholders)
    except Exception:
        _LOGGER.exception("Unexpected error while checking the SAYMON address")
        attempt.errors["base"] = "unknown"
    return attempt


class SaymonConfigFlow(ScopeStepsMixin, ConfigFlow, domain=DOMAIN):
    """Add a SAYMON server as one of its users."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = ENTRY_MINOR_VERSION

    def __init__(self) -> None:
        """Start with nothing known; the steps fill these in order."""
        self._address: ServerAddress | None = None
        self._data: dict[str, Any] = {}
        self._scope: ScopeSteps | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SaymonOptionsFlow:
        """Scope and grace period can change without re-adding the server."""
        return SaymonOptionsFlow()

    # -- adding a server ------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where SAYMON and its Comet server are, and find both there before going on."""
        attempt = _Attempt(placeholders=address_placeholders())
        if user_input is not None:
            attempt = await _async_check_address(self, user_input)
            if attempt.address is not None:
                self._address = attempt.address
                return await self.async_step_auth()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(address_schema(), user_input),
            errors=attempt.errors,
            description_placeholders=attempt.placeholders,
        )

    async def async_step_auth(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Let the user log in with a password or with an API token."""
        return self.async_show_menu(step_id="auth", menu_options=[AUTH_PASSWORD, AUTH_TOKEN])

    async def async_step_password(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Log in with a SAYMON login and password."""
        return await self._async_step_credentials(AUTH_PASSWORD, user_input)

    async def async_step_token(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Log in with an API token from the SAYMON user's profile."""
        return await self._async_step_credentials(AUTH_TOKEN, user_input)

    async def _async_step_credentials(
        self, method: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Prove the credentials, REST and Comet before asking what to mirror."""
        address = _required(self._address)
        attempt = _Attempt()
        if user_input is not None:
            data = auth_data(method, user_input)
            attempt = await _async_attempt(self, address, credentials_from(data), read_catalog=True)
            if attempt.check is not None:
                user_id = attempt.check.user.id
                await self.async_set_unique_id(user_id)
                self._abort_if_unique_id_configured()
                self._data = {**address.as_data(), **data, CONF_USER_ID: user_id}
                self._scope = ScopeSteps(_required(attempt.check.catalog))
                return await self.async_step_scope()
        return self.async_show_form(
            step_id=method,
            data_schema=self.add_suggested_values_to_schema(
                credentials_schema(method), without_secrets(user_input)
            ),
            errors=attempt.errors,
            description_placeholders={**address_placeholders(address), **attempt.placeholders},
        )

    # -- what becomes devices (see scope_flow) ---------------------------------------------

    async def async_step_scope(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A selection, or all objects (with what they create)."""
        return _required(self._scope).menu(self)

    async def async_step_scope_create(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Create the entry without link entities."""
        return self._async_create(links=False)

    async def async_step_scope_create_links(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Create the entry with link entities."""
        return self._async_create(links=True)

    def _async_create(self, *, links: bool) -> ConfigFlowResult:
        options = _required(self._scope).chosen(links=links)
        address = _required(self._address)
        return self.async_create_entry(
            title=default_title(address.url),
            data=self._data,
            options={
                **options,
                CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
                CONF_TRANSPORT: address.transport,
            },
        )

    # -- new credentials ------------------------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """SAYMON rejected the stored credentials; ask for new ones."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the same kind of credentials the entry uses, for the same SAYMON user."""
        entry = self._get_reauth_entry()
        method: str = entry.data[CONF_AUTH_METHOD]
        attempt = _Attempt()
        if user_input is not None:
            data = auth_data(method, user_input)
            # Comet is not checked: it does not depend on the credentials, and an outage
            # there must not keep the user from fixing them.
            attempt = await _async_attempt(
                self,
                ServerAddress.from_input(entry.data),
                credentials_from(data),
                check_comet=False,
            )
            if attempt.check is not None:
                await self.async_set_unique_id(attempt.check.user.id, raise_on_progress=False)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self._async_update_and_abort(
                    entry, "reauth_successful", data={**entry.data, **data}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                credentials_schema(method),
                without_secrets(user_input) or {CONF_USERNAME: entry.data.get(CONF_USERNAME)},
            ),
            errors=attempt.errors,
            description_placeholders={
                **address_placeholders(ServerAddress.from_input(entry.data)),
                **attempt.placeholders,
            },
        )

    # -- new address ----------------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the addresses or TLS checking, proven with the stored credentials."""
        entry = self._get_reconfigure_entry()
        attempt = _Attempt(placeholders=address_placeholders())
        if user_input is not None:
            attempt = await _async_check_address(self, user_input)
            if (address := attempt.address) is not None:
                attempt = await _async_attempt(self, address, credentials_from(entry.data))
                if attempt.check is not None:
                    return await self._async_finish_reconfigure(entry, address, attempt.check)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                address_schema(), user_input or entry.data
            ),
            errors=attempt.errors,
            description_placeholders={**address_placeholders(), **attempt.placeholders},
        )

    async def _async_finish_reconfigure(
        self, entry: ConfigEntry, address: ServerAddress, check: ServerCheck
    ) -> ConfigFlowResult:
        """Store the new address if the stored credentials still sign in as the same user.

        Signing in as another user means another SAYMON server (or account) answers there:
        following it would silently swap every device and entity, so the flow stops.
        """
        await self.async_set_unique_id(check.user.id, raise_on_progress=False)
        self._abort_if_unique_id_mismatch(reason="wrong_server")
        # A title the user chose is kept; the default one follows the address.
        old_title = default_title(entry.data[CONF_URL])
        return self._async_update_and_abort(
            entry,
            "reconfigure_successful",
            title=default_title(address.url) if entry.title == old_title else entry.title,
            data={**entry.data, **address.as_data()},
            # Where WebSocket is refused now, long-polling; a choice of long-polling is kept.
            options={**entry.options, CONF_TRANSPORT: address.transport}
            if address.transport == TRANSPORT_POLLING
            else entry.options,
        )

    def _async_update_and_abort(
        self, entry: ConfigEntry, reason: str, **changes: Any
    ) -> ConfigFlowResult:
        """Store the changes and make sure the entry restarts with them, exactly once.

        A loaded entry is reloaded by its update listener (which also applies options);
        ``async_update_reload_and_abort`` would reload it a second time, which Home
        Assistant 2026 warns about. An entry that is not loaded has no listener running,
        so it is reloaded here.
        """
        loaded = entry.state is ConfigEntryState.LOADED
        self.hass.config_entries.async_update_entry(entry, **changes)
        if not loaded:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(reason=reason)


class SaymonOptionsFlow(
    ScopeStepsMixin, EventsOptionsMixin, MetricsOptionsMixin, MqttOptionsMixin, OptionsFlow
):
    """Change what becomes devices, how long a lost connection is tolerated, and the mirror."""

    def __init__(self) -> None:
        """The catalogue is read once, when the scope steps are first shown."""
        self._scope: ScopeSteps | None = None
        self._mirror_input = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer the settings separately: only the scope needs the server."""
        return self.async_show_menu(
            step_id="init", menu_options=["scope", "metrics", "grace_period", "events", "mqtt"]
        )

    async def async_step_scope(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose again which objects become devices, from what the server has now."""
        entry = self.config_entry
        if self._scope is None:
            attempt = await _async_attempt(
                self,
                ServerAddress.from_input(entry.data),
                credentials_from(entry.data),
                check_comet=False,
                read_catalog=True,
            )
            if attempt.check is None:
                reason = attempt.errors["base"]
                if reason == "invalid_token":
                    reason = "invalid_auth"
                return self.async_abort(
                    reason=reason if reason in {"invalid_auth", "unknown"} else "cannot_connect"
                )
            self._scope = ScopeSteps(_required(attempt.check.catalog), entry.options)
        return self._scope.menu(self)

    async def async_step_scope_create(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Save the choice without link entities."""
        return self._async_save(_required(self._scope).chosen(links=False))

    async def async_step_scope_create_links(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Save the choice with link entities."""
        return self._async_save(_required(self._scope).chosen(links=True))

    async def async_step_grace_period(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Set how long entities stay available while the connection is down."""
        if user_input is not None:
            return self._async_save({CONF_GRACE_PERIOD: int(user_input[CONF_GRACE_PERIOD])})
        return self.async_show_form(
            step_id="grace_period",
            data_schema=self.add_suggested_values_to_schema(
                grace_period_schema(),
                {
                    CONF_GRACE_PERIOD: self.config_entry.options.get(
                        CONF_GRACE_PERIOD, DEFAULT_GRACE_PERIOD
                    )
                },
            ),
        )

    def _async_save(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        """Store the changed setting next to the others (the entry reloads to apply them)."""
        return self.async_create_entry(data={**self.config_entry.options, **changes})
