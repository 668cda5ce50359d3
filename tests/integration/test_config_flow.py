"""Config, reauth, reconfigure and options flows against the SAYMON simulator over real sockets.

Nothing of our own client is mocked: every check logs in to the simulator, reads the user and
the catalogue and shakes hands with its Comet server. Only the entry setup after a finished flow
is replaced (``mock_setup_entry``), and one test makes the validation raise a bug-like error.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped, unused-ignore]
    MockConfigEntry,
)
import voluptuous as vol

from custom_components.saymon.api.models import SaymonObject
from custom_components.saymon.api.url import normalize_base_url
from custom_components.saymon.const import (
    AUTH_PASSWORD,
    AUTH_TOKEN,
    CONF_API_TOKEN,
    CONF_AUTH_METHOD,
    CONF_CLASSES,
    CONF_COMET,
    CONF_GRACE_PERIOD,
    CONF_LINKS,
    CONF_PARENTS,
    CONF_SCOPE,
    CONF_TAGS,
    CONF_TRANSPORT,
    CONF_USER_ID,
    DEFAULT_GRACE_PERIOD,
    DOMAIN,
    SCOPE_ALL,
    SCOPE_SELECTED,
)
from custom_components.saymon.flow_helpers import URL_EXAMPLE
from custom_components.saymon.migration import ENTRY_MINOR_VERSION, ENTRY_VERSION
from custom_components.saymon.scope_flow import (
    ENTITIES_PER_LINK,
    ENTITIES_PER_OBJECT,
    MAX_SELECT_OPTIONS,
    ServerCatalog,
)
from tests.integration.conftest import API_TOKEN
from tools.simulator import CLASS_HOST, SaymonSimulator
from tools.simulator.tls import write_self_signed

pytestmark = pytest.mark.usefixtures("mock_setup_entry")

COMPONENT = Path(__file__).parents[2] / "custom_components" / DOMAIN
VALIDATE = "custom_components.saymon.config_flow.async_validate"


# -- helpers ------------------------------------------------------------------------------


def _address(sim: SaymonSimulator, **changes: Any) -> dict[str, Any]:
    return {
        CONF_URL: sim.rest_url,
        CONF_COMET: str(sim.comet_port),
        CONF_VERIFY_SSL: True,
        **changes,
    }


def _password(sim: SaymonSimulator, password: str | None = None) -> dict[str, str]:
    return {CONF_USERNAME: sim.login, CONF_PASSWORD: password or sim.password}


def _unique_id(sim: SaymonSimulator) -> str:
    """The SAYMON user id: the same at every address of the server."""
    return sim.user_id


def _title(sim: SaymonSimulator) -> str:
    """The title (and server device name) a new entry gets for the simulator at 127.0.0.1."""
    return f"SAYMON 127.0.0.1:{sim.rest_port}"


async def _credentials_form(
    hass: HomeAssistant, address: dict[str, Any], method: str = AUTH_PASSWORD
) -> ConfigFlowResult:
    """Walk the user step and the menu up to the credentials form."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], address)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "auth"
    assert result["menu_options"] == [AUTH_PASSWORD, AUTH_TOKEN]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == method
    return result


async def _configure(
    hass: HomeAssistant, result: ConfigFlowResult, user_input: dict[str, Any]
) -> ConfigFlowResult:
    """Answer a step of a config flow, or of an options flow (whose handler is the entry)."""
    if result["handler"] == DOMAIN:
        return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    return await hass.config_entries.options.async_configure(result["flow_id"], user_input)


async def _scope_menu(hass: HomeAssistant, sim: SaymonSimulator) -> ConfigFlowResult:
    result = await _credentials_form(hass, _address(sim))
    result = await _configure(hass, result, _password(sim))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "scope"
    assert result["menu_options"] == ["scope_select", "scope_all"]
    return result


async def _next(hass: HomeAssistant, result: ConfigFlowResult, step: str) -> ConfigFlowResult:
    """Pick a menu option."""
    assert result["type"] is FlowResultType.MENU, result
    assert step in result["menu_options"], (step, result["menu_options"])
    return await _configure(hass, result, {"next_step_id": step})


async def _create(
    hass: HomeAssistant,
    result: ConfigFlowResult,
    selection: dict[str, Any] | None = None,
    *,
    links: bool = False,
) -> ConfigFlowResult:
    """From the scope menu: all objects (or ``selection``), confirmed with or without links."""
    if selection is None:
        result = await _next(hass, result, "scope_all")
    else:
        result = await _next(hass, result, "scope_select")
        assert result["step_id"] == "scope_select"
        result = await _configure(hass, result, selection)
    assert result["step_id"] == "scope_confirm", result
    return await _next(hass, result, "scope_create_links" if links else "scope_create")


def _english(hass: HomeAssistant, category: str) -> Any:
    return async_get_translations(hass, "en", category, {DOMAIN})


async def _message(hass: HomeAssistant, result: ConfigFlowResult, key: str) -> str:
    """The English text the frontend shows for an error of this form, placeholders filled."""
    texts = await _english(hass, "config")
    text: str = texts[f"component.{DOMAIN}.config.error.{key}"]
    return text.format(**(result["description_placeholders"] or {}))


def _links(sim: SaymonSimulator) -> int:
    return len(sim.model.links)


def _suggested(result: ConfigFlowResult, key: str) -> Any:
    schema = result["data_schema"]
    assert schema is not None
    for marker in schema.schema:
        if marker == key:
            return (marker.description or {}).get("suggested_value")
    raise AssertionError(f"{key} is not in the form")


