"""MQTT mirror of SAYMON incidents and object states."""
