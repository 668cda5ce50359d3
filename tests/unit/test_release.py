"""The release files follow the rules of hassfest, HACS and home-assistant/brands.

Sources of the rules (read when this test was written):

- hassfest, ``script/hassfest/manifest.py`` in home-assistant/core: ``INTEGRATION_MANIFEST_SCHEMA``
  extended by ``CUSTOM_INTEGRATION_MANIFEST_SCHEMA`` (a plain ``vol.Schema``, so unknown keys are
  errors), ``documentation_url``, ``verify_version`` (AwesomeVersion with the CalVer, SemVer,
  SimpleVer, BuildVer and PEP 440 strategies), ``validate_version`` (custom integrations need a
  version) and ``sort_manifest`` ("domain, name, then alphabetical order").
- hassfest, ``script/hassfest/requirements.py``: ``validate_requirements_format`` (no spaces,
  ``PACKAGE_REGEX``; only core integrations must pin with ``==``).
- developers.home-assistant.io, "Integration manifest": ``loggers`` is "a list of names that the
  integration's requirements use for their getLogger calls"; custom integrations should only list
  requirements that Home Assistant core does not already require.
- HACS, ``custom_components/hacs/utils/validate.py`` in hacs/integration:
  ``HACS_MANIFEST_JSON_SCHEMA`` (``extra=vol.PREVENT_EXTRA``) and
  ``INTEGRATION_MANIFEST_JSON_SCHEMA``; hacs.xyz "Publish: general" and "Integrations" (one
  integration under ``custom_components/``, ``zip_release`` needs ``filename``, ``homeassistant``
  is the minimum Home Assistant version, compared with AwesomeVersion).
- home-assistant/brands README, "Image specification", and the developer blog "Custom
  integrations can now ship their own brand images" (Home Assistant 2026.3: ``brand/`` in the
  integration folder, the eight file names of ``homeassistant.components.brands.const``).
- Keep a Changelog 1.1.0.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
import datetime as dt
import importlib.metadata
import json
from pathlib import Path
import re
import tomllib
from typing import Any
from urllib.parse import urlparse

from awesomeversion import AwesomeVersion, AwesomeVersionException, AwesomeVersionStrategy
from homeassistant import const as ha_const
import homeassistant.components
from homeassistant.util.yaml import load_yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from PIL import Image
import pytest
import voluptuous as vol

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "saymon"
BRAND = INTEGRATION / "brand"
HA_PACKAGE = Path(homeassistant.components.__file__).parent.parent
HA_VERSION = AwesomeVersion(ha_const.__version__)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = load_json(INTEGRATION / "manifest.json")
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def hacs() -> dict[str, Any]:
    data = load_json(ROOT / "hacs.json")
    assert isinstance(data, dict)
    return data


# -- manifest.json: hassfest ----------------------------------------------------------------

SUPPORTED_IOT_CLASSES = [
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
]
INTEGRATION_TYPES = ["device", "entity", "hardware", "helper", "hub", "service", "system"]


def documentation_url(value: str) -> str:
    """Hassfest: https, and on home-assistant.io only below /integrations/."""
    parsed = urlparse(value)
    if parsed.scheme != "https":
        raise vol.Invalid("Documentation url is not prefixed with https")
    if parsed.netloc == "www.home-assistant.io" and not parsed.path.startswith("/integrations/"):
        raise vol.Invalid(
            "Documentation url does not begin with www.home-assistant.io/integrations"
        )
    return value


def verify_version(value: str) -> str:
    """Hassfest: a version AwesomeVersion recognises with one of the accepted strategies."""
    try:
        AwesomeVersion(
            value,
            ensure_strategy=[
                AwesomeVersionStrategy.CALVER,
                AwesomeVersionStrategy.SEMVER,
                AwesomeVersionStrategy.SIMPLEVER,
                AwesomeVersionStrategy.BUILDVER,
                AwesomeVersionStrategy.PEP440,
            ],
        )
    except AwesomeVersionException as err:
        raise vol.Invalid(f"{value!r} is not a valid version") from err
    return value


# The keys of hassfest's schema a hub without discovery can use (discovery matchers left out:
# an unknown key, e.g. a typo, must fail here as it fails in hassfest).
CUSTOM_INTEGRATION_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): str,
        vol.Required("name"): str,
        vol.Optional("integration_type", default="hub"): vol.In(INTEGRATION_TYPES),
        vol.Optional("config_flow"): bool,
        vol.Required("documentation"): vol.All(vol.Url(), documentation_url),
        vol.Optional("issue_tracker"): vol.Url(),
        vol.Optional("quality_scale"): vol.In(
            ["bronze", "silver", "gold", "platinum", "internal", "legacy"]
        ),
        vol.Optional("requirements"): [str],
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Required("codeowners"): [str],
        vol.Optional("loggers"): [str],
        vol.Optional("disabled"): str,
        vol.Optional("iot_class"): vol.In(SUPPORTED_IOT_CLASSES),
        vol.Optional("single_config_entry"): bool,
        vol.Optional("version"): vol.All(str, verify_version),
        vol.Optional("import_executor"): bool,
    }
)

# hacs/integration: what HACS requires of an integration's manifest.
HACS_INTEGRATION_MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("codeowners"): list,
        vol.Required("documentation"): vol.Url(),
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): vol.Url(),
        vol.Required("name"): str,
        vol.Required("version"): vol.Coerce(AwesomeVersion),
    },
    extra=vol.ALLOW_EXTRA,
)


def test_manifest_passes_hassfest_schema(manifest: dict[str, Any]) -> None:
    CUSTOM_INTEGRATION_MANIFEST_SCHEMA(manifest)
    assert manifest.get("version"), "hassfest: custom integrations need a version"


def test_manifest_passes_hacs_schema(manifest: dict[str, Any]) -> None:
    HACS_INTEGRATION_MANIFEST_SCHEMA(manifest)


def test_manifest_keys_domain_name_then_alphabetical(manifest: dict[str, Any]) -> None:
    keys = list(manifest)
    assert keys == sorted(
        keys, key=lambda key: {"domain": ".domain", "name": ".name"}.get(key, key)
    )


def test_manifest_describes_a_local_push_hub(manifest: dict[str, Any]) -> None:
    assert manifest["domain"] == INTEGRATION.name, "hassfest: domain must match the folder"
    assert not (HA_PACKAGE / "components" / manifest["domain"]).exists(), "collides with core"
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "hub"
    assert manifest["config_flow"] is True
    assert (INTEGRATION / "config_flow.py").is_file()
    assert manifest["codeowners"]
    for owner in manifest["codeowners"]:
        assert re.fullmatch(r"@[A-Za-z0-9-]+(/[A-Za-z0-9_.-]+)?", owner), owner


def test_manifest_links_point_to_the_repository(manifest: dict[str, Any]) -> None:
    docs = urlparse(manifest["documentation"])
    issues = urlparse(manifest["issue_tracker"])
    assert docs.scheme == issues.scheme == "https"
    assert docs.netloc == issues.netloc == "github.com"
    repo = issues.path.removesuffix("/issues").strip("/")
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo), repo
    assert docs.path == f"/{repo}/tree/main/docs", "the manifest links the user documentation"
    assert (ROOT / "docs").is_dir()
    assert f"github.com/{repo}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_manifest_dependencies_are_home_assistant_integrations(manifest: dict[str, Any]) -> None:
    for domain in manifest.get("dependencies", []) + manifest.get("after_dependencies", []):
        assert (HA_PACKAGE / "components" / domain / "manifest.json").is_file(), domain


# -- requirements -----------------------------------------------------------------------------

PACKAGE_REGEX = re.compile(r"^(?:--.+\s)?([-_,\.\w\d\[\]]+)(==|>=|<=|~=|!=|<|>|===)*(.*)$")


def ha_pins() -> dict[str, Version]:
    """The exact pins of Home Assistant's package_constraints.txt (the running version's)."""
    pins: dict[str, Version] = {}
    for raw in (HA_PACKAGE / "package_constraints.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        specifiers = list(requirement.specifier)
        if len(specifiers) == 1 and specifiers[0].operator == "==":
            pins[canonicalize_name(requirement.name)] = Version(specifiers[0].version)
    return pins


def manifest_requirements(manifest: dict[str, Any]) -> list[Requirement]:
    return [Requirement(text) for text in manifest["requirements"]]


def test_requirements_format_passes_hassfest(manifest: dict[str, Any]) -> None:
    assert manifest["requirements"]
    for text in manifest["requirements"]:
        assert " " not in text, f"hassfest: {text!r} contains a space"
        match = PACKAGE_REGEX.match(text)
        assert match is not None, text
        requirement = Requirement(text)
        assert not requirement.url
        assert requirement.specifier, f"{text}: give a range, not an open requirement"
        assert any(s.operator in {"<", "<=", "~=", "=="} for s in requirement.specifier), (
            f"{text}: cap the major version"
        )


def test_requirements_contain_the_installed_versions(manifest: dict[str, Any]) -> None:
    for requirement in manifest_requirements(manifest):
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement} excludes the installed {installed}"
        )


def test_requirements_contain_home_assistants_pins(manifest: dict[str, Any]) -> None:
    """Where Home Assistant pins a package, our range must include the pin (else pip fails)."""
    pins = ha_pins()
    assert canonicalize_name("paho-mqtt") in pins, "Home Assistant pins paho-mqtt"
    checked = 0
    for requirement in manifest_requirements(manifest):
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is not None:
            checked += 1
            assert requirement.specifier.contains(pin, prereleases=True), (
                f"{requirement} excludes Home Assistant {HA_VERSION}'s pin {pin}"
            )
    assert checked >= 1


def _dependencies(name: str) -> Iterator[Requirement]:
    for text in importlib.metadata.requires(name) or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            yield requirement


def test_requirements_dependency_tree_fits_home_assistants_pins(manifest: dict[str, Any]) -> None:
    """Every package our requirements pull in accepts the version Home Assistant pins."""
    pins = ha_pins()
    seen: set[str] = set()
    queue = [requirement.name for requirement in manifest_requirements(manifest)]
    while queue:
        name = canonicalize_name(queue.pop())
        if name in seen:
            continue
        seen.add(name)
        for dependency in _dependencies(name):
            pin = pins.get(canonicalize_name(dependency.name))
            if pin is not None:
                assert dependency.specifier.contains(pin, prereleases=True), (
                    f"{name} needs {dependency}, Home Assistant pins {pin}"
                )
            queue.append(dependency.name)
    assert {"python-socketio", "python-engineio", "paho-mqtt", "bidict"} <= seen


DECLARED_CORE_REQUIREMENTS = {"orjson"}
"""Home Assistant requires these too; we declare them because our code imports them directly
(api/_socketio.py decodes Comet packets with orjson), so the client's dependencies stay visible
(quality scale: dependency-transparency). Their ranges include Home Assistant's pins (below)."""

