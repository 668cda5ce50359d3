"""Metric entities in Home Assistant's entity registry: finding them, and following the options.

A metric entity's unique id ends in ``metric:<path>`` (after the account, ``object``/``link`` and
the SAYMON id), so the registry alone tells which metrics an entry created before, with the
state class each records statistics with. When the user changes which metrics are enabled,
:func:`async_apply_options` brings the registered entities along: metrics no longer created are
removed, metrics the new choice enables are enabled (if only the integration had disabled them),
and metrics only the old choice enabled are disabled. What the user enabled or disabled by hand
otherwise stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from ..api.metrics import Kind
from ..api.models import EntityType
from ..metric_catalog import MetricOptions

METRIC_PREFIX: Final = "metric:"
"""Start of a metric entity's key (the last part of its unique id): ``metric:<path>``."""


def metric_key(path: str) -> str:
    """The key of a metric's entity description (and so of its unique id)."""
    return f"{METRIC_PREFIX}{path}"


def parse_unique_id(unique_id: str, account: str) -> tuple[EntityType, str, str] | None:
    """``(type, object or link id, path)`` of a metric entity's unique id of ``account``."""
    parts = unique_id.split("|", 3)
    if len(parts) != 4 or parts[0] != account or not parts[3].startswith(METRIC_PREFIX):
        return None
    kind = {"object": EntityType.OBJECT, "link": EntityType.LINK}.get(parts[1])
    path = parts[3][len(METRIC_PREFIX) :]
    return None if kind is None or not path else (kind, parts[2], path)


@dataclass(frozen=True, slots=True)
class RegisteredMetric:
    """One metric entity of the registry."""

    entry: er.RegistryEntry
    entity_type: EntityType
    target_id: str
    path: str

    @property
    def state_class(self) -> str | None:
        """The state class its statistics are recorded with, if any."""
        value = (self.entry.capabilities or {}).get("state_class")
        return value if isinstance(value, str) else None

    @property
    def binary(self) -> bool:
        """Whether it is a binary sensor."""
        return self.entry.domain == "binary_sensor"

    @property
    def kind(self) -> Kind:
        """What its values were: a binary sensor's booleans, numbers, or text."""
        if self.binary:
            return Kind.BOOLEAN
        if self.state_class is not None or self.entry.original_device_class == "timestamp":
            return Kind.NUMBER
        return Kind.TEXT


def registered_metrics(
    hass: HomeAssistant, entry_id: str, account: str
) -> Iterator[RegisteredMetric]:
    """The metric entities of one config entry."""
    registry = er.async_get(hass)
    for entry in er.async_entries_for_config_entry(registry, entry_id):
        parsed = parse_unique_id(entry.unique_id, account)
        if parsed is not None:
            yield RegisteredMetric(entry, *parsed)


def enabled_entities(hass: HomeAssistant, entry_id: str, *, metrics: bool) -> int:
    """Enabled entities of an entry: its metric entities, or all the others."""
    registry = er.async_get(hass)
    return sum(
        entry.disabled_by is None and (METRIC_PREFIX in entry.unique_id) is metrics
        for entry in er.async_entries_for_config_entry(registry, entry_id)
    )


def async_apply_options(
    hass: HomeAssistant, entry_id: str, account: str, old: MetricOptions, new: MetricOptions
) -> None:
    """Bring the registered metric entities from the ``old`` choice to the ``new`` one."""
    registry = er.async_get(hass)
    for metric in list(registered_metrics(hass, entry_id, account)):
        entity_id, path = metric.entry.entity_id, metric.path
        disabled_by = metric.entry.disabled_by
        if not new.creates(path):
            registry.async_remove(entity_id)
        elif new.enables(path) and disabled_by is er.RegistryEntryDisabler.INTEGRATION:
            registry.async_update_entity(entity_id, disabled_by=None)
        elif old.enables(path) and not new.enables(path) and disabled_by is None:
            registry.async_update_entity(
                entity_id, disabled_by=er.RegistryEntryDisabler.INTEGRATION
            )
