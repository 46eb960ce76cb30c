"""The Hearth node app's manifest files against the Supervisor's own app schema.

The schemas below are transcribed from home-assistant/supervisor at commit 090ef31e
(2026-08-21): ``supervisor/apps/validate.py`` (``_SCHEMA_APP_CONFIG``,
``SCHEMA_APP_TRANSLATIONS``), ``supervisor/apps/options.py`` (``RE_SCHEMA_ELEMENT``,
``AppOptions._single_validate`` and ``_check_missing_options``),
``supervisor/store/validate.py`` (``SCHEMA_REPOSITORY_CONFIG``) and
``supervisor/const.py`` (``ARCH_ALL``, ``ARCH_DEPRECATED``). Three deliberate
differences: unknown keys are an error here (the Supervisor silently drops them, so a
misspelt key would simply not work), deprecated values the Supervisor only warns
about (arch armhf/armv7/i386, ``advanced``, ``codenotary``, legacy map types) fail,
and a required option may not default to "" (the Supervisor would then start the app
without a real value instead of asking for one).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml
from awesomeversion import AwesomeVersion
from PIL import Image

import mpc_backend
from mpc_backend.supervisor import options as app_options
from mpc_backend.supervisor import start as app_start

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "hearth_node"

ARCH_ALL = ["aarch64", "amd64"]
ARCH_DEPRECATED = ["armhf", "armv7", "i386"]
RE_SLUG = r"[-_.A-Za-z0-9]+"
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_WATCHDOG = r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"
RE_IMAGE_COMPONENT = re.compile(r"^[a-z0-9{][a-z0-9.\-_{}]*$")
STARTUP = ["initialize", "system", "services", "application", "once"]
BOOT = ["auto", "manual", "manual_only"]
ROLES = ["default", "homeassistant", "backup", "manager", "admin"]
MAP_TYPES = ["config", "data", "ssl", "local_apps", "backup", "share", "media",
             "homeassistant_config", "all_app_configs", "app_config"]

SCHEMA_ELEMENT = vol.Schema(vol.Any(
    vol.Match(RE_SCHEMA_ELEMENT),
    [vol.Any(vol.Match(RE_SCHEMA_ELEMENT), {str: vol.Self})],
    {str: vol.Self},
))


def version_tag(value: Any) -> AwesomeVersion:
    version = AwesomeVersion(str(value))
    if not version.valid:
        raise vol.Invalid(f"{value!r} is not a version")
    return version


def docker_image(value: Any) -> str:
    """An image name without a tag; ``{arch}`` allowed (validate.py docker_image)."""
    if not isinstance(value, str) or not value or ":" in value.rsplit("/", 1)[-1]:
        raise vol.Invalid(f"{value!r} is not an image name without a tag")
    registry, _, path = value.partition("/")
    if not path or registry != registry.lower() or not all(
            RE_IMAGE_COMPONENT.match(part) for part in path.split("/")):
        raise vol.Invalid(f"{value!r} is not a valid image name")
    return value


docker_ports = vol.Schema({vol.Match(r"^\d+(?:/tcp|/udp)?$"): vol.Maybe(
    vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)))})

APP_CONFIG = vol.Schema({
    vol.Required("name"): str,
    vol.Required("version"): version_tag,
    vol.Required("slug"): vol.Match(f"^{RE_SLUG}$"),
    vol.Required("description"): str,
    vol.Required("arch"): [vol.In(ARCH_ALL)],
    vol.Optional("machine"): [str],
    vol.Optional("url"): vol.Url(),
    vol.Optional("startup"): vol.In(STARTUP),
    vol.Optional("boot"): vol.In(BOOT),
    vol.Optional("init"): bool,
    vol.Optional("stage"): vol.In(["stable", "experimental", "deprecated"]),
    vol.Optional("ports"): docker_ports,
    vol.Optional("ports_description"): {str: str},
    vol.Optional("watchdog"): vol.Match(RE_WATCHDOG),
    vol.Optional("webui"): vol.Match(r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$"),
    vol.Optional("ingress"): bool,
    vol.Optional("ingress_port"): vol.Any(vol.Range(min=1, max=65535), 0),
    vol.Optional("ingress_entry"): str,
    vol.Optional("ingress_stream"): bool,
    vol.Optional("panel_icon"): str,
    vol.Optional("panel_title"): str,
    vol.Optional("panel_admin"): bool,
    vol.Optional("homeassistant"): version_tag,
    **{vol.Optional(flag): bool for flag in (
        "host_network", "host_pid", "host_ipc", "host_uts", "host_dbus", "udev", "tmpfs",
        "apparmor", "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree",
        "kernel_modules", "realtime", "hassio_api", "homeassistant_api", "stdin", "legacy",
        "docker_api", "auth_api", "journald")},
    vol.Optional("devices"): [str],
    vol.Optional("map"): [vol.Any(
        vol.Match(r"^(?:" + "|".join(MAP_TYPES) + r")(?::(rw|ro))?$"),
        {vol.Required("type"): vol.In(MAP_TYPES), vol.Optional("read_only"): bool,
         vol.Optional("path"): str})],
    vol.Optional("environment"): {vol.Match(r"\w*"): str},
    vol.Optional("privileged"): [str],
    vol.Optional("hassio_role"): vol.In(ROLES),
    vol.Optional("services"): [vol.Match(r"^(?:mqtt|mysql):(?:provide|want|need)$")],
    vol.Optional("discovery"): [str],
    vol.Optional("backup_exclude"): [str],
    vol.Optional("backup_pre"): str,
    vol.Optional("backup_post"): str,
    vol.Optional("backup"): vol.In(["hot", "cold"]),
    vol.Optional("options"): dict,
    vol.Optional("schema"): vol.Any(vol.Schema({str: SCHEMA_ELEMENT}), False),
    vol.Optional("image"): docker_image,
    vol.Optional("ulimits"): dict,
    vol.Optional("timeout"): vol.All(vol.Coerce(int), vol.Range(min=10, max=300)),
    vol.Optional("breaking_versions"): [version_tag],
}, extra=vol.PREVENT_EXTRA)

TRANSLATION_ITEM = vol.Schema({
    vol.Required("name"): str,
    vol.Optional("description"): vol.Maybe(str),
    vol.Optional("fields"): {str: vol.Self},
}, extra=vol.PREVENT_EXTRA)
APP_TRANSLATIONS = vol.Schema({
    vol.Optional("configuration"): {str: TRANSLATION_ITEM},
    vol.Optional("network"): {str: str},
}, extra=vol.PREVENT_EXTRA)
REPOSITORY_CONFIG = vol.Schema({
    vol.Required("name"): str,
    vol.Optional("url"): vol.Url(),
    vol.Optional("maintainer"): str,
}, extra=vol.PREVENT_EXTRA)


def validate_option(typ: str, value: Any) -> Any:
    """One option value against its schema type (options.py ``_single_validate``)."""
    if value is None:
        raise vol.Invalid("missing required option")
    match = RE_SCHEMA_ELEMENT.match(typ)
    if not match:
        raise vol.Invalid(f"unknown type {typ!r}")
    limits = {name[2:]: float(v) for name in ("i_min", "i_max", "f_min", "f_max", "s_min",
                                              "s_max", "p_min", "p_max")
              if (v := match.group(name))}
    if typ.startswith(("str", "password")):
        return vol.All(str, vol.Length(**limits))(value)
    if typ.startswith("int"):
        return vol.All(vol.Coerce(int), vol.Range(**limits))(value)
    if typ.startswith("float"):
        return vol.All(vol.Coerce(float), vol.Range(**limits))(value)
    if typ.startswith("bool"):
        return vol.Boolean()(value)
    if typ.startswith("url"):
        return vol.Url()(value)
    if typ.startswith("list"):
        return vol.In(match.group("list").split("|"))(str(value))
    if typ.startswith("match"):
        return vol.Match(match.group("match"))(str(value))
    raise vol.Invalid(f"type {typ!r} is not used by this app")


def validate_options(schema: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    """Options as the Supervisor checks them before it writes options.json at a start
    (``AppOptions.__call__``): typed values, and every option whose type has no ``?``
    present (``_check_missing_options``); returns what it would write."""
    checked = {}
    for key, value in options.items():
        if key not in schema:
            raise vol.Invalid(f"option {key!r} is not in the schema")
        checked[key] = validate_option(schema[key], value)
    for key in set(schema) - set(options):
        if not schema[key].endswith("?"):
            raise vol.Invalid(f"Missing option {key!r} in root")
    return checked


def check_defaults(schema: dict[str, str], options: dict[str, Any]) -> None:
    """Each default passes its type. A required option may have no default (the
    Supervisor then asks for it and refuses to start the app until it is set), but an
    empty one would let the app start without a real value."""
    for key, value in options.items():
        if key not in schema:
            raise vol.Invalid(f"option {key!r} is not in the schema")
        validate_option(schema[key], value)
        if not schema[key].endswith("?") and value == "":
            raise vol.Invalid(f"required option {key!r} has an empty default; leave it out "
                              "of options so that the Supervisor asks for it")


def check_app(config: dict[str, Any], translations: dict[str, Any]) -> None:
    """Everything the app's files must satisfy together; raises vol.Invalid."""
    APP_CONFIG(config)
    APP_TRANSLATIONS(translations)
    check_defaults(config["schema"], config["options"])
    translated = translations.get("configuration", {})
    for key in config["schema"]:
        item = translated.get(key)
        if not item or not item.get("name") or not item.get("description"):
            raise vol.Invalid(f"option {key!r} has no translated name and description")
    if extra := set(translated) - set(config["schema"]):
        raise vol.Invalid(f"translations for unknown options: {sorted(extra)}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture
def config() -> dict[str, Any]:
    return load_yaml(APP / "config.yaml")


@pytest.fixture
def translations() -> dict[str, Any]:
    return load_yaml(APP / "translations" / "en.yaml")


def test_app_files_pass_the_supervisor_schema(config: dict[str, Any],
                                              translations: dict[str, Any]) -> None:
    check_app(config, translations)
    REPOSITORY_CONFIG(load_yaml(ROOT / "repository.yaml"))
    for name in ("config.yaml", "Dockerfile", "DOCS.md", "README.md", "CHANGELOG.md",
                 "icon.png", "logo.png", "translations/en.yaml"):
        assert (APP / name).is_file(), name
    assert not (APP / "build.yaml").exists()  # deprecated: the Dockerfile names its base


def test_app_settings_the_contract_asks_for(config: dict[str, Any]) -> None:
    assert config["slug"] == "hearth_node"
    assert config["name"] == "Hearth node"
    assert sorted(config["arch"]) == ARCH_ALL
    assert "ports" not in config  # the API stays on the internal network
    assert not config.get("hassio_api", False)  # self/info and discovery need no role
    assert config["init"] is False  # s6-overlay's /init is PID 1
    assert config["backup"] == "cold"  # SQLite in WAL mode
    assert config["startup"] in ("services", "application")
    port = int(app_start.DEFAULT_LISTEN.rpartition(":")[2])
    assert config["watchdog"] == f"http://[HOST]:{port}/api/v1/health"
    schema = config["schema"]
    assert schema["capacity"] == "float(0.5,2)"
    assert schema["input_only"] == "bool"
    assert schema["relay_password"] == "password?"
    assert {k: schema[k][-1] for k in app_options.RELAY_KEYS} == dict.fromkeys(
        app_options.RELAY_KEYS, "?")
    # The start script knows every option the Supervisor may hand it; the others are
    # container-only (the app publishes no port, so it has no public URL).
    assert set(schema) == set(app_options.ENV_VARS) - set(app_options.CONTAINER_ONLY)
    assert app_options.CONTAINER_ONLY == ("public_url",)


def test_the_household_name_must_be_set_before_the_app_starts(config: dict[str, Any]) -> None:
    schema, defaults = config["schema"], config["options"]
    assert schema["name"] == "str" and "name" not in defaults
    # Unset: the Supervisor refuses the start and writes no options.json.
    with pytest.raises(vol.Invalid, match="Missing option 'name' in root"):
        validate_options(schema, defaults)
    # Set: what it writes is what the start script accepts, defaults included.
    written = validate_options(schema, {**defaults, "name": "No. 12"})
    assert app_options.parse_options(written) == app_options.AppOptions("No. 12")
    # An empty name passes the Supervisor's str; the start script refuses it itself.
    written = validate_options(schema, {**defaults, "name": ""})
    with pytest.raises(app_options.OptionsError, match="is empty"):
        app_options.parse_options(written)


def test_discovery_is_the_integration_domain(config: dict[str, Any]) -> None:
    manifest = json.loads((ROOT / "custom_components/hearth/manifest.json").read_text())
    assert config["discovery"] == [manifest["domain"]] == ["hearth"]
    from mpc_backend.supervisor.discovery import SERVICE  # noqa: PLC0415

    assert manifest["domain"] == SERVICE


def test_versions_agree(config: dict[str, Any]) -> None:
    assert str(config["version"]) == mpc_backend.__version__
    assert f"## {mpc_backend.__version__}\n" in (APP / "CHANGELOG.md").read_text()


def _dockerfile() -> tuple[str, dict[str, str], dict[str, str]]:
    text = (APP / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    args = dict(re.findall(r"^ARG (\w+)(?:=(\S+))?$", joined, re.MULTILINE))
    label_line = next(line for line in joined.splitlines() if line.startswith("LABEL "))
    labels = dict(re.findall(r'([\w.]+)="([^"]*)"', label_line))
    return joined, args, labels


def test_dockerfile_labels_and_args_match_the_config(config: dict[str, Any]) -> None:
    text, args, labels = _dockerfile()
    assert args["BUILD_FROM"].startswith("ghcr.io/home-assistant/base-python:3.14-alpine")
    assert "BUILD_ARCH" in args and "BUILD_VERSION" in args  # set by every HA builder
    assert labels["io.hass.type"] == "app"
    assert labels["io.hass.name"] == config["name"]
    assert labels["io.hass.description"] == config["description"]
    assert labels["io.hass.url"] == config["url"]
    assert labels["io.hass.arch"] == "${BUILD_ARCH}"
    assert labels["io.hass.version"] == "${BUILD_VERSION}"
    port = app_start.DEFAULT_LISTEN.rpartition(":")[2]
    assert f"EXPOSE {port}" in text
    grace_ms = int(re.search(r"S6_KILL_GRACETIME=(\d+)", text).group(1))
    assert 3000 < grace_ms < config["timeout"] * 1000  # serve's 3 s shutdown fits, then s6
    assert 'CMD ["/usr/bin/with-contenv", "python3", "-m", "mpc_backend.supervisor"]' in text
    # the build context is the repository root: these are what the image installs
    for source in ("pyproject.toml", "setup.py", "README.md", "mpc_backend"):
        assert (ROOT / source).exists()
        assert re.search(rf"^COPY .*\b{re.escape(source)}\b", text, re.MULTILINE), source
    ignore = (APP / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and "!mpc_backend/" in ignore and "**/*.so" in ignore


def test_workflow_builds_the_image_the_config_names(config: dict[str, Any]) -> None:
    workflow = load_yaml(ROOT / ".github/workflows/app.yaml")
    name = workflow["env"]["IMAGE_NAME"]
    owner = "hearth-dev"
    assert config["image"] == f"ghcr.io/{owner}/{{arch}}-{name}"
    assert json.loads(workflow["env"]["ARCHITECTURES"]) == ["amd64", "aarch64"]
    build = workflow["jobs"]["build"]
    assert build["permissions"]["packages"] == "write"
    step = next(s for s in build["steps"] if "build-image" in s.get("uses", ""))
    assert step["with"]["file"] == "hearth_node/Dockerfile"
    assert step["with"]["context"] == "."
    uses = [s["uses"] for job in workflow["jobs"].values() for s in job["steps"] if "uses" in s]
    assert uses and all(re.search(r"@[0-9a-f]{40}$", u) for u in uses), uses
    assert workflow["permissions"] == {"contents": "read"}


def test_icon_and_logo_sizes() -> None:
    with Image.open(APP / "icon.png") as icon:
        assert icon.size == (128, 128)
    with Image.open(APP / "logo.png") as logo:
        width, height = logo.size
        assert 200 <= width <= 300 and 80 <= height <= 120


BREAKAGES = [
    ("arch", lambda c, t: c.update(arch=["aarch64", "armv7"]), "at 'arch[1]'"),
    ("arch spelling", lambda c, t: c.update(arch=["arm64"]), "at 'arch[0]'"),
    ("no name", lambda c, t: c.pop("name"), "required key not provided"),
    ("no version", lambda c, t: c.pop("version"), "required key not provided"),
    ("bad slug", lambda c, t: c.update(slug="hearth node"), "does not match"),
    ("watchdog", lambda c, t: c.update(watchdog="http://localhost:8731/"), "does not match"),
    ("backup", lambda c, t: c.update(backup="warm"), "at 'backup'"),
    ("startup", lambda c, t: c.update(startup="before"), "at 'startup'"),
    ("typo", lambda c, t: c.update(discovey=["hearth"]), "at 'discovey'"),
    ("image tag", lambda c, t: c.update(image="ghcr.io/x/{arch}-hearth-node:1.0"),
     "without a tag"),
    ("schema type", lambda c, t: c["schema"].update(capacity="double"), "does not match"),
    ("default out of range", lambda c, t: c["options"].update(capacity=3), "value must be at most"),
    ("default wrong type", lambda c, t: c["options"].update(input_only="sometimes"),
     "expected a boolean"),
    ("empty default of a required option", lambda c, t: c["options"].update(name=""),
     "required option 'name' has an empty default"),
    ("option not in schema", lambda c, t: c["options"].update(colour="red"),
     "not in the schema"),
    ("untranslated", lambda c, t: t["configuration"].pop("relay_ca"),
     "option 'relay_ca' has no translated"),
    ("translation without description", lambda c, t: t["configuration"]["name"].pop("description"),
     "option 'name' has no translated"),
    ("stale translation", lambda c, t: t["configuration"].update(old={"name": "Old"}),
     "translations for unknown options"),
]


@pytest.mark.parametrize(("what", "breakage", "message"), BREAKAGES,
                         ids=[b[0] for b in BREAKAGES])
def test_the_validator_rejects_broken_copies(config: dict[str, Any],
                                             translations: dict[str, Any], what: str,
                                             breakage: Any, message: str) -> None:
    broken_config, broken_translations = copy.deepcopy(config), copy.deepcopy(translations)
    breakage(broken_config, broken_translations)
    with pytest.raises(vol.Invalid, match=re.escape(message)):
        check_app(broken_config, broken_translations)