NO_LOGGER = {"orjson"}
"""Requirements that never log (orjson is a compiled JSON codec)."""


def test_imported_packages_are_declared(manifest: dict[str, Any]) -> None:
    """Every third-party package the integration imports is a requirement.

    Home Assistant's own API (homeassistant, voluptuous, aiohttp) is what it is built on.
    """
    declared = {canonicalize_name(r.name) for r in manifest_requirements(manifest)}
    platform = {"homeassistant", "voluptuous", "aiohttp", "yarl", "multidict"}
    packages = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in INTEGRATION.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"(?:from|import)\s+([A-Za-z_]\w*)", line)
            if match and match.group(1) in packages:
                imported |= {canonicalize_name(dist) for dist in packages[match.group(1)]}
    assert "orjson" in imported
    assert sorted(imported - declared - platform) == []


def test_requirements_are_not_home_assistant_core_requirements(manifest: dict[str, Any]) -> None:
    core = {
        canonicalize_name(Requirement(text).name)
        for text in importlib.metadata.requires("homeassistant") or []
    }
    assert "aiohttp" in core
    for requirement in manifest_requirements(manifest):
        if canonicalize_name(requirement.name) in DECLARED_CORE_REQUIREMENTS:
            continue
        assert canonicalize_name(requirement.name) not in core, requirement


