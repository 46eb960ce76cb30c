"""Every neighbourhood string the code refers to exists in strings.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

import custom_components.hearth.neighbourhood as neighbourhood
from custom_components.hearth.neighbourhood.binary_sensor import BACKEND_SENSOR, RELAY_SENSOR
from custom_components.hearth.neighbourhood.const import INTENT_GET_NEIGHBOURHOOD
from custom_components.hearth.neighbourhood.issues import (
    ISSUE_EXCLUDED_REPORTS,
    ISSUE_MISBEHAVIOUR,
    ISSUE_OWN_REPORT,
)
from custom_components.hearth.neighbourhood.models import MISBEHAVIOUR_KINDS, REPORT_KINDS
from custom_components.hearth.neighbourhood.options_flow import MENU
from custom_components.hearth.neighbourhood.sensor import (
    AGGREGATES,
    MISBEHAVIOUR_SENSOR,
    NODE_SENSORS,
)
from custom_components.hearth.neighbourhood.setup_flow import CREATE_ERRORS, JOIN_ERRORS
from custom_components.hearth.neighbourhood.task_form import STATS, propose_schema

SUBPACKAGE = Path(neighbourhood.__file__).parent
STRINGS = json.loads((SUBPACKAGE.parent / "strings.json").read_text())


def _source(name: str) -> str:
    return (SUBPACKAGE / name).read_text()


# Abort reasons Home Assistant's flow helpers use without the integration naming them.
SUPPLIED_REASONS = {"already_in_progress", "reauth_successful", "reconfigure_successful"}


def test_flow_errors_and_aborts_are_translated() -> None:
    """Every error, abort, step and menu option of the config flow has its text, every
    such text is used, and the texts name only placeholders their forms pass."""
    source = _source("config_flow.py") + _source("setup_flow.py")
    config = STRINGS["config"]
    checks = set(re.findall(r'return None, "(\w+)"', _source("config_flow.py")))
    assert checks == {"invalid_url", "invalid_auth", "cannot_connect"}
    backend_errors = {key for _, key in (*CREATE_ERRORS.values(), *JOIN_ERRORS.values())}
    assert backend_errors >= {
        "invalid_invite", "invite_expired", "invite_used", "invite_unknown", "wrong_federation",
        "fingerprint_mismatch", "already_member", "relay_unavailable", "bad_relay",
        "no_relay_admin", "founder_unreachable",
    }
    form_errors = (
        checks | backend_errors
        | set(re.findall(r'errors\[\w+\] = "(\w+)"', source))
        | set(re.findall(r'\(\w+, "(relay_\w+)"\)', source))
    )
    assert {"backend_error", "invalid_name", "relay_url_required",
            "relay_credentials_incomplete"} <= form_errors
    assert form_errors <= set(config["error"]), form_errors - set(config["error"])
    # Only the found and join forms pass the backend's words ({message}).
    setup_source = _source("setup_flow.py")
    for key, text in config["error"].items():
        if "{message}" in text:
            assert f'"{key}"' in setup_source, key
        assert set(re.findall(r"\{(\w+)\}", text)) <= {"message"}, key
    # Discovery aborts with the check's error; Home Assistant's helpers supply the others.
    aborts = (
        set(re.findall(r'(?:reason|error)="(\w+)"', source))
        | (checks - {"invalid_url"})
        | {"already_configured"} | SUPPLIED_REASONS
    )
    assert aborts <= set(config["abort"]), aborts - set(config["abort"])
    steps = set(re.findall(r'step_id="(\w+)"', source))
    assert {"hassio_confirm", "neighbourhood_setup", "neighbourhood_create",
            "neighbourhood_join"} <= steps <= set(config["step"])
    menu = config["step"]["neighbourhood_setup"]["menu_options"]
    assert set(menu) == {"neighbourhood_create", "neighbourhood_join"}
    assert all(f"async_step_{option}" in source for option in menu)
    # Every neighbourhood text in the config section is used by the code.
    everything = "".join(path.read_text() for path in SUBPACKAGE.parent.rglob("*.py"))
    for section in ("error", "abort", "step"):
        unused = {key for key in config[section] if f'"{key}"' not in everything}
        unused -= SUPPLIED_REASONS
        assert not unused, (section, unused)
    # Each field of the found and join forms is labelled and explained in plain words.
    for step, fields in (
        ("neighbourhood_create", {"name", "relay_url", "relay_username", "relay_password",
                                  "relay_ca"}),
        ("neighbourhood_join", {"invite"}),
    ):
        assert set(config["step"][step]["data"]) == fields
        assert set(config["step"][step]["data_description"]) == fields
    assert "{name}" in config["flow_title"]
    assert set(re.findall(r"\{(\w+)\}", config["step"]["hassio_confirm"]["description"])) == {
        "name", "app", "slug"}


def test_options_flow_is_translated() -> None:
    """Every step, menu option, field, error and abort of the options flow has its text,
    and each text's placeholders are ones the step passes."""
    source = _source("options_flow.py")
    form = _source("task_form.py")
    options = STRINGS["options"]
    errors = set(re.findall(r'errors\[[^\]]+\] = "(\w+)"', source + form))
    errors |= set(re.findall(r'return "(\w+)"', form))
    errors |= set(re.findall(r': "(\w+)"\}', form))  # the refusal mapping
    errors |= set(re.findall(r'known = \(([^)]*)\)', source)[0].replace('"', "").split(", "))
    assert {"unit_mismatch", "not_founder", "relay_unavailable", "no_relay_admin",
            "high_not_above_low", "buckets_outside_range", "threshold_too_high",
            "task_exists", "too_few_members", "too_many_tasks", "founder_unreachable",
            "invalid_task", "backend_refused", "cannot_connect", "invalid_auth"} <= errors
    assert errors <= set(options["error"]), errors - set(options["error"])
    # Error texts see the step's placeholders: the invite and propose steps pass these.
    passed = {"url", "founder", "message"}
    for key in errors:
        assert set(re.findall(r"\{(\w+)\}", options["error"][key])) <= passed, key
    assert "{founder}" in options["error"]["not_founder"]
    aborts = set(re.findall(r'reason="(\w+)"', source))
    assert {"task_proposed", "backend_unreachable", "backend_invalid_auth", "no_tasks",
            "invite_created", "members"} <= aborts
    assert aborts <= set(options["abort"])
    assert set(re.findall(r"\{(\w+)\}", options["abort"]["task_proposed"])) == {
        "task", "task_id"
    }
    steps = set(re.findall(r'step_id="(\w+)"', source))
    assert steps <= set(options["step"])
    assert set(options["step"]["init"]["menu_options"]) == set(MENU)
    assert {f"neighbourhood_{s}" for s in ("tasks", "invite", "propose", "members")} == set(MENU)
    assert all(f"async def async_step_{step}(" in source for step in MENU)
    # The menu shares "init" with the sensor options: no text there may need their
    # placeholders (the menu passes none).
    init = options["step"]["init"]
    assert not re.findall(r"\{(\w+)\}", init.get("title", "") + init.get("description", ""))
    done = options["abort"]["invite_created"]
    assert "```\n{token}\n```" in done and "{expires}" in done
    assert "privately" in done and "until it is used or expires" in done
    members = options["abort"]["members"]
    assert set(re.findall(r"\{(\w+)\}", members)) == {"count", "households", "members"}
    propose = options["step"]["neighbourhood_propose"]
    fields = {str(key) for key in propose_schema().schema}
    assert fields == set(propose["data"]) == set(propose["data_description"])
    words = propose["data_description"]
    assert "privacy floor" in words["min_contributors"]
    assert "learn nothing" in words["threshold"]
    assert "k \N{MINUS SIGN} t \N{MINUS SIGN} 1" in words["threshold"]
    assert "more noise" in words["dp_epsilon"] and "more privacy" in words["dp_epsilon"]
    assert set(STRINGS["selector"]["stats"]["options"]) == set(STATS)
    invite = options["step"]["neighbourhood_invite"]
    assert set(invite["data"]) == set(invite["data_description"]) == {"expires_hours"}


