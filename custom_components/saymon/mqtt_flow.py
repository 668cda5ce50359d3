"""Options-flow steps of the MQTT mirror: where it publishes, and how.

Kept apart from ``config_flow.py`` so that file stays about SAYMON itself. The dedicated
broker is tested with a real connection before the options are saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.const import CONF_URL
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_DISCOVERY,
    CONF_MQTT_DISCOVERY_PREFIX,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_PORT,
    CONF_MQTT_PROTOCOL,
    CONF_MQTT_QOS,
    CONF_MQTT_QUEUE_SIZE,
    CONF_MQTT_RETAIN,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_MQTT_VERIFY,
    DEFAULT_MQTT_DISCOVERY_PREFIX,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_QOS,
    DEFAULT_MQTT_QUEUE_SIZE,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
    MQTT_OFF,
)
from .identity import server_host
from .mqtt.connection import BrokerConfig
from .mqtt.discovery_guard import listening_here
from .mqtt.mirror import MirrorSettings
from .mqtt.probe import async_test_connection
from .mqtt.topics import clean_base, default_base
from .schema_lib import vol

MIN_QUEUE = 1_000
MAX_QUEUE = 1_000_000


def _box(minimum: int, maximum: int) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(min=minimum, max=maximum, step=1, mode=NumberSelectorMode.BOX)
    )


def mirror_schema() -> vol.Schema:
    """Where and how the mirror publishes."""
    return vol.Schema(
        {
            vol.Required(CONF_MQTT_MODE): SelectSelector(
                SelectSelectorConfig(
                    options=[MQTT_OFF, MQTT_HOME_ASSISTANT, MQTT_BROKER],
                    translation_key="mqtt_mode",
                    mode=SelectSelectorMode.LIST,
                )
            ),
            vol.Required(CONF_MQTT_BASE_TOPIC): TextSelector(),
            vol.Required(CONF_MQTT_QOS): SelectSelector(
                SelectSelectorConfig(options=["0", "1", "2"], mode=SelectSelectorMode.DROPDOWN)
            ),
            vol.Required(CONF_MQTT_RETAIN): BooleanSelector(),
            vol.Required(CONF_MQTT_QUEUE_SIZE): vol.All(
                _box(MIN_QUEUE, MAX_QUEUE), vol.Coerce(int)
            ),
            # Optional with defaults: forms posted without them (older clients) keep it off.
            vol.Optional(CONF_MQTT_DISCOVERY, default=False): BooleanSelector(),
            vol.Optional(
                CONF_MQTT_DISCOVERY_PREFIX, default=DEFAULT_MQTT_DISCOVERY_PREFIX
            ): TextSelector(),
        }
    )


def broker_schema() -> vol.Schema:
    """The dedicated broker's connection settings."""
    return vol.Schema(
        {
            vol.Required(CONF_MQTT_HOST): TextSelector(),
            vol.Required(CONF_MQTT_PORT): vol.All(_box(1, 65535), vol.Coerce(int)),
            vol.Optional(CONF_MQTT_USERNAME): TextSelector(),
            vol.Optional(CONF_MQTT_PASSWORD): TextSelector(
                TextSelectorConfig(type=TextSelectorType.PASSWORD)
            ),
            vol.Required(CONF_MQTT_TLS): BooleanSelector(),
            vol.Required(CONF_MQTT_VERIFY): BooleanSelector(),
            vol.Optional(CONF_MQTT_CA_CERT): TextSelector(TextSelectorConfig(multiline=True)),
            vol.Optional(CONF_MQTT_CLIENT_ID): TextSelector(),
            vol.Required(CONF_MQTT_PROTOCOL): SelectSelector(
                SelectSelectorConfig(options=["3.1.1", "5"], mode=SelectSelectorMode.DROPDOWN)
            ),
        }
    )


def mirror_defaults(options: Mapping[str, Any], host: str) -> dict[str, Any]:
    """Current mirror options, with defaults for what was never set."""
    return {
        CONF_MQTT_MODE: options.get(CONF_MQTT_MODE, MQTT_OFF),
        CONF_MQTT_BASE_TOPIC: options.get(CONF_MQTT_BASE_TOPIC) or default_base(host),
        CONF_MQTT_QOS: str(options.get(CONF_MQTT_QOS, DEFAULT_MQTT_QOS)),
        CONF_MQTT_RETAIN: options.get(CONF_MQTT_RETAIN, True),
        CONF_MQTT_QUEUE_SIZE: options.get(CONF_MQTT_QUEUE_SIZE, DEFAULT_MQTT_QUEUE_SIZE),
        CONF_MQTT_DISCOVERY: options.get(CONF_MQTT_DISCOVERY, False),
        CONF_MQTT_DISCOVERY_PREFIX: options.get(CONF_MQTT_DISCOVERY_PREFIX)
        or DEFAULT_MQTT_DISCOVERY_PREFIX,
    }


def broker_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """Current broker options (never the password), with defaults."""
    return {
        CONF_MQTT_HOST: options.get(CONF_MQTT_HOST, ""),
        CONF_MQTT_PORT: options.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT),
        CONF_MQTT_USERNAME: options.get(CONF_MQTT_USERNAME, ""),
        CONF_MQTT_TLS: options.get(CONF_MQTT_TLS, False),
        CONF_MQTT_VERIFY: options.get(CONF_MQTT_VERIFY, True),
        CONF_MQTT_CA_CERT: options.get(CONF_MQTT_CA_CERT, ""),
        CONF_MQTT_CLIENT_ID: options.get(CONF_MQTT_CLIENT_ID, ""),
        CONF_MQTT_PROTOCOL: options.get(CONF_MQTT_PROTOCOL, "3.1.1"),
    }