def test_pyproject_mirrors_the_manifest(manifest: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == manifest["version"]
    assert project["license"] == "MIT"
    dependencies = {
        Requirement(text).name: str(Requirement(text)) for text in project["dependencies"]
    }
    for requirement in manifest_requirements(manifest):
        assert dependencies.get(requirement.name) == str(requirement)


def test_loggers_are_the_requirements_loggers(manifest: dict[str, Any]) -> None:
    """One logger per top-level package of each requirement (what they call getLogger with)."""
    packages = importlib.metadata.packages_distributions()
    expected: set[str] = set()
    for requirement in manifest_requirements(manifest):
        if canonicalize_name(requirement.name) in NO_LOGGER:
            continue
        tops = {
            top
            for top, dists in packages.items()
            if canonicalize_name(requirement.name) in {canonicalize_name(d) for d in dists}
            and not top.startswith("_")
        }
        assert tops, requirement
        expected |= tops
    assert expected == {"socketio", "engineio", "paho"}
    assert sorted(manifest["loggers"]) == manifest["loggers"]
    assert set(manifest["loggers"]) == expected


# -- CHANGELOG and version ----------------------------------------------------------------------

HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?\s*$", re.MULTILINE)


def changelog_releases() -> list[tuple[str, str | None]]:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return [(m["version"], m["date"]) for m in HEADING.finditer(text)]


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    releases = changelog_releases()
    assert releases[0] == ("Unreleased", None)
    versions = [AwesomeVersion(version) for version, _ in releases[1:]]
    assert versions, "no release yet"
    assert versions == sorted(versions, reverse=True), "newest release first"
    assert len(set(versions)) == len(versions)
    dates = [dt.date.fromisoformat(date) for _, date in releases[1:] if date is not None]
    assert len(dates) == len(versions), "every release has a date (YYYY-MM-DD)"
    assert dates == sorted(dates, reverse=True)
    for version, _ in releases:
        assert AwesomeVersion(version).strategy in {
            AwesomeVersionStrategy.SEMVER,
            AwesomeVersionStrategy.UNKNOWN,  # "Unreleased"
        }
        assert re.search(rf"^\[{re.escape(version)}\]: https://\S+$", text, re.MULTILINE), (
            f"link reference for [{version}]"
        )
    for section in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert section in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_manifest_version_is_the_latest_release(manifest: dict[str, Any]) -> None:
    version = AwesomeVersion(manifest["version"])
    assert version.strategy is AwesomeVersionStrategy.SEMVER
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert changelog_releases()[1][0] == manifest["version"]


# -- hacs.json -----------------------------------------------------------------------------------

HACS_MANIFEST_JSON_SCHEMA = vol.Schema(
    {
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): vol.Coerce(AwesomeVersion),
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): vol.Coerce(AwesomeVersion),
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
        vol.Required("name"): str,
    },
    extra=vol.PREVENT_EXTRA,
)


