"""The scope steps of the config and options flows: which SAYMON objects become devices.

A data-entry form cannot change while the user fills it in, so a count printed next to a
choice goes stale the moment the choice changes. The choice is therefore made in steps whose
numbers are true for what each offers:

1. ``scope`` (menu): a selection, or all objects with the devices and entities they make;
2. ``scope_select`` (form): subtrees, tags (by their SAYMON names) and classes;
3. ``scope_confirm`` (menu): how many devices and entities the choice creates, with or without
   entities for the links, before anything is created; or back to 1.

Neither choice is preselected: on a server with hundreds of objects, "all" would put every
object's entities on Home Assistant's default Overview dashboard, so the user decides knowing
the numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
import logging
from typing import Any, Final

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .api.errors import SaymonConnectionError, SaymonError, SaymonInvalidCredentialsError
from .api.model import children_index
from .api.models import SaymonObject
from .api.rest import SaymonRestClient
from .const import (
    CONF_CLASSES,
    CONF_LINKS,
    CONF_PARENTS,
    CONF_SCOPE,
    CONF_TAGS,
    SCOPE_ALL,
    SCOPE_SELECTED,
)
from .schema_lib import vol
from .scope import Scope, object_path

_LOGGER = logging.getLogger(__name__)

MAX_SELECT_OPTIONS: Final = 1000
"""Longest list a multi-select offers: the frontend renders every option at once."""

OBJECT_FIELDS: Final = ("name", "parent_id", "class_id", "tags")
"""All the scope steps need; asking for less keeps the answer of a large server small."""

ENTITIES_PER_OBJECT: Final = 2
"""An object's device has its state sensor and its problem binary sensor (kept true by tests)."""
ENTITIES_PER_LINK: Final = 1
"""A link has its state sensor."""

STEP_MENU: Final = "scope"
STEP_ALL: Final = "scope_all"
STEP_SELECT: Final = "scope_select"
STEP_CONFIRM: Final = "scope_confirm"
STEP_CREATE: Final = "scope_create"
STEP_CREATE_LINKS: Final = "scope_create_links"


@dataclass(frozen=True, slots=True)
class ServerCatalog:
    """What the scope steps offer: the objects, class and tag names, and how many links."""

    objects: Mapping[str, SaymonObject]
    class_names: Mapping[str, str] = field(default_factory=dict)
    tag_names: Mapping[str, str] = field(default_factory=dict)
    link_count: int = 0

    @classmethod
    async def async_fetch(cls, rest: SaymonRestClient) -> ServerCatalog:
        """Read the objects (only the fields the steps need), classes, tags and links.

        Tag names and links only label and count: a server that refuses them (an older
        SAYMON, a user without the permission) still gets the steps, with tag ids and no
        link option. Losing the connection or the credentials fails the whole read.
        """
        objects = await rest.objects(fields=OBJECT_FIELDS)
        classes = await rest.classes()
        tag_names: dict[str, str] = {}
        link_count = 0
        try:
            tag_names = await rest.tags()
        except (SaymonConnectionError, SaymonInvalidCredentialsError):
            raise
        except SaymonError as err:
            _LOGGER.debug("SAYMON's tag names are not available (ids shown instead): %s", err)
        try:
            link_count = len(await rest.links(fields=("id",)))
        except (SaymonConnectionError, SaymonInvalidCredentialsError):
            raise
        except SaymonError as err:
            _LOGGER.debug("SAYMON's links are not available: %s", err)
        return cls(
            {obj.id: obj for obj in objects},
            {cls_.id: cls_.name for cls_ in classes},
            tag_names,
            link_count,
        )

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
        """The tags found on objects, by name, with how many objects carry each."""
        counts = Counter(tag for obj in self.objects.values() for tag in set(obj.tags))
        labels = {tag: f"{self.tag_names.get(tag, tag)} ({n})" for tag, n in counts.items()}
        return _options(labels, lambda tag: (-counts[tag], labels[tag]), keep)

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


def _multi_select(options: list[SelectOptionDict]) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=options, multiple=True, mode=SelectSelectorMode.DROPDOWN, sort=False
        )
    )


