"""Running SAYMON operations from Home Assistant: the ``saymon.run_operation`` action.

The target is one SAYMON object or link, as its device or one of its entities; the operation is
named by id or by name; ``arguments`` fill SAYMON's ``{{args.<name>}}`` macros. SAYMON answers
with a job id at once; the job is then followed to its result (Comet's
``job-result-received`` or ``GET /jobs/:id``, whichever comes first), which is fired as a
``saymon_job`` event. With ``wait`` the action also returns the result. Operation buttons
(:mod:`.button`) run operations the same way. Errors are translated and say which case it is:
unknown operation, no permission, SAYMON refused, or no result in time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er

from .api.errors import SaymonError, SaymonNotFoundError, SaymonPermissionError
from .api.models import EntityType
from .api.operations import FOLLOW_SECONDS, Operation
from .api.server_events import Job
from .const import DOMAIN
from .hub import SaymonHub
from .schema_lib import vol

SERVICE_RUN_OPERATION = "run_operation"
ATTR_OPERATION: Final = "operation"
ATTR_ARGUMENTS: Final = "arguments"
ATTR_WAIT: Final = "wait"
ATTR_TIMEOUT: Final = "timeout"
DEFAULT_TIMEOUT: Final = 30

RUN_OPERATION_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_ENTITY_ID): cv.comp_entity_ids,
        # Areas, floors and labels of a target selector name no single SAYMON object: they are
        # accepted here and answered with "choose exactly one" rather than a schema error.
        **{vol.Optional(key): object for key in ("area_id", "floor_id", "label_id")},
        vol.Required(ATTR_OPERATION): vol.All(cv.string, vol.Length(min=1, max=255)),
        vol.Optional(ATTR_ARGUMENTS, default=dict): vol.Schema({cv.string: object}),
        vol.Optional(ATTR_WAIT, default=False): cv.boolean,
        vol.Optional(ATTR_TIMEOUT, default=DEFAULT_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=FOLLOW_SECONDS)
        ),
    }
)

type Target = tuple[SaymonHub, EntityType, str]


def _hubs(hass: HomeAssistant) -> list[SaymonHub]:
    return [entry.runtime_data.hub for entry in hass.config_entries.async_loaded_entries(DOMAIN)]


def _of_entity(hass: HomeAssistant, entity_id: str) -> Target | None:
    """The object or link behind one of our entities (its unique id says which)."""
    registered = er.async_get(hass).async_get(entity_id)
    if registered is None or registered.platform != DOMAIN:
        return None
    parts = registered.unique_id.split("|")
    if len(parts) < 4 or parts[1] not in ("object", "link"):
        return None  # a server entity: no operations
    for hub in _hubs(hass):
        if hub.entry.entry_id == registered.config_entry_id:
            kind = EntityType.LINK if parts[1] == "link" else EntityType.OBJECT
            return hub, kind, parts[2]
    return None


def resolve_target(hass: HomeAssistant, call: ServiceCall) -> Target:
    """The one SAYMON object or link the call targets, or a translated error."""
    found: list[Target] = []
    for device_id in call.data.get(ATTR_DEVICE_ID, []):
        target = next(
            (
                (hub, EntityType.OBJECT, object_id)
                for hub in _hubs(hass)
                if (object_id := hub.object_of_device(device_id)) is not None
            ),
            None,
        )
        if target is None:
            raise _invalid_target(device_id)
        found.append(target)
    for entity_id in call.data.get(ATTR_ENTITY_ID, []):
        target = _of_entity(hass, entity_id)
        if target is None:
            raise _invalid_target(entity_id)
        found.append(target)
    unique = {(hub.entry.entry_id, kind, oid): (hub, kind, oid) for hub, kind, oid in found}
    if len(unique) != 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="operation_one_target",
            translation_placeholders={"count": str(len(unique))},
        )
    return next(iter(unique.values()))


def _invalid_target(what: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="operation_target_invalid",
        translation_placeholders={"target": what},
    )


async def async_run(
    hub: SaymonHub,
    entity_type: EntityType,
    entity_id: str,
    wanted: str,
    arguments: Mapping[str, Any] | None = None,
) -> tuple[Operation, str]:
    """Run an operation (by id or name) and follow its job; the operation and the job id."""
    name = hub.model.entity_name(entity_type, entity_id) or entity_id
    placeholders = {"operation": wanted, "name": name}
    operations = hub.live.operations
    try:
        operation = await operations.find(entity_type, entity_id, wanted)
        placeholders["operation"] = operation.name
        hub.server_events.operation_names[operation.id] = operation.name
        job_id = await operations.execute(entity_type, entity_id, operation.id, arguments)
    except SaymonNotFoundError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="operation_not_found",
            translation_placeholders=placeholders,
        ) from err
    except SaymonPermissionError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="operation_permission_denied",
            translation_placeholders=placeholders,
        ) from err
    except SaymonError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="operation_refused",
            translation_placeholders={**placeholders, "error": str(err)},
        ) from err
    hub.live.jobs.follow(job_id)
    return operation, job_id


def job_result(job: Job) -> dict[str, Any]:
    """The result part of the action's response."""
    return {
        "finished": True,
        "succeeded": job.succeeded,
        "exit_code": job.exit_code,
        "stdout": job.stdout,
        "topic": job.topic,
        "message": job.message,
    }


async def _run_operation(call: ServiceCall) -> ServiceResponse:
    hub, entity_type, entity_id = resolve_target(call.hass, call)
    operation, job_id = await async_run(
        hub, entity_type, entity_id, call.data[ATTR_OPERATION], call.data[ATTR_ARGUMENTS]
    )
    response: dict[str, Any] = {
        "job_id": job_id,
        "operation_id": operation.id,
        "operation_name": operation.name,
        "entity_type": entity_type.name.lower(),
        "object_id": entity_id,
        "finished": False,
    }
    if call.data[ATTR_WAIT]:
        seconds = float(call.data[ATTR_TIMEOUT])
        try:
            response.update(job_result(await hub.live.jobs.wait(job_id, seconds)))
        except (TimeoutError, SaymonError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="operation_timeout",
                translation_placeholders={
                    "operation": operation.name,
                    "job_id": job_id,
                    "seconds": f"{seconds:g}",
                },
            ) from err
    return response if call.return_response else None


def async_setup_operations_action(hass: HomeAssistant) -> None:
    """Register ``saymon.run_operation``."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_RUN_OPERATION,
        _run_operation,
        RUN_OPERATION_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
