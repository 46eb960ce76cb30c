"""Every user-facing string exists, in strings.json and translations/en.json alike."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from custom_components.hearth import access, config_flow, messages
from custom_components.hearth.drivers import errors as driver_errors

PACKAGE = Path(config_flow.__file__).parent
STRINGS = json.loads((PACKAGE / "strings.json").read_text())


def test_english_translation_is_strings_json() -> None:
    """Custom integrations ship translations/en.json; it must say what strings.json says."""
    assert json.loads((PACKAGE / "translations" / "en.json").read_text()) == STRINGS


def _error_keys() -> set[str]:
    node_errors = {cls.translation_key for cls in access.DeviceNodeError.__subclasses__()}
    driver = {
        messages.error_key(cls("x"))
        for cls in vars(driver_errors).values()
        if isinstance(cls, type) and issubclass(cls, driver_errors.DriverError)
    }
    return node_errors | driver | {messages.error_key(OSError("x"))}


@pytest.mark.parametrize("key", sorted(_error_keys()))
def test_every_failure_has_a_flow_error_and_an_exception_message(key: str) -> None:
    """The same key reads the same in the setup dialog and in the log."""
    assert key in STRINGS["config"]["error"]
    assert key in STRINGS["exceptions"]


def test_repair_issues_for_every_node_problem() -> None:
    """Each host-side problem has a repair issue telling what to do."""
    for cls in access.DeviceNodeError.__subclasses__():
        issue = STRINGS["issues"][cls.translation_key]
        assert "{path}" in issue["description"]


def test_flow_source_uses_only_translated_keys() -> None:
    """Every error and abort reason written in the config flow is translated."""
    source = Path(config_flow.__file__).read_text()
    errors = set(re.findall(r'errors\[[^\]]+\] = "(\w+)"', source))
    aborts = set(re.findall(r'reason="(\w+)"', source))
    assert errors  # the pattern matches the code as written
    assert errors <= set(STRINGS["config"]["error"]) | set(STRINGS["options"]["error"])
    assert aborts <= set(STRINGS["config"]["abort"])


def test_services_yaml_matches_translations() -> None:
    """Each action and field has a name and description."""
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text())
    for service, spec in services.items():
        translated = STRINGS["services"][service]
        assert translated["name"] and translated["description"]
        assert set(spec["fields"]) == set(translated["fields"])


def _leaves(node: object) -> list[str]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    return [node] if isinstance(node, str) else []


def test_placeholders_are_well_formed() -> None:
    """A stray brace would break the frontend's message formatter."""
    for text in _leaves(STRINGS):
        assert re.sub(r"\{\w+\}", "", text).count("{") == 0, text
        assert re.sub(r"\{\w+\}", "", text).count("}") == 0, text
