"""Constants of the SAYMON integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "saymon"

# Config entry data
CONF_COMET: Final = "comet"
"""Comet address: empty (same host), a port, or a full URL."""
CONF_AUTH_METHOD: Final = "auth_method"
AUTH_PASSWORD: Final = "password"
AUTH_TOKEN: Final = "token"
CONF_API_TOKEN: Final = "api_token"
CONF_USER_ID: Final = "user_id"

# Options
CONF_SCOPE: Final = "scope"
SCOPE_ALL: Final = "all"
SCOPE_SELECTED: Final = "selected"
CONF_PARENTS: Final = "parents"
"""Object ids whose whole subtree (the object included) is in scope."""
CONF_TAGS: Final = "tags"
CONF_CLASSES: Final = "classes"
CONF_LINKS: Final = "links"
CONF_GRACE_PERIOD: Final = "grace_period"
DEFAULT_GRACE_PERIOD: Final = 30
"""Seconds the Comet link may be down before entities turn unavailable."""

AUTO_ALL_LIMIT: Final = 300
"""Servers with at most this many objects default to "all objects" in scope."""

UNREACHABLE_REPAIR_AFTER: Final = timedelta(minutes=15)

# Bus events
EVENT_INCIDENT: Final = "saymon_incident"
EVENT_STATE_CHANGED: Final = "saymon_state_changed"
EVENT_MODEL_CHANGED: Final = "saymon_model_changed"
EVENT_SNMP_TRAP: Final = "saymon_snmp_trap"
EVENT_MQTT_MESSAGE: Final = "saymon_mqtt_message"
EVENT_NOTIFICATION: Final = "saymon_notification"
EVENT_JOB: Final = "saymon_job"
EVENT_BULK_FINISHED: Final = "saymon_bulk_finished"

# Server events and transport options (see server_kinds.py)
CONF_TRANSPORT: Final = "transport"
TRANSPORT_WEBSOCKET: Final = "websocket"
TRANSPORT_POLLING: Final = "polling"

# MQTT mirror options
CONF_MQTT_MODE: Final = "mqtt_mode"
MQTT_OFF: Final = "off"
MQTT_HOME_ASSISTANT: Final = "home_assistant"
MQTT_BROKER: Final = "broker"
CONF_MQTT_HOST: Final = "mqtt_host"
CONF_MQTT_PORT: Final = "mqtt_port"
CONF_MQTT_USERNAME: Final = "mqtt_username"
CONF_MQTT_PASSWORD: Final = "mqtt_password"
CONF_MQTT_TLS: Final = "mqtt_tls"
CONF_MQTT_VERIFY: Final = "mqtt_verify"
CONF_MQTT_CA_CERT: Final = "mqtt_ca_cert"
CONF_MQTT_CLIENT_ID: Final = "mqtt_client_id"
CONF_MQTT_PROTOCOL: Final = "mqtt_protocol"
CONF_MQTT_BASE_TOPIC: Final = "mqtt_base_topic"
CONF_MQTT_QOS: Final = "mqtt_qos"
CONF_MQTT_RETAIN: Final = "mqtt_retain"
CONF_MQTT_QUEUE_SIZE: Final = "mqtt_queue_size"
DEFAULT_MQTT_PORT: Final = 1883
DEFAULT_MQTT_QOS: Final = 1
DEFAULT_MQTT_QUEUE_SIZE: Final = 100_000
CONF_MQTT_DISCOVERY: Final = "mqtt_discovery"
CONF_MQTT_DISCOVERY_PREFIX: Final = "mqtt_discovery_prefix"
DEFAULT_MQTT_DISCOVERY_PREFIX: Final = "homeassistant"
"""Home Assistant's own default discovery prefix (what a second Home Assistant listens to)."""
