"""The mirror's options as the options flow stores them, read into its settings."""

from __future__ import annotations

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
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
    DEFAULT_MQTT_QOS,
    DEFAULT_MQTT_QUEUE_SIZE,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
    MQTT_OFF,
)
from custom_components.saymon.mqtt.broker import BrokerConfig
from custom_components.saymon.mqtt.mirror import MirrorSettings


def test_no_options_mean_no_mirror() -> None:
    settings = MirrorSettings.from_options({}, "saymon.example:8443")
    assert settings.mode == MQTT_OFF
    assert not settings.enabled
    assert settings.broker is None
    assert settings.base_topic == "saymon/saymon.example:8443"
    assert (settings.qos, settings.retain, settings.queue_size) == (
        DEFAULT_MQTT_QOS,
        True,
        DEFAULT_MQTT_QUEUE_SIZE,
    )


def test_home_assistants_mqtt_needs_no_broker() -> None:
    settings = MirrorSettings.from_options({CONF_MQTT_MODE: MQTT_HOME_ASSISTANT}, "h")
    assert settings.enabled
    assert settings.broker is None


def test_every_broker_option_reaches_the_connection() -> None:
    settings = MirrorSettings.from_options(
        {
            CONF_MQTT_MODE: MQTT_BROKER,
            CONF_MQTT_HOST: "broker.lan",
            CONF_MQTT_PORT: "8883",
            CONF_MQTT_USERNAME: "mirror",
            CONF_MQTT_PASSWORD: "s3cret",
            CONF_MQTT_TLS: True,
            CONF_MQTT_VERIFY: False,
            CONF_MQTT_CA_CERT: "-----BEGIN CERTIFICATE-----",
            CONF_MQTT_CLIENT_ID: "ha-saymon",
            CONF_MQTT_PROTOCOL: "5",
            CONF_MQTT_BASE_TOPIC: "noc/saymon",
            CONF_MQTT_QOS: "0",
            CONF_MQTT_RETAIN: False,
            CONF_MQTT_QUEUE_SIZE: "500",
        },
        "h",
    )
    assert settings.enabled
    assert settings.broker == BrokerConfig(
        host="broker.lan",
        port=8883,
        username="mirror",
        password="s3cret",
        tls=True,
        verify=False,
        ca_cert="-----BEGIN CERTIFICATE-----",
        client_id="ha-saymon",
        protocol="5",
    )
    assert (settings.base_topic, settings.qos, settings.retain, settings.queue_size) == (
        "noc/saymon",
        0,
        False,
        500,
    )


def test_empty_broker_fields_mean_none() -> None:
    """The options form stores empty strings for fields left blank."""
    settings = MirrorSettings.from_options(
        {
            CONF_MQTT_MODE: MQTT_BROKER,
            CONF_MQTT_HOST: "broker.lan",
            CONF_MQTT_USERNAME: "",
            CONF_MQTT_PASSWORD: "",
            CONF_MQTT_CA_CERT: "",
            CONF_MQTT_CLIENT_ID: "",
        },
        "h",
    )
    assert settings.broker == BrokerConfig(host="broker.lan")