def _placeholders(result: ConfigFlowResult) -> Mapping[str, str]:
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    return placeholders


def _offered(result: ConfigFlowResult, key: str) -> dict[str, str]:
    schema = result["data_schema"]
    assert schema is not None
    options = schema.schema[key].config["options"]
    return {option["value"]: option["label"] for option in options}


def _fields(result: ConfigFlowResult) -> list[str]:
    schema = result["data_schema"]
    assert schema is not None
    return [str(marker) for marker in schema.schema]


def _entry(
    hass: HomeAssistant,
    sim: SaymonSimulator,
    *,
    method: str = AUTH_PASSWORD,
    comet: str | None = None,
    title: str | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """An entry as the user flow creates it, for the simulator's admin user."""
    auth: dict[str, Any] = (
        {CONF_USERNAME: sim.login, CONF_PASSWORD: sim.password}
        if method == AUTH_PASSWORD
        else {CONF_API_TOKEN: sim.api_token}
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=ENTRY_VERSION,
        minor_version=ENTRY_MINOR_VERSION,
        title=_title(sim) if title is None else title,
        unique_id=_unique_id(sim),
        data={
            CONF_URL: normalize_base_url(sim.rest_url),
            CONF_COMET: str(sim.comet_port) if comet is None else comet,
            CONF_VERIFY_SSL: True,
            CONF_AUTH_METHOD: method,
            **auth,
            CONF_USER_ID: sim.user_id,
        },
        options=options
        if options is not None
        else {
            CONF_SCOPE: SCOPE_ALL,
            CONF_PARENTS: [],
            CONF_TAGS: [],
            CONF_CLASSES: [],
            CONF_LINKS: False,
            CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
        },
    )
    entry.add_to_hass(hass)
    return entry


def _tagged(sim: SaymonSimulator) -> tuple[str, str]:
    """An object id with a tag, and that tag."""
    for object_id, obj in sim.model.objects.items():
        if obj.tags:
            return object_id, obj.tags[0]
    raise AssertionError("the simulator generated no tags")


# -- user flow ----------------------------------------------------------------------------


async def test_user_flow_with_password(
    hass: HomeAssistant, simulator: SaymonSimulator, mock_setup_entry: AsyncMock
) -> None:
    result = await _credentials_form(hass, _address(simulator))
    url = normalize_base_url(simulator.rest_url)
    assert _placeholders(result)["url"] == url

    result = await _configure(hass, result, _password(simulator))
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "scope"
    count = len(simulator.model.objects)
    assert _links(simulator) > 0
    assert result["description_placeholders"] == {
        "object_count": str(count),
        "link_count": str(_links(simulator)),
        "all_entity_count": str(count * ENTITIES_PER_OBJECT),
    }
    # The check logged out: the flow leaves no session on the server.
    assert simulator.accounts.sessions == {}

    result = await _next(hass, result, "scope_all")
    assert result["step_id"] == "scope_confirm"
    assert result["menu_options"] == ["scope_create", "scope_create_links", "scope"]
    result = await _next(hass, result, "scope_create_links")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == _title(simulator)
    assert result["data"] == {
        CONF_URL: normalize_base_url(simulator.rest_url),
        CONF_COMET: str(simulator.comet_port),
        CONF_VERIFY_SSL: True,
        CONF_AUTH_METHOD: AUTH_PASSWORD,
        CONF_USERNAME: simulator.login,
        CONF_PASSWORD: simulator.password,
        CONF_USER_ID: simulator.user_id,
    }
    assert result["options"] == {
        CONF_SCOPE: SCOPE_ALL,
        CONF_PARENTS: [],
        CONF_TAGS: [],
        CONF_CLASSES: [],
        CONF_LINKS: True,
        CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
        CONF_TRANSPORT: "websocket",
    }
    entry = result["result"]
    assert entry.unique_id == simulator.user_id  # the account, not the address
    assert (entry.version, entry.minor_version) == (1, 2)
    assert len(mock_setup_entry.mock_calls) == 1


async def test_user_flow_with_token(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    address = _address(simulator, **{CONF_URL: f"{simulator.rest_url}/node/api/objects/"})
    result = await _credentials_form(hass, address, AUTH_TOKEN)
    result = await _configure(hass, result, {CONF_API_TOKEN: f" {API_TOKEN} "})
    assert result["step_id"] == "scope"
    result = await _create(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_URL: normalize_base_url(simulator.rest_url),
        CONF_COMET: str(simulator.comet_port),
        CONF_VERIFY_SSL: True,
        CONF_AUTH_METHOD: AUTH_TOKEN,
        CONF_API_TOKEN: API_TOKEN,
        CONF_USER_ID: simulator.user_id,
    }
    assert result["options"][CONF_LINKS] is False
    assert simulator.accounts.sessions == {}


async def test_wrong_password_then_recover(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(hass, result, _password(simulator, "wrong"))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == AUTH_PASSWORD
    assert result["errors"] == {"base": "invalid_auth"}
    # The user name is offered again, the rejected password is not.
    assert _suggested(result, CONF_USERNAME) == simulator.login
    assert _suggested(result, CONF_PASSWORD) is None

    result = await _configure(hass, result, _password(simulator))
    assert result["step_id"] == "scope"


async def test_wrong_password_does_not_mention_tokens(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(hass, result, _password(simulator, "wrong"))
    assert result["errors"] == {"base": "invalid_auth"}
    text = await _message(hass, result, "invalid_auth")
    assert "password" in text
    assert "token" not in text.lower()


async def test_wrong_token(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    result = await _credentials_form(hass, _address(simulator), AUTH_TOKEN)
    result = await _configure(hass, result, {CONF_API_TOKEN: "not-a-token"})
    assert result["errors"] == {"base": "invalid_token"}
    assert "API token" in await _message(hass, result, "invalid_token")


async def test_rest_unreachable_then_recover(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    result = await _credentials_form(hass, _address(simulator))
    await simulator.stop_rest()
    result = await _configure(hass, result, _password(simulator))
    assert result["step_id"] == AUTH_PASSWORD
    assert result["errors"] == {"base": "cannot_connect"}

    await simulator.start_rest()
    result = await _configure(hass, result, _password(simulator))
    assert result["step_id"] == "scope"


async def test_not_saymon_answers(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    """A server answering garbage (here: the objects list) counts as not reachable."""
    simulator.garble("objects")
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(hass, result, _password(simulator))
    assert result["errors"] == {"base": "cannot_connect"}
    assert simulator.accounts.sessions == {}


async def test_comet_unreachable(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    port = simulator.comet_port
    result = await _credentials_form(hass, _address(simulator))
    await simulator.stop_comet()
    result = await _configure(hass, result, _password(simulator))
    assert result["step_id"] == AUTH_PASSWORD
    assert result["errors"] == {"base": "comet_unreachable"}
    assert result["description_placeholders"] == {
        "url_example": URL_EXAMPLE,
        "url": normalize_base_url(simulator.rest_url),
        "comet_address": f"http://127.0.0.1:{port}/socket.io/",
    }
    # REST worked, so a session was opened, and closed again.
    assert simulator.accounts.sessions == {}


async def test_comet_on_same_port_by_default(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """An empty Comet address means the web address: the simulator has Comet elsewhere.

    Told on the address step, before any credentials are asked for.
    """
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _configure(hass, result, _address(simulator, **{CONF_COMET: "  "}))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_COMET: "comet_unreachable"}
    origin = normalize_base_url(simulator.rest_url)
    assert _placeholders(result)["comet_address"] == f"{origin}/socket.io/"
    assert f"{origin}/socket.io/" in await _message(hass, result, "comet_unreachable")


@pytest.mark.usefixtures("server_handshake_errors_ignored")
async def test_self_signed_certificate(hass: HomeAssistant, tmp_path: Path) -> None:
    certs = write_self_signed(tmp_path)
    async with SaymonSimulator(objects=40, ssl_context=certs.server_context()) as sim:
        assert sim.rest_url.startswith("https://")
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await _configure(hass, result, _address(sim))
        assert result["step_id"] == "user"
        assert result["errors"] == {CONF_URL: "tls_error"}
        # Without a scheme, a rejected certificate is not "solved" by dropping to plain HTTP.
        bare = sim.rest_url.removeprefix("https://")
        result = await _configure(hass, result, _address(sim, **{CONF_URL: bare}))
        assert result["errors"] == {CONF_URL: "tls_error"}

        result = await _credentials_form(
            hass, _address(sim, **{CONF_URL: bare, CONF_VERIFY_SSL: False})
        )
        result = await _configure(hass, result, _password(sim))
        assert result["step_id"] == "scope"
        result = await _create(hass, result)
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["data"][CONF_VERIFY_SSL] is False
        assert result["data"][CONF_URL] == sim.rest_url
        assert sim.accounts.sessions == {}


@pytest.mark.usefixtures("server_handshake_errors_ignored")
async def test_comet_certificate_rejected(
    hass: HomeAssistant, simulator: SaymonSimulator, tmp_path: Path
) -> None:
    """REST over plain HTTP works, but the Comet address given has an untrusted certificate."""
    certs = write_self_signed(tmp_path)
    async with SaymonSimulator(objects=5, ssl_context=certs.server_context()) as tls:
        comet = f"https://127.0.0.1:{tls.comet_port}"
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await _configure(hass, result, _address(simulator, **{CONF_COMET: comet}))
        assert result["step_id"] == "user"
        assert result["errors"] == {CONF_COMET: "tls_error"}
        assert simulator.accounts.sessions == {}


# -- addresses: errors on the address step, missing schemes ------------------------------


async def _address_step(
    hass: HomeAssistant, sim: SaymonSimulator, **changes: Any
) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await _configure(hass, result, _address(sim, **changes))


async def test_address_without_scheme_on_plain_http_server(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """An address like 127.0.0.1:port on a plain-HTTP SAYMON: HTTPS is tried, then HTTP."""
    assert simulator.rest_url.startswith("http://")
    bare = simulator.rest_url.removeprefix("http://")
    result = await _address_step(hass, simulator, **{CONF_URL: bare})
    assert result["type"] is FlowResultType.MENU, result.get("errors")
    result = await _configure(hass, result, {"next_step_id": AUTH_PASSWORD})
    assert _placeholders(result)["url"] == simulator.rest_url
    result = await _configure(hass, result, _password(simulator))
    result = await _create(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == simulator.rest_url


async def test_https_against_plain_http_server_says_so(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    https = simulator.rest_url.replace("http://", "https://")
    result = await _address_step(hass, simulator, **{CONF_URL: https})
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "plain_http"}
    assert _placeholders(result)["http_url"] == simulator.rest_url
    text = await _message(hass, result, "plain_http")
    assert "speaks plain HTTP, not HTTPS" in text
    assert simulator.rest_url in text


async def test_https_comet_against_plain_http_comet_says_so(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    comet = f"https://127.0.0.1:{simulator.comet_port}"
    result = await _address_step(hass, simulator, **{CONF_COMET: comet})
    assert result["errors"] == {CONF_COMET: "comet_plain_http"}
    assert _placeholders(result)["http_url"] == f"http://127.0.0.1:{simulator.comet_port}"


@pytest.mark.usefixtures("server_handshake_errors_ignored")
async def test_address_without_scheme_keeps_https(hass: HomeAssistant, tmp_path: Path) -> None:
    """A server that speaks HTTPS is used over HTTPS when no scheme is given."""
    certs = write_self_signed(tmp_path)
    async with SaymonSimulator(objects=5, ssl_context=certs.server_context()) as sim:
        bare = sim.rest_url.removeprefix("https://")
        result = await _credentials_form(
            hass, _address(sim, **{CONF_URL: bare, CONF_VERIFY_SSL: False})
        )
        assert _placeholders(result)["url"] == sim.rest_url


async def test_unreachable_address_is_told_on_the_address_step(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Nothing answers: said before any credentials are asked for, naming the address."""
    await simulator.stop_rest()
    result = await _address_step(hass, simulator)
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "cannot_connect"}
    assert simulator.rest_url in await _message(hass, result, "cannot_connect")

    await simulator.start_rest()
    result = await _configure(hass, result, _address(simulator))
    assert result["type"] is FlowResultType.MENU


async def test_unreachable_comet_is_told_on_the_address_step(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    await simulator.stop_comet()
    result = await _address_step(hass, simulator)
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_COMET: "comet_unreachable"}
    assert _placeholders(result)["comet_address"] == (
        f"http://127.0.0.1:{simulator.comet_port}/socket.io/"
    )
    # No session was opened: the check needs no credentials.
    assert simulator.accounts.sessions == {}


async def test_address_of_something_else_is_not_saymon(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """The Comet port answers HTTP, but not SAYMON's API: the address step says what it got."""
    other = f"http://127.0.0.1:{simulator.comet_port}"
    result = await _address_step(hass, simulator, **{CONF_URL: other})
    assert result["errors"] == {CONF_URL: "not_saymon"}
    assert _placeholders(result)["status"] == "404"
    assert f"{other} answered with HTTP status 404" in await _message(hass, result, "not_saymon")


async def test_address_without_scheme_when_nothing_answers(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """HTTPS and plain HTTP both tried; the message names the HTTPS address asked first."""
    bare = simulator.rest_url.removeprefix("http://")
    await simulator.stop_rest()
    result = await _address_step(hass, simulator, **{CONF_URL: bare})
    assert result["errors"] == {CONF_URL: "cannot_connect"}
    assert _placeholders(result)["url"] == f"https://{bare}"


async def test_address_without_scheme_of_something_else(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Plain HTTP got further than HTTPS (an answer, just not SAYMON's): that is what is said."""
    bare = f"127.0.0.1:{simulator.comet_port}"
    result = await _address_step(hass, simulator, **{CONF_URL: bare})
    assert result["errors"] == {CONF_URL: "not_saymon"}
    assert _placeholders(result)["url"] == f"http://{bare}"


async def test_unexpected_error_on_the_address_step(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    with patch(
        "custom_components.saymon.config_flow.async_check_address",
        side_effect=RuntimeError("boom"),
    ):
        result = await _address_step(hass, simulator)
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking the SAYMON address" in caplog.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({CONF_URL: "ftp://saymon.example.com"}, CONF_URL),
        ({CONF_URL: "https://user:pw@saymon.example.com"}, CONF_URL),
        ({CONF_COMET: "99999"}, CONF_COMET),
        ({CONF_COMET: "wss://comet.example.com"}, CONF_COMET),
    ],
)
async def test_invalid_url_then_recover(
    hass: HomeAssistant, simulator: SaymonSimulator, changes: dict[str, Any], field: str
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _configure(hass, result, _address(simulator, **changes))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {field: "invalid_url"}
    # What the user typed is kept for correcting.
    assert _suggested(result, field) == changes[field]

    result = await _configure(hass, result, _address(simulator))
    assert result["type"] is FlowResultType.MENU


async def test_unexpected_error_then_recover(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    result = await _credentials_form(hass, _address(simulator))
    with patch(VALIDATE, side_effect=RuntimeError("boom")):
        result = await _configure(hass, result, _password(simulator, "s3cr3t-pw"))
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking SAYMON" in caplog.text
    assert "s3cr3t-pw" not in caplog.text

    result = await _configure(hass, result, _password(simulator))
    assert result["step_id"] == "scope"


async def test_secrets_are_not_logged(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(hass, result, _password(simulator, "wrong-pw-1234"))
    result = await _configure(hass, result, _password(simulator))
    await _create(hass, result)
    assert "wrong-pw-1234" not in caplog.text
    assert simulator.password not in caplog.text


async def test_already_configured(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    _entry(hass, simulator)
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(hass, result, _password(simulator))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert simulator.accounts.sessions == {}


async def test_same_account_at_another_address_is_already_configured(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Another address of a configured server (a second name, port, proxy) is no new entry."""
    _entry(hass, simulator)
    other_address = await simulator.add_rest_address()
    result = await _credentials_form(hass, _address(simulator, **{CONF_URL: other_address}))
    result = await _configure(hass, result, _password(simulator))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_other_user_on_same_server(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    """The unique id includes the user: another user of the same server is a new entry."""
    _entry(hass, simulator)
    result = await _credentials_form(hass, _address(simulator))
    result = await _configure(
        hass,
        result,
        {CONF_USERNAME: simulator.viewer_login, CONF_PASSWORD: simulator.viewer_password},
    )
    result = await _create(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id != _unique_id(simulator)
    assert result["data"][CONF_USER_ID] != simulator.user_id


# -- scope steps --------------------------------------------------------------------------


async def test_scope_offers_parents_tags_by_name_and_classes(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    result = await _next(hass, await _scope_menu(hass, simulator), "scope_select")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "scope_select"
    objects = simulator.model.objects
    root = simulator.model.root_id

    parents = _offered(result, CONF_PARENTS)
    with_children = {oid for obj in objects.values() for oid in obj.parent_id}
    assert set(parents) == with_children
    assert parents[root] == "SAYMON"
    site = objects[root].child_ids[0]
    assert parents[site] == f"SAYMON / {objects[site].name}"
    labels = list(parents.values())
    assert labels == sorted(labels, key=str.casefold)

    # Tags are offered by their SAYMON names (objects carry tag ids).
    tags = _offered(result, CONF_TAGS)
    assert set(tags) == {tag for obj in objects.values() for tag in obj.tags}
    for tag_id, label in tags.items():
        carriers = sum(tag_id in obj.tags for obj in objects.values())
        assert label == f"{simulator.model.tags[tag_id]} ({carriers})"
    classes = _offered(result, CONF_CLASSES)
    hosts = sum(obj.class_id == CLASS_HOST for obj in objects.values())
    assert classes[CLASS_HOST] == f"Host ({hosts})"
    assert _fields(result) == [CONF_PARENTS, CONF_TAGS, CONF_CLASSES]


async def test_scope_without_tag_names_shows_tag_ids(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A SAYMON that does not list its tags still gets the steps, with the tags' ids."""
    simulator.garble("tags")
    result = await _next(hass, await _scope_menu(hass, simulator), "scope_select")
    for tag_id, label in _offered(result, CONF_TAGS).items():
        assert label.startswith(f"{tag_id} (")


async def test_scope_counts_follow_the_choice(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Each choice is confirmed with its own numbers; choosing again shows the new ones."""
    objects = simulator.model.objects
    root = simulator.model.root_id
    site = objects[root].child_ids[0]
    in_site = ServerCatalog(_catalog_objects(simulator)).count(_selection(parents=[site]))
    assert 0 < in_site < len(objects)

    result = await _next(hass, await _scope_menu(hass, simulator), "scope_select")
    result = await _configure(hass, result, {CONF_PARENTS: [site]})
    assert result["step_id"] == "scope_confirm"
    assert result["description_placeholders"] == {
        "object_count": str(len(objects)),
        "link_count": str(_links(simulator)),
        "device_count": str(in_site),
        "entity_count": str(in_site * ENTITIES_PER_OBJECT),
        "entity_count_links": str(
            in_site * ENTITIES_PER_OBJECT + _links(simulator) * ENTITIES_PER_LINK
        ),
    }

    result = await _next(hass, result, "scope")
    assert result["step_id"] == "scope"
    result = await _next(hass, result, "scope_all")
    assert _placeholders(result)["device_count"] == str(len(objects))
    assert _placeholders(result)["entity_count"] == str(len(objects) * ENTITIES_PER_OBJECT)

    texts = await _english(hass, "config")
    option = texts[f"component.{DOMAIN}.config.step.scope_confirm.menu_options.scope_create"]
    assert option.format(**_placeholders(result)) == (
        f"Create {len(objects)} devices with {len(objects) * ENTITIES_PER_OBJECT} entities"
    )


def _catalog_objects(sim: SaymonSimulator) -> dict[str, SaymonObject]:
    return {
        oid: SaymonObject(
            id=oid, name=obj.name, parent_ids=tuple(obj.parent_id), class_id=obj.class_id
        )
        for oid, obj in sim.model.objects.items()
    }


def _selection(**lists: list[str]) -> dict[str, Any]:
    return {
        CONF_SCOPE: SCOPE_SELECTED,
        CONF_PARENTS: lists.get("parents", []),
        CONF_TAGS: lists.get("tags", []),
        CONF_CLASSES: lists.get("classes", []),
    }


async def test_scope_selected(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    result = await _scope_menu(hass, simulator)
    objects = simulator.model.objects
    root = simulator.model.root_id
    site = objects[root].child_ids[0]
    _, tag = _tagged(simulator)

    result = await _create(
        hass,
        result,
        {CONF_PARENTS: [site], CONF_TAGS: [tag], CONF_CLASSES: [CLASS_HOST]},
        links=True,
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"] == {
        CONF_SCOPE: SCOPE_SELECTED,
        CONF_PARENTS: [site],
        CONF_TAGS: [tag],
        CONF_CLASSES: [CLASS_HOST],
        CONF_LINKS: True,
        CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
        CONF_TRANSPORT: "websocket",
    }


async def test_scope_selected_but_empty(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    result = await _next(hass, await _scope_menu(hass, simulator), "scope_select")
    result = await _configure(hass, result, {})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "scope_select"
    assert result["errors"] == {"base": "empty_scope"}

    root = simulator.model.root_id
    result = await _configure(hass, result, {CONF_PARENTS: [root]})
    assert result["step_id"] == "scope_confirm"
    result = await _next(hass, result, "scope_create")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_PARENTS] == [root]
    assert result["options"][CONF_LINKS] is False


async def test_large_server_is_not_mirrored_whole_by_default(hass: HomeAssistant) -> None:
    """Nothing is preselected: "all" is a choice that states its devices and entities."""
    async with SaymonSimulator(objects=350) as sim:
        result = await _scope_menu(hass, sim)
        assert result["description_placeholders"] == {
            "object_count": "350",
            "link_count": str(_links(sim)),
            "all_entity_count": str(350 * ENTITIES_PER_OBJECT),
        }
        texts = await _english(hass, "config")
        option = texts[f"component.{DOMAIN}.config.step.scope.menu_options.scope_all"]
        assert option.format(**_placeholders(result)) == (
            f"All objects: 350 devices with {350 * ENTITIES_PER_OBJECT} entities"
        )
        # A menu has no default: nothing is preselected, the user picks one.
        assert result["type"] is FlowResultType.MENU
        schema = result["data_schema"]
        assert schema is not None
        for key in schema.schema:
            assert getattr(key, "default", vol.UNDEFINED) is vol.UNDEFINED
        # Everything stays possible when the user asks for it, after seeing the numbers.
        result = await _next(hass, result, "scope_all")
        assert _placeholders(result)["device_count"] == "350"
        result = await _next(hass, result, "scope_create")
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["options"][CONF_SCOPE] == SCOPE_ALL


async def test_scope_leaves_out_empty_lists(hass: HomeAssistant) -> None:
    """A server with one object has no subtrees or tags to offer; its class is offered."""
    async with SaymonSimulator(objects=1) as sim:
        result = await _next(hass, await _scope_menu(hass, sim), "scope_select")
        assert _fields(result) == [CONF_CLASSES]
        assert _placeholders(result)["object_count"] == "1"


async def test_scope_without_readable_links_offers_no_link_option(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A user who may not read the links still gets the steps, without the link option."""
    simulator.garble("links")
    result = await _scope_menu(hass, simulator)
    assert _placeholders(result)["link_count"] == "0"
    result = await _next(hass, result, "scope_all")
    assert result["menu_options"] == ["scope_create", "scope"]


async def test_server_without_links_offers_no_link_option(hass: HomeAssistant) -> None:
    async with SaymonSimulator(objects=1) as sim:
        assert _links(sim) == 0
        result = await _next(hass, await _scope_menu(hass, sim), "scope_all")
        assert result["menu_options"] == ["scope_create", "scope"]


def _obj(object_id: str, parent: str | None = None, **fields: Any) -> SaymonObject:
    return SaymonObject(
        id=object_id, name=f"n{object_id}", parent_ids=(parent,) if parent else (), **fields
    )


def test_parent_options_are_capped_to_the_top_of_the_tree() -> None:
    """Beyond the cap, deeper objects go first; chosen ones always stay selectable."""
    objects = {"root": _obj("root")}
    for index in range(MAX_SELECT_OPTIONS + 10):
        objects[f"a{index}"] = _obj(f"a{index}", "root")
        objects[f"b{index}"] = _obj(f"b{index}", f"a{index}")
    # Deep chain: b0 has a child, which has a child; one of them is chosen already.
    objects["c"] = _obj("c", "b0")
    objects["d"] = _obj("d", "c")
    catalog = ServerCatalog(objects)

    options = catalog.parent_options(keep=["c", "gone"])
    values = {option["value"] for option in options}
    assert len(options) == MAX_SELECT_OPTIONS + 1
    assert {"root", "c"} <= values
    assert "gone" not in values
    assert "b0" not in values  # depth 2: cut before every depth-1 object
    labels = [option["label"] for option in options]
    assert labels == sorted(labels, key=str.casefold)


def test_tag_and_class_options_keep_the_most_used() -> None:
    objects = {
        f"o{index}": _obj(f"o{index}", tags=(f"t{index}",), class_id=f"k{index}")
        for index in range(MAX_SELECT_OPTIONS + 1)
    }
    objects["x"] = _obj("x", tags=("t5", "t5"), class_id="k5")
    catalog = ServerCatalog(objects, {"k5": "Five"})
    tags = {option["value"]: option["label"] for option in catalog.tag_options(keep=["t999"])}
    assert tags["t5"] == "t5 (2)"
    assert "t999" in tags
    assert len(tags) == MAX_SELECT_OPTIONS + 1
    classes = {option["value"]: option["label"] for option in catalog.class_options()}
    assert classes["k5"] == "Five (2)"
    assert len(classes) == MAX_SELECT_OPTIONS


def test_object_depth_tolerates_cycles() -> None:
    objects = {"a": _obj("a", "b"), "b": _obj("b", "a"), "c": _obj("c", "a")}
    catalog = ServerCatalog(objects)
    assert {option["value"] for option in catalog.parent_options()} == {"a", "b"}
    assert catalog._depth("c") == 2


# -- reauth -------------------------------------------------------------------------------


async def test_reauth_with_password(
    hass: HomeAssistant, simulator: SaymonSimulator, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, simulator)
    simulator.set_password("changed")
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert _fields(result) == [CONF_USERNAME, CONF_PASSWORD]
    assert _suggested(result, CONF_USERNAME) == simulator.login
    assert _placeholders(result)["url"] == entry.data[CONF_URL]
    assert _placeholders(result)["name"] == entry.title

    result = await _configure(hass, result, _password(simulator, "still wrong"))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert _suggested(result, CONF_PASSWORD) is None

    # Comet is not needed to fix credentials.
    await simulator.stop_comet()
    result = await _configure(hass, result, _password(simulator, "changed"))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == "changed"
    assert entry.data[CONF_USERNAME] == simulator.login
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 1
    assert simulator.accounts.sessions == {}


async def test_reauth_with_token(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator, method=AUTH_TOKEN)
    simulator.revoke_token()
    token = simulator.new_token()
    result = await entry.start_reauth_flow(hass)
    assert _fields(result) == [CONF_API_TOKEN]
    result = await _configure(hass, result, {CONF_API_TOKEN: token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_API_TOKEN] == token
    assert CONF_PASSWORD not in entry.data


async def test_reauth_with_another_user(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    result = await entry.start_reauth_flow(hass)
    result = await _configure(
        hass,
        result,
        {CONF_USERNAME: simulator.viewer_login, CONF_PASSWORD: simulator.viewer_password},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data[CONF_USERNAME] == simulator.login


async def test_reauth_of_https_entry_on_plain_http_server(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Reauthentication does not check the address, but still says what is wrong with it."""
    entry = _entry(hass, simulator)
    https = normalize_base_url(simulator.rest_url).replace("http://", "https://")
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_URL: https})
    result = await entry.start_reauth_flow(hass)
    result = await _configure(hass, result, _password(simulator))
    assert result["errors"] == {"base": "plain_http"}
    assert _placeholders(result)["http_url"] == normalize_base_url(simulator.rest_url)


async def test_reauth_server_down(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    result = await entry.start_reauth_flow(hass)
    await simulator.stop_rest()
    result = await _configure(hass, result, _password(simulator))
    assert result["errors"] == {"base": "cannot_connect"}


# -- reconfigure --------------------------------------------------------------------------


async def test_reconfigure_comet_port(
    hass: HomeAssistant, simulator: SaymonSimulator, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, simulator, comet="")
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert _suggested(result, CONF_URL) == entry.data[CONF_URL]
    assert _suggested(result, CONF_COMET) == ""

    # The entry as stored cannot reach Comet; the form says where it looked.
    result = await _configure(hass, result, _address(simulator, **{CONF_COMET: ""}))
    assert result["errors"] == {CONF_COMET: "comet_unreachable"}
    assert "comet_address" in _placeholders(result)

    result = await _configure(hass, result, _address(simulator))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_COMET] == str(simulator.comet_port)
    assert entry.data[CONF_PASSWORD] == simulator.password
    assert entry.unique_id == _unique_id(simulator)
    await hass.async_block_till_done()
    assert len(mock_setup_entry.mock_calls) == 1
    assert simulator.accounts.sessions == {}


@pytest.mark.parametrize("custom_title", [False, True])
async def test_reconfigure_keeps_the_unique_id(
    hass: HomeAssistant, simulator: SaymonSimulator, custom_title: bool
) -> None:
    """The same account at a new address keeps its entry and unique id; a default title follows."""
    entry = _entry(hass, simulator, title="My SAYMON" if custom_title else None)
    moved_url = await simulator.add_rest_address()
    result = await entry.start_reconfigure_flow(hass)
    result = await _configure(hass, result, _address(simulator, **{CONF_URL: moved_url}))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == simulator.user_id
    assert entry.data[CONF_URL] == normalize_base_url(moved_url)
    port = moved_url.rsplit(":", 1)[1]
    assert entry.title == ("My SAYMON" if custom_title else f"SAYMON 127.0.0.1:{port}")


async def test_reconfigure_to_another_server(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Same login elsewhere is another SAYMON user (another id): refused, with its own reason."""
    entry = _entry(hass, simulator)
    async with SaymonSimulator(objects=40, seed=2) as other:
        assert other.user_id != simulator.user_id
        result = await entry.start_reconfigure_flow(hass)
        result = await _configure(hass, result, _address(other))
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "wrong_server"
        assert entry.data[CONF_URL] == normalize_base_url(simulator.rest_url)
        assert entry.unique_id == simulator.user_id
    for language in ("en", "ru"):
        texts = await async_get_translations(hass, language, "config", {DOMAIN})
        assert texts[f"component.{DOMAIN}.config.abort.wrong_server"], language


async def test_reconfigure_errors(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    result = await entry.start_reconfigure_flow(hass)
    result = await _configure(hass, result, _address(simulator, **{CONF_URL: "mailto:x"}))
    assert result["errors"] == {CONF_URL: "invalid_url"}

    await simulator.stop_rest()
    result = await _configure(hass, result, _address(simulator))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "cannot_connect"}
    assert _placeholders(result)["url"] == normalize_base_url(simulator.rest_url)

    await simulator.start_rest()
    simulator.set_password("changed")
    result = await _configure(hass, result, _address(simulator))
    assert result["errors"] == {"base": "invalid_auth"}
    assert entry.data[CONF_COMET] == str(simulator.comet_port)


# -- options ------------------------------------------------------------------------------


async def _options_menu(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["scope", "metrics", "grace_period", "events", "mqtt"]
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )


async def test_options_scope(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    object_id, tag = _tagged(simulator)
    entry = _entry(
        hass,
        simulator,
        options={
            CONF_SCOPE: SCOPE_SELECTED,
            CONF_PARENTS: ["deleted-object"],
            CONF_TAGS: [tag, "gone"],
            CONF_CLASSES: [],
            CONF_LINKS: False,
            CONF_GRACE_PERIOD: 90,
        },
    )
    result = await _options_menu(hass, entry, "scope")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "scope"
    assert simulator.accounts.sessions == {}
    configure = hass.config_entries.options.async_configure
    result = await configure(result["flow_id"], {"next_step_id": "scope_select"})
    assert result["step_id"] == "scope_select"
    # Stored choices that no longer exist are not suggested (they would not validate).
    assert _suggested(result, CONF_PARENTS) == []
    assert _suggested(result, CONF_TAGS) == [tag]
    assert object_id in {oid for oid, obj in simulator.model.objects.items() if tag in obj.tags}

    result = await configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "empty_scope"}

    result = await configure(result["flow_id"], {CONF_CLASSES: [CLASS_HOST]})
    assert result["step_id"] == "scope_confirm"
    hosts = sum(obj.class_id == CLASS_HOST for obj in simulator.model.objects.values())
    assert _placeholders(result)["device_count"] == str(hosts)
    texts = await async_get_translations(hass, "en", "options", {DOMAIN})
    option = texts[f"component.{DOMAIN}.options.step.scope_confirm.menu_options.scope_create"]
    assert option.format(**_placeholders(result)).startswith(f"Save: {hosts} devices")
    result = await configure(result["flow_id"], {"next_step_id": "scope_create_links"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_SCOPE: SCOPE_SELECTED,
        CONF_PARENTS: [],
        CONF_TAGS: [],
        CONF_CLASSES: [CLASS_HOST],
        CONF_LINKS: True,
        CONF_GRACE_PERIOD: 90,
    }


async def test_options_scope_without_stored_options(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = _entry(hass, simulator, method=AUTH_TOKEN, options={})
    result = await _options_menu(hass, entry, "scope")
    result = await _create(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_SCOPE] == SCOPE_ALL
    assert entry.options[CONF_LINKS] is False
    assert CONF_GRACE_PERIOD not in entry.options


async def test_options_grace_period(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    # The grace period needs no server.
    await simulator.stop_rest()
    result = await _options_menu(hass, entry, "grace_period")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "grace_period"
    assert _suggested(result, CONF_GRACE_PERIOD) == DEFAULT_GRACE_PERIOD

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_GRACE_PERIOD: 120.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_GRACE_PERIOD] == 120
    assert isinstance(entry.options[CONF_GRACE_PERIOD], int)
    assert entry.options[CONF_SCOPE] == SCOPE_ALL


@pytest.mark.parametrize("value", [-1, 3601])
async def test_options_grace_period_out_of_range(
    hass: HomeAssistant, simulator: SaymonSimulator, value: int
) -> None:
    entry = _entry(hass, simulator)
    result = await _options_menu(hass, entry, "grace_period")
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_GRACE_PERIOD: value}
        )


async def test_options_server_down(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    await simulator.stop_rest()
    result = await _options_menu(hass, entry, "scope")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_options_credentials_rejected(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = _entry(hass, simulator)
    simulator.set_password("changed")
    result = await _options_menu(hass, entry, "scope")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_auth"


async def test_options_unexpected_error(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = _entry(hass, simulator)
    with patch(VALIDATE, side_effect=RuntimeError("boom")):
        result = await _options_menu(hass, entry, "scope")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unknown"


# -- translations -------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((COMPONENT / name).read_text(encoding="utf-8"))
    return data


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_translations_match_strings() -> None:
    """en.json is strings.json resolved; ru.json has the same keys and placeholders."""
    strings = _flatten(_load("strings.json"))
    english = _flatten(_load("translations/en.json"))
    russian = _flatten(_load("translations/ru.json"))
    assert set(strings) == set(english) == set(russian)
    for key, text in strings.items():
        if not text.startswith("[%key:"):
            assert english[key] == text, key
        assert "[%key:" not in english[key]
        placeholders = set(re.findall(r"\{(\w+)\}", english[key]))
        assert set(re.findall(r"\{(\w+)\}", russian[key])) == placeholders, key
        assert russian[key] != english[key] or key.endswith("menu_options.token"), key


def test_every_field_and_key_is_translated() -> None:
    """Each form field has a label and a description; each error and abort a message."""
    english = _load("translations/en.json")
    for section in ("config", "options"):
        for step_id, step in english[section]["step"].items():
            assert step.get("title"), (section, step_id)
            if "data" in step:
                assert set(step["data"]) == set(step["data_description"]), (section, step_id)
    config = english["config"]
    for key in (
        "cannot_connect",
        "not_saymon",
        "plain_http",
        "invalid_auth",
        "invalid_token",
        "tls_error",
        "comet_unreachable",
        "comet_plain_http",
        "invalid_url",
        "empty_scope",
        "unknown",
    ):
        assert key in config["error"]
    for key in ("already_configured", "reauth_successful", "reconfigure_successful"):
        assert key in config["abort"]
    assert "wrong_account" in config["abort"]
    assert "wrong_server" in config["abort"]
    assert set(english["options"]["abort"]) == {
        "cannot_connect",
        "invalid_auth",
        "unknown",
        "metrics_not_loaded",
    }
    assert "scope" not in english["selector"], "the scope is chosen in menus now"


async def test_home_assistant_reads_the_translations(hass: HomeAssistant) -> None:
    """The files are where and how Home Assistant looks for a custom integration's texts."""
    prefix = f"component.{DOMAIN}"
    ru = _load("translations/ru.json")
    russian = await async_get_translations(hass, "ru", "config", {DOMAIN})
    key = f"{prefix}.config.error.comet_unreachable"
    assert russian[key] == ru["config"]["error"]["comet_unreachable"]
    english = await async_get_translations(hass, "en", "options", {DOMAIN})
    assert english[f"{prefix}.options.abort.cannot_connect"].startswith("Cannot reach")
    selector = await async_get_translations(hass, "ru", "selector", {DOMAIN})
    assert (
        selector[f"{prefix}.selector.mqtt_mode.options.broker"]
        == ru["selector"]["mqtt_mode"]["options"]["broker"]
    )