def test_create_invite_action_is_described() -> None:
    services = yaml.safe_load((SUBPACKAGE.parent / "services.yaml").read_text())
    fields = set(services["create_invite"]["fields"])
    assert fields == {"config_entry_id", "expires_hours"}
    assert set(STRINGS["services"]["create_invite"]["fields"]) == fields
    assert STRINGS["services"]["create_invite"]["name"]
    icons = json.loads((SUBPACKAGE.parent / "icons.json").read_text())
    assert set(icons["services"]) == set(services)
    # Codes the action passes straight through as translation keys.
    assert "err.code in (\"relay_unavailable\", \"no_relay_admin\")" in _source("services.py")
    assert {"relay_unavailable", "no_relay_admin", "not_founder"} <= set(STRINGS["exceptions"])


def test_exceptions_are_translated() -> None:
    keys = set()
    for module in SUBPACKAGE.glob("*.py"):
        text = module.read_text()
        keys |= set(re.findall(r'translation_domain=DOMAIN,\s*translation_key="(\w+)"', text))
        keys |= set(re.findall(r'fail\("(\w+)"', text))
    assert {"backend_unreachable", "intent_no_result", "already_contributed"} <= keys
    assert keys <= set(STRINGS["exceptions"]), keys - set(STRINGS["exceptions"])