def test_hacs_json_passes_hacs_schema(hacs: dict[str, Any], manifest: dict[str, Any]) -> None:
    HACS_MANIFEST_JSON_SCHEMA(hacs)
    assert hacs["name"] == manifest["name"]
    countries = hacs.get("country", [])
    for country in [countries] if isinstance(countries, str) else countries:
        assert re.fullmatch(r"[A-Z]{2}", country), country


def test_hacs_json_layout_matches_the_repository(hacs: dict[str, Any]) -> None:
    assert hacs.get("content_in_root", False) is False
    integrations = [path for path in (ROOT / "custom_components").iterdir() if path.is_dir()]
    assert [path.name for path in integrations if not path.name.startswith("__")] == ["saymon"]
    if hacs.get("zip_release"):
        assert str(hacs.get("filename", "")).endswith(".zip"), "zip_release needs filename"
    else:
        assert "filename" not in hacs, "filename applies to zip_release only for integrations"
    if hacs.get("render_readme"):
        assert (ROOT / "README.md").is_file()
    else:
        assert (ROOT / "info.md").is_file()


def test_hacs_json_minimum_home_assistant(hacs: dict[str, Any]) -> None:
    minimum = AwesomeVersion(hacs["homeassistant"])
    assert minimum.strategy is AwesomeVersionStrategy.CALVER
    assert minimum <= HA_VERSION, f"the tests run Home Assistant {HA_VERSION}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Home Assistant {minimum.major}.{minimum.minor} or newer" in readme


