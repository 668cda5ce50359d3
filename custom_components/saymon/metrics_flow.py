"""Options-flow steps for metric entities: which are enabled, what becomes of the rest, how many.

The numbers come from what the running entry learned from SAYMON (every metric of every object
and link in scope), so the entry must be loaded. The choice is made in two steps whose numbers
are true for what each offers: ``metrics`` (form: the enabled names or patterns, and the others),
then ``metrics_confirm`` (menu: how many metric entities that creates, how many enabled, and the
entry's total of enabled entities). A choice that would take the entry past
:data:`~.metric_catalog.MAX_ENABLED_ENTITIES` enabled entities is refused on the form. Saving
brings the registered metric entities along (:func:`.hub.metric_registry.async_apply_options`)
and the entry reloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .const import CONF_USER_ID
from .hub import SaymonHub
from .hub.metric_registry import async_apply_options, enabled_entities
from .metric_catalog import (
    CONF_METRICS,
    CONF_METRICS_OTHERS,
    KNOWN,
    MAX_ENABLED_ENTITIES,
    MetricOptions,
    Others,
)
from .schema_lib import vol

MAX_OFFERED: Final = 500
"""Metric names offered in the list at most (the most common ones); patterns can be typed."""


class MetricsOptionsMixin(OptionsFlow):
    """The ``metrics`` and ``metrics_confirm`` steps of the options flow."""

    _metric_choice: MetricOptions | None = None

    def _async_save(self, changes: Mapping[str, Any]) -> ConfigFlowResult:
        raise NotImplementedError

    def _hub(self) -> SaymonHub | None:
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return None
        hub: SaymonHub = entry.runtime_data.hub
        return hub

    async def async_step_metrics(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the metric names or patterns that are enabled, and what becomes of the rest."""
        hub = self._hub()
        if hub is None:
            return self.async_abort(reason="metrics_not_loaded")
        current = MetricOptions.from_options(self.config_entry.options)
        errors: dict[str, str] = {}
        numbers = self._numbers(hub, current)
        if user_input is not None:
            choice = _choice(user_input)
            numbers = self._numbers(hub, choice)
            if int(numbers["total"]) > MAX_ENABLED_ENTITIES:
                errors["base"] = "too_many_entities"
            else:
                self._metric_choice = choice
                return await self.async_step_metrics_confirm()
        shown = current if user_input is None else _choice(user_input)
        return self.async_show_form(
            step_id="metrics",
            data_schema=self.add_suggested_values_to_schema(
                _schema(hub, shown),
                {CONF_METRICS: list(shown.enabled), CONF_METRICS_OTHERS: shown.others.value},
            ),
            errors=errors,
            description_placeholders={
                **numbers,
                "metric_names": str(len(hub.metrics.path_counts)),
                "example": "percentageUsage.*",
            },
        )

    async def async_step_metrics_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say how many metric entities the choice creates, before saving it."""
        hub = self._hub()
        choice = self._metric_choice
        if hub is None or choice is None:
            return self.async_abort(reason="metrics_not_loaded")
        return self.async_show_menu(
            step_id="metrics_confirm",
            menu_options=["metrics_save", "metrics"],
            description_placeholders=self._numbers(hub, choice),
        )

    async def async_step_metrics_save(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Save the choice; the registered metric entities follow it."""
        choice = self._metric_choice
        entry = self.config_entry
        if choice is None:  # pragma: no cover - the menu is only shown with a choice
            return self.async_abort(reason="metrics_not_loaded")
        async_apply_options(
            self.hass,
            entry.entry_id,
            str(entry.data[CONF_USER_ID]),
            MetricOptions.from_options(entry.options),
            choice,
        )
        return self._async_save(
            {CONF_METRICS: list(choice.enabled), CONF_METRICS_OTHERS: choice.others.value}
        )

    def _numbers(self, hub: SaymonHub, choice: MetricOptions) -> dict[str, str]:
        created, enabled = hub.metrics.count(choice)
        others = enabled_entities(self.hass, self.config_entry.entry_id, metrics=False)
        return {
            "created": str(created),
            "enabled": str(enabled),
            "total": str(others + enabled),
            "limit": str(MAX_ENABLED_ENTITIES),
        }


def _choice(user_input: Mapping[str, Any]) -> MetricOptions:
    """The form's answer: names and patterns without blanks or repeats."""
    names = (str(name).strip() for name in user_input.get(CONF_METRICS, ()))
    return MetricOptions(
        tuple(dict.fromkeys(name for name in names if name)),
        Others(user_input[CONF_METRICS_OTHERS]),
    )


def _schema(hub: SaymonHub, shown: MetricOptions) -> vol.Schema:
    counts = hub.metrics.path_counts
    names = [path for path, _ in counts.most_common(MAX_OFFERED)]
    names += [path for path in (*KNOWN, *shown.enabled) if path not in counts]
    options = [
        SelectOptionDict(value=path, label=_label(hub, path, counts.get(path, 0)))
        for path in dict.fromkeys(names)
    ]
    options.sort(key=lambda option: (-counts.get(option["value"], 0), option["value"]))
    return vol.Schema(
        {
            vol.Optional(CONF_METRICS): SelectSelector(
                SelectSelectorConfig(
                    options=options,
                    multiple=True,
                    custom_value=True,
                    mode=SelectSelectorMode.DROPDOWN,
                    sort=False,
                )
            ),
            vol.Required(CONF_METRICS_OTHERS): SelectSelector(
                SelectSelectorConfig(
                    options=[others.value for others in Others],
                    translation_key=CONF_METRICS_OTHERS,
                    mode=SelectSelectorMode.LIST,
                )
            ),
        }
    )


def _label(hub: SaymonHub, path: str, count: int) -> str:
    """``Round trip average · roundTripAverage (120)``; unknown metrics by their path alone."""
    if path not in KNOWN:
        return f"{path} ({count})"
    return f"{hub.metrics.name_of(path)} · {path} ({count})"