def test_entities_and_device_are_translated() -> None:
    sensors = STRINGS["entity"]["sensor"]
    for description in (*AGGREGATES, *NODE_SENSORS):
        assert description.translation_key in sensors
    for key in [d.translation_key for d in AGGREGATES] + ["last_round"]:
        assert "{metric}" in sensors[key]["name"]
    assert set(sensors["last_round"]["state"]) == {"released", "insufficient", "failed"}
    assert set(sensors["last_round"]["state_attributes"]) == {
        "round", "reason", "excluded_reports"
    }
    binary_sensors = STRINGS["entity"]["binary_sensor"]
    assert (BACKEND_SENSOR.translation_key, RELAY_SENSOR.translation_key) == ("backend", "relay")
    assert binary_sensors["backend"]["name"] == "Backend"
    assert binary_sensors["relay"]["name"] == "Relay"
    assert set(binary_sensors["relay"]["state_attributes"]) == {"url", "since", "last_error"}
    assert STRINGS["device"]["neighbourhood"]["name"] == "Neighbourhood"


def test_misbehaviour_sensor_and_issue_are_translated() -> None:
    sensor = STRINGS["entity"]["sensor"][MISBEHAVIOUR_SENSOR.translation_key]
    assert sensor["name"] == "Misbehaviour reports"
    assert set(sensor["state_attributes"]["last_kind"]["state"]) == set(MISBEHAVIOUR_KINDS)
    issue = STRINGS["issues"][ISSUE_MISBEHAVIOUR]
    assert set(re.findall(r"\{(\w+)\}", issue["title"])) == {"title", "members"}
    # Only Markdown-escaped placeholders in the (Markdown) description.
    assert set(re.findall(r"\{(\w+)\}", issue["description"])) == {"total", "reports"}
    assert "founder" in issue["description"]
    # Reports left out: named as reports, not as a member's attack on this node. Only an
    # invalid verdict is anyone's misbehaviour (inconsistent or unchecked may be a lying
    # member's doing): no text explains the others as a household's fault.
    assert {"invalid_report"} == REPORT_KINDS
    assert set(MISBEHAVIOUR_KINDS) >= REPORT_KINDS
    reports = STRINGS["issues"][ISSUE_EXCLUDED_REPORTS]
    assert set(re.findall(r"\{(\w+)\}", reports["title"])) == {"title", "members"}
    assert set(re.findall(r"\{(\w+)\}", reports["description"])) == {"total", "reports"}
    assert "your own statistics are unaffected" in reports["description"]
    own = STRINGS["issues"][ISSUE_OWN_REPORT]
    assert set(re.findall(r"\{(\w+)\}", own["title"])) == {"title"}
    assert set(re.findall(r"\{(\w+)\}", own["description"])) == {"own", "total", "reports"}
    for text in (issue["description"], reports["description"], own["description"]):
        assert "invalid" in text
        assert "inconsistent" not in text.lower() and "unchecked" not in text.lower()
        assert "founder" in text
    for text in (reports["description"], own["description"]):
        assert "*invalid report* failed its validity proof" in text


def test_options_say_what_is_shared() -> None:
    text = STRINGS["options"]["step"]["neighbourhood_tasks"]["description"]
    assert "Nothing is shared until you choose a task" in text
    assert "secret shares" in text
    assert "{minimums}" in text


def test_sentences_file_targets_the_intent() -> None:
    sentences = yaml.safe_load(_source("sentences/en/hearth.yaml"))
    assert sentences["language"] == "en"
    assert set(sentences["intents"]) == {INTENT_GET_NEIGHBOURHOOD}
    assert sentences["responses"]["intents"][INTENT_GET_NEIGHBOURHOOD]["default"]
    assert "custom_sentences/en/" in _source("sentences/en/hearth.yaml")


def test_reasons_home_assistant_supplies_are_translated() -> None:
    """async_update_reload_and_abort ends a reauth with "reauth_successful" unless told
    otherwise; the reconfigure step names its own reason. Both must read as sentences."""
    assert 'reason="backend_moved"' in _source("config_flow.py")
    assert {"reauth_successful", "backend_moved"} <= set(STRINGS["config"]["abort"])