def test_validate_workflow_runs_hassfest_and_hacs() -> None:
    """The repository conventions of HACS integrations: both validators on every push."""
    workflow = load_yaml(ROOT / ".github" / "workflows" / "validate.yml")
    assert isinstance(workflow, dict)
    steps = {
        step["uses"].split("@")[0]: step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    }
    assert "home-assistant/actions/hassfest" in steps
    hacs = steps["hacs/action"]
    assert hacs["with"]["category"] == "integration"
    # Only the brands check is skipped, and only because the images ship with the integration.
    assert hacs["with"].get("ignore", "brands") == "brands"
    assert all((BRAND / name).is_file() for name in BRAND_FILES)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads "on" as True
    assert isinstance(triggers, dict)
    assert {"push", "pull_request"} <= set(triggers)


# -- brand images -------------------------------------------------------------------------------

BRAND_FILES = [
    f"{dark}{kind}{hdpi}.png"
    for dark in ("", "dark_")
    for kind in ("icon", "logo")
    for hdpi in ("", "@2x")
]


def open_brand(name: str) -> Image.Image:
    image = Image.open(BRAND / name)
    assert image.format == "PNG", name
    assert image.mode == "RGBA", f"{name}: {image.mode}, needs transparency"
    image.load()
    return image


def test_brand_folder_holds_exactly_the_brand_files() -> None:
    assert sorted(path.name for path in BRAND.iterdir()) == sorted(BRAND_FILES)
    try:
        from homeassistant.components.brands.const import (  # type: ignore[import-not-found, unused-ignore]
            ALLOWED_IMAGES,
        )
    except ImportError:  # Home Assistant before 2026.3 has no local brand images
        assert AwesomeVersion("2026.3.0") > HA_VERSION
    else:
        assert set(BRAND_FILES) <= set(ALLOWED_IMAGES)


@pytest.mark.parametrize("dark", ["", "dark_"])
def test_icons_are_square_256_and_512(dark: str) -> None:
    assert open_brand(f"{dark}icon.png").size == (256, 256)
    assert open_brand(f"{dark}icon@2x.png").size == (512, 512)


@pytest.mark.parametrize("dark", ["", "dark_"])
def test_logos_are_landscape_with_the_shortest_side_in_range(dark: str) -> None:
    normal = open_brand(f"{dark}logo.png")
    hdpi = open_brand(f"{dark}logo@2x.png")
    assert normal.width > normal.height, "a landscape logo is preferred"
    assert 128 <= min(normal.size) <= 256
    assert 256 <= min(hdpi.size) <= 512
    assert hdpi.height == 2 * normal.height
    assert abs(hdpi.width - 2 * normal.width) <= 2


@pytest.mark.parametrize("name", BRAND_FILES)
def test_brand_image_is_transparent_and_trimmed(name: str) -> None:
    image = open_brand(name)
    alpha = image.getchannel("A")
    low, high = alpha.getextrema()
    assert low == 0, "a transparent background"
    assert high == 255
    assert alpha.getbbox() == (0, 0, *image.size), "trimmed: the subject touches every edge"


def test_dark_variants_differ_from_the_light_ones() -> None:
    for name in ("icon.png", "logo.png"):
        light = open_brand(name).tobytes()
        assert open_brand(f"dark_{name}").tobytes() != light


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG 2 contrast ratio."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


Colour = tuple[int, int, int]


def opaque_colours(image: Image.Image) -> Counter[Colour]:
    """How many fully opaque pixels of each colour the image has."""
    colours: Counter[Colour] = Counter()
    for count, colour in image.getcolors(image.width * image.height) or []:
        assert isinstance(colour, tuple)
        red, green, blue, alpha = colour
        if alpha == 255:
            colours[int(red), int(green), int(blue)] += count
    return colours