class MqttOptionsMixin(OptionsFlow):
    """The ``mqtt`` and ``mqtt_broker`` steps of the options flow."""

    _mirror_input: dict[str, Any]

    def _host(self) -> str:
        """The server's host, for the default base topic (the same one the mirror falls back to)."""
        return server_host(self.config_entry.data[CONF_URL])

    def _async_save(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        raise NotImplementedError

    async def async_step_mqtt(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Turn the mirror on or off and choose its topics, QoS, retain flag and queue."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input = {
                **user_input,
                CONF_MQTT_QOS: int(user_input[CONF_MQTT_QOS]),
                CONF_MQTT_BASE_TOPIC: clean_base(user_input[CONF_MQTT_BASE_TOPIC]),
                CONF_MQTT_DISCOVERY_PREFIX: clean_base(
                    user_input.get(CONF_MQTT_DISCOVERY_PREFIX) or DEFAULT_MQTT_DISCOVERY_PREFIX
                ),
            }
            mode = user_input[CONF_MQTT_MODE]
            discovery = user_input.get(CONF_MQTT_DISCOVERY, False)
            prefix = user_input[CONF_MQTT_DISCOVERY_PREFIX] if discovery else None
            if prefix == user_input[CONF_MQTT_BASE_TOPIC]:
                errors["base"] = "discovery_prefix_is_base"
            elif mode == MQTT_BROKER:
                self._mirror_input = user_input
                return await self.async_step_mqtt_broker()
            elif mode == MQTT_HOME_ASSISTANT and not self.hass.config_entries.async_loaded_entries(
                "mqtt"
            ):
                errors["base"] = "mqtt_not_set_up"
            elif (error := self._discovery_loop(prefix, None)) is not None:
                errors["base"] = error
            else:
                return await self._async_save_mirror(user_input)
        return self.async_show_form(
            step_id="mqtt",
            data_schema=self.add_suggested_values_to_schema(
                mirror_schema(),
                user_input or mirror_defaults(self.config_entry.options, self._host()),
            ),
            errors=errors,
            description_placeholders={
                "example_topic": f"{default_base(self._host())}/status",
                "discovery_prefix": _prefix(user_input),
            },
        )

    async def async_step_mqtt_broker(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Connect to the dedicated broker once before saving its settings."""
        errors: dict[str, str] = {}
        options = self.config_entry.options
        values = user_input or broker_defaults(options)
        if user_input is not None:
            if not user_input.get(CONF_MQTT_PASSWORD) and user_input.get(
                CONF_MQTT_USERNAME
            ) == options.get(CONF_MQTT_USERNAME):
                # An empty password field keeps the stored one (it is never shown).
                user_input[CONF_MQTT_PASSWORD] = options.get(CONF_MQTT_PASSWORD, "")
            changes = {**self._mirror_input, **user_input}
            settings = MirrorSettings.from_options(changes, self._host())
            if settings.broker is None:  # pragma: no cover - mode is broker here
                raise RuntimeError("broker settings missing")
            error = await async_test_connection(_with_probe_id(settings.broker))
            if error is None:
                error = self._discovery_loop(settings.discovery_prefix, settings.broker)
            if error is None:
                return await self._async_save_mirror(changes)
            errors["base"] = error
        return self.async_show_form(
            step_id="mqtt_broker",
            data_schema=self.add_suggested_values_to_schema(
                broker_schema(),
                {k: v for k, v in values.items() if k != CONF_MQTT_PASSWORD},
            ),
            errors=errors,
            # "Nothing answered at host:port" names what was tried.
            description_placeholders={
                "host": str(values.get(CONF_MQTT_HOST, "")),
                "port": str(values.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT)),
                "discovery_prefix": _prefix(self._mirror_input),
            },
        )

    def _discovery_loop(self, prefix: str | None, broker: BrokerConfig | None) -> str | None:
        """``discovery_loop`` when this Home Assistant would discover its own SAYMON devices.

        ``broker`` is the dedicated broker, ``None`` for the route through Home Assistant's MQTT.
        """
        if prefix is not None and listening_here(self.hass, prefix, broker):
            return "discovery_loop"
        return None

    async def _async_save_mirror(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        """Save; first clear the running discovery's configs if it will no longer own them.

        Turning discovery (or the mirror) off, or moving it to another prefix or broker, would
        otherwise leave the devices behind in every Home Assistant that discovered them.
        """
        data = getattr(self.config_entry, "runtime_data", None)
        mirror = getattr(data, "mirror", None)
        if mirror is not None and mirror.discovery is not None:
            options = {**self.config_entry.options, **changes}
            new = MirrorSettings.from_options(options, self._host())
            if _where(new) != _where(mirror.settings):
                await mirror.discovery.async_retire()
        return self._async_save(changes)


def _prefix(values: Mapping[str, Any] | None) -> str:
    """The discovery prefix for messages (what was entered, else the default)."""
    return str((values or {}).get(CONF_MQTT_DISCOVERY_PREFIX) or DEFAULT_MQTT_DISCOVERY_PREFIX)


def _where(settings: MirrorSettings) -> tuple[str | None, str, str | None, int | None]:
    """Where discovery configs go: prefix (``None``: off), route and broker address."""
    broker = settings.broker
    return (
        settings.discovery_prefix if settings.enabled else None,
        settings.mode,
        None if broker is None else broker.host,
        None if broker is None else broker.port,
    )


def _with_probe_id(config: BrokerConfig) -> BrokerConfig:
    """Test with a client id of its own, so the probe does not kick the running mirror off."""
    return replace(config, client_id=f"{config.client_id}-probe" if config.client_id else "")