def selection_options(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The options a selection form answer is stored as (every key present, lists sorted)."""
    return {
        CONF_SCOPE: SCOPE_SELECTED,
        CONF_PARENTS: sorted(user_input.get(CONF_PARENTS, ())),
        CONF_TAGS: sorted(user_input.get(CONF_TAGS, ())),
        CONF_CLASSES: sorted(user_input.get(CONF_CLASSES, ())),
    }


ALL_OBJECTS: Final[Mapping[str, Any]] = {
    CONF_SCOPE: SCOPE_ALL,
    CONF_PARENTS: [],
    CONF_TAGS: [],
    CONF_CLASSES: [],
}


type ScopeFlow = ConfigFlow | OptionsFlow


class ScopeSteps:
    """The state of the scope steps of one flow: the catalogue, the choice so far.

    The flows call one method per step; ``current`` is what the entry has now (the options
    flow) and only fills the selection form's suggestions.
    """

    def __init__(self, catalog: ServerCatalog, current: Mapping[str, Any] | None = None) -> None:
        """Start from the server's catalogue and the entry's current choice, if any."""
        self.catalog = catalog
        self.current: Mapping[str, Any] = current or {}
        self.choice: Mapping[str, Any] = ALL_OBJECTS

    def _numbers(self, choice: Mapping[str, Any]) -> dict[str, str]:
        devices = self.catalog.count(choice)
        entities = devices * ENTITIES_PER_OBJECT
        links = self.catalog.link_count
        return {
            "object_count": str(len(self.catalog.objects)),
            "link_count": str(links),
            "device_count": str(devices),
            "entity_count": str(entities),
            "entity_count_links": str(entities + links * ENTITIES_PER_LINK),
        }

    def menu(self, flow: ScopeFlow) -> ConfigFlowResult:
        """Offer a selection or all objects, the latter with what it creates."""
        numbers = self._numbers(ALL_OBJECTS)
        return flow.async_show_menu(
            step_id=STEP_MENU,
            menu_options=[STEP_SELECT, STEP_ALL],
            description_placeholders={
                "object_count": numbers["object_count"],
                "link_count": numbers["link_count"],
                "all_entity_count": numbers["entity_count"],
            },
        )

    def choose_all(self, flow: ScopeFlow) -> ConfigFlowResult:
        """All objects: go straight to the confirmation."""
        self.choice = ALL_OBJECTS
        return self.confirm(flow)

    def select(self, flow: ScopeFlow, user_input: Mapping[str, Any] | None) -> ConfigFlowResult:
        """The selection form; an empty selection is refused (it would create no devices)."""
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = self.current
        if user_input is not None:
            values = selection_options(user_input)
            if values[CONF_PARENTS] or values[CONF_TAGS] or values[CONF_CLASSES]:
                self.choice = values
                return self.confirm(flow)
            errors["base"] = "empty_scope"
        return self._select_form(flow, values, errors)

    def _select_form(
        self, flow: ScopeFlow, values: Mapping[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult:
        """Pre-filled with ``values``; choices no longer on the server are left out.

        A stale value would fail the selector's validation when the form is sent back.
        """
        catalog = self.catalog
        fields: dict[Any, Any] = {}
        suggested: dict[str, Any] = {}
        for key, options in (
            (CONF_PARENTS, catalog.parent_options(values.get(CONF_PARENTS, ()))),
            (CONF_TAGS, catalog.tag_options(values.get(CONF_TAGS, ()))),
            (CONF_CLASSES, catalog.class_options(values.get(CONF_CLASSES, ()))),
        ):
            if options:
                fields[vol.Optional(key)] = _multi_select(options)
                offered = {option["value"] for option in options}
                suggested[key] = [value for value in values.get(key, ()) if value in offered]
        return flow.async_show_form(
            step_id=STEP_SELECT,
            data_schema=flow.add_suggested_values_to_schema(vol.Schema(fields), suggested),
            errors=errors,
            description_placeholders={"object_count": str(len(catalog.objects))},
        )

    def confirm(self, flow: ScopeFlow) -> ConfigFlowResult:
        """Say what the choice creates, with and without the links, before creating it."""
        options = [STEP_CREATE]
        if self.catalog.link_count:
            options.append(STEP_CREATE_LINKS)
        options.append(STEP_MENU)
        return flow.async_show_menu(
            step_id=STEP_CONFIRM,
            menu_options=options,
            description_placeholders=self._numbers(self.choice),
        )

    def chosen(self, *, links: bool) -> dict[str, Any]:
        """The options to store for the confirmed choice."""
        return {**self.choice, CONF_LINKS: links}


class ScopeStepsMixin:
    """The scope steps both flows share: they only hand over to :class:`ScopeSteps`.

    The flow sets ``_scope`` (when it has read the server's catalogue) and shows the first step
    (``scope``) itself, and decides what ``scope_create`` and ``scope_create_links`` do.
    """

    _scope: ScopeSteps | None

    def _scope_steps(self) -> ScopeSteps:
        if self._scope is None:  # a step out of order: a bug, not a user's mistake
            raise RuntimeError("the scope steps start with the scope step")
        return self._scope

    async def async_step_scope_all(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Every object of the server."""
        return self._scope_steps().choose_all(self._flow())

    async def async_step_scope_select(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Subtrees, tags and classes (the current ones suggested in the options)."""
        return self._scope_steps().select(self._flow(), user_input)

    async def async_step_scope_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """What the choice creates, with or without the links."""
        return self._scope_steps().confirm(self._flow())

    def _flow(self) -> ScopeFlow:
        assert isinstance(self, ConfigFlow | OptionsFlow)  # noqa: S101 - mixed into flows only
        return self