def mean(colours: Counter[Colour]) -> tuple[float, ...]:
    total = colours.total()
    return tuple(sum(c[i] * n for c, n in colours.items()) / total for i in range(3))


LIGHT_BACKGROUND = (255, 255, 255)
DARK_BACKGROUND = (0x1C, 0x1C, 0x1C)  # Home Assistant's dark card background


@pytest.mark.parametrize(
    ("dark", "background"), [("", LIGHT_BACKGROUND), ("dark_", DARK_BACKGROUND)]
)
def test_brand_images_are_readable_on_their_background(
    dark: str, background: tuple[int, int, int]
) -> None:
    """The tile stands out from the page, the glyph from the tile, the wordmark from the page."""
    icon = opaque_colours(open_brand(f"{dark}icon@2x.png"))
    glyph = icon.most_common(1)[0][0]  # the glyph is one flat colour
    tile = Counter(
        {
            c: n
            for c, n in icon.items()
            if max(abs(a - b) for a, b in zip(c, glyph, strict=True)) > 60
        }
    )
    assert contrast(mean(tile), background) >= 3, "graphics need 3:1 (WCAG 1.4.11)"
    assert contrast(glyph, mean(tile)) >= 3
    logo = open_brand(f"{dark}logo@2x.png")
    words = opaque_colours(logo.crop((int(logo.height * 1.1), 0, logo.width, logo.height)))
    word = words.most_common(1)[0][0]
    assert contrast(word, background) >= 4.5, "text needs 4.5:1 (WCAG 1.4.3)"


# -- quality_scale.yaml ------------------------------------------------------------------------

DOC_RULE_HEADINGS = {
    "docs-high-level-description": ("docs/installation.md", "## What SAYMON is"),
    "docs-supported-devices": ("docs/installation.md", "## Supported SAYMON versions"),
    "docs-installation-instructions": ("docs/installation.md", "## Installation"),
    "docs-installation-parameters": ("docs/configuration.md", "## Configuration"),
    "docs-configuration-parameters": ("docs/configuration.md", "## Configuration options"),
    "docs-supported-functions": ("docs/entities.md", "## Supported functionality"),
    "docs-triggers": ("docs/entities.md", "### Device triggers"),
    "docs-actions": ("docs/actions.md", "# Actions"),
    "docs-examples": ("docs/examples.md", "## Examples"),
    "docs-use-cases": ("docs/examples.md", "## Use cases"),
    "docs-data-update": ("docs/entities.md", "## Data updates"),
    "docs-known-limitations": ("docs/troubleshooting.md", "## Known limitations"),
    "docs-troubleshooting": ("docs/troubleshooting.md", "## Troubleshooting"),
    "docs-removal-instructions": ("docs/removal.md", "# Removing the integration"),
}


def quality_rules() -> dict[str, tuple[str, str | None]]:
    data = load_yaml(INTEGRATION / "quality_scale.yaml")
    assert isinstance(data, dict)
    rules: dict[str, tuple[str, str | None]] = {}
    for rule, value in data["rules"].items():
        if isinstance(value, str):
            rules[rule] = (value, None)
        else:
            rules[rule] = (value["status"], value.get("comment"))
    return rules


def test_quality_scale_statuses_are_honest() -> None:
    rules = quality_rules()
    for rule, (status, comment) in rules.items():
        assert status in {"done", "todo", "exempt"}, rule
        if status == "exempt":
            assert comment, f"{rule}: say why it is exempt"
    assert rules["brands"][0] == "done"
    assert all((BRAND / name).is_file() for name in BRAND_FILES)
    assert rules["diagnostics"][0] == "done"
    assert (INTEGRATION / "diagnostics.py").is_file()
    assert rules["config-flow"][0] == "done"
    assert rules["reconfiguration-flow"][0] == "done"
    assert "async_step_reconfigure" in (INTEGRATION / "config_flow.py").read_text(encoding="utf-8")
    assert rules["reauthentication-flow"][0] == "done"
    assert "async_step_reauth" in (INTEGRATION / "config_flow.py").read_text(encoding="utf-8")
    assert rules["repair-issues"][0] == "done"
    assert "async_create_issue" in (INTEGRATION / "hub" / "availability.py").read_text(
        encoding="utf-8"
    )
    assert rules["appropriate-polling"][0] == "exempt"
    assert "SCAN_INTERVAL" not in "".join(
        path.read_text(encoding="utf-8") for path in INTEGRATION.glob("*.py")
    )


QUALITY_SCALE_RULES = frozenset(
    {
        # The rules every core integration's quality_scale.yaml lists in Home Assistant
        # 2026.10.4 (hassfest's script/hassfest/quality_scale.py, ALL_RULES).
        *("action-setup", "appropriate-polling", "brands", "common-modules"),
        *("config-flow-test-coverage", "config-flow", "dependency-transparency"),
        *("docs-actions", "docs-high-level-description", "docs-installation-instructions"),
        *("docs-removal-instructions", "entity-event-setup", "entity-unique-id"),
        *("has-entity-name", "runtime-data", "test-before-configure", "test-before-setup"),
        "unique-config-entry",
        *("action-exceptions", "config-entry-unloading", "docs-configuration-parameters"),
        *("docs-installation-parameters", "entity-unavailable", "integration-owner"),
        *("log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage"),
        *("devices", "diagnostics", "discovery-update-info", "discovery", "docs-conditions"),
        *("docs-data-update", "docs-examples", "docs-known-limitations"),
        *("docs-supported-devices", "docs-supported-functions", "docs-triggers"),
        *("docs-troubleshooting", "docs-use-cases", "dynamic-devices", "entity-category"),
        *("entity-device-class", "entity-disabled-by-default", "entity-translations"),
        *("exception-translations", "icon-translations", "reconfiguration-flow"),
        *("repair-issues", "stale-devices"),
        *("async-dependency", "inject-websession", "strict-typing"),
    }
)


def test_quality_scale_lists_every_current_rule() -> None:
    assert len(QUALITY_SCALE_RULES) == 54
    assert set(quality_rules()) == QUALITY_SCALE_RULES


def test_async_dependency_is_not_claimed_while_paho_is_used() -> None:
    """paho-mqtt is synchronous; while the mirror uses it the rule is exempt, with the reason."""
    status, comment = quality_rules()["async-dependency"]
    uses_paho = any(
        re.search(r"^\s*(import|from) paho\b", path.read_text(encoding="utf-8"), re.MULTILINE)
        for path in INTEGRATION.rglob("*.py")
    )
    assert uses_paho
    assert status == "exempt"
    assert comment is not None
    assert "paho-mqtt" in comment


def test_no_conditions_so_docs_conditions_is_exempt() -> None:
    assert quality_rules()["docs-conditions"][0] == "exempt"
    assert not (INTEGRATION / "device_condition.py").exists()
    assert not (INTEGRATION / "conditions.yaml").exists()
    assert (INTEGRATION / "device_trigger.py").is_file(), "docs-triggers documents these"


def test_strict_typing_has_no_any_attributes() -> None:
    """strict-typing is claimed: no attribute of the Home Assistant side is typed ``Any``."""
    assert quality_rules()["strict-typing"][0] == "done"
    holes: list[str] = []
    for path in sorted(INTEGRATION.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.annotation, ast.Name)
                and node.annotation.id == "Any"
            ):
                holes.append(f"{path.name}:{node.lineno}")
    assert holes == []


def test_documentation_rules_have_their_section() -> None:
    rules = quality_rules()
    for rule, (page, heading) in DOC_RULE_HEADINGS.items():
        assert rules[rule][0] == "done", rule
        lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
        assert heading in lines, f"{rule}: {page} needs {heading!r}"


def test_readme_links_every_documentation_page() -> None:
    """HACS shows only the README: every user page must be reachable from it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README does not link {page.name}"


def test_readme_keeps_the_development_commands() -> None:
    """CI runs the README's setup and test commands."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(scripts/setup[^\n]*\nscripts/test[^\n]*\n)```", readme)
    assert block is not None


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
