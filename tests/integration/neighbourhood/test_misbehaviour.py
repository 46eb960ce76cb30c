"""Misbehaviour the backend detects, shown on the Neighbourhood entry: a diagnostic sensor
and a repair issue naming the member, which follows new reports and respects "ignore"."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.sensor import SensorStateClass
from homeassistant.const import (
    ATTR_FRIENDLY_NAME,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_dumps
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.diagnostics import async_get_config_entry_diagnostics
from custom_components.hearth.neighbourhood.issues import (
    ISSUE_EXCLUDED_REPORTS,
    ISSUE_MISBEHAVIOUR,
    ISSUE_OWN_REPORT,
    issue_id,
    markdown,
    plain,
)
from custom_components.hearth.neighbourhood.models import Misbehaviour, NodeStatus, TaskResult

from .conftest import wait_for
from .fake_backend import INVALID_REPORT_DETAIL, FakeBackend, iso

SENSOR = "sensor.neighbourhood_misbehaviour_reports"
LAST_ROUND = "sensor.neighbourhood_indoor_temperature_last_round"
TASK = "indoor_temperature"
JAN_1 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def issues(hass: HomeAssistant) -> dict[str, ir.IssueEntry]:
    return {
        issue_id: issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue_id.startswith("misbehaviour_")
    }


async def refresh(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def rendered(hass: HomeAssistant, issue: ir.IssueEntry) -> tuple[str, str]:
    """The issue's title and description as the frontend shows them (in English)."""
    strings = await async_get_translations(hass, "en", "issues", {DOMAIN})
    prefix = f"component.{DOMAIN}.issues.{issue.translation_key}"
    placeholders = issue.translation_placeholders or {}
    return (strings[f"{prefix}.title"].format(**placeholders),
            strings[f"{prefix}.description"].format(**placeholders))


async def test_sensor_shows_the_reports(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.report_misbehaviour(2, "bad_signature", "held set signature does not verify", JAN_1)
    backend.report_misbehaviour(2, "forged_result", "result not co-signed by t+1", JAN_1 + 60)
    backend.report_misbehaviour(1, "equivocation", "signed two different held statements",
                                JAN_1 + 30)
    backend.classical = {"house1"}
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    state = hass.states.get(SENSOR)
    assert state.state == "3"
    assert state.attributes[ATTR_FRIENDLY_NAME] == "Neighbourhood Misbehaviour reports"
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "reports"
    assert state.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING
    assert state.attributes["members"] == [
        {"name": "house2", "node_id": "2" * 32, "count": 2,
         "kinds": {"bad_signature": 1, "forged_result": 1}, "last_kind": "forged_result",
         "last_detail": "result not co-signed by t+1", "last_seen": "2026-01-01T00:01:00+00:00"},
        {"name": "house1", "node_id": "1" * 32, "count": 1, "kinds": {"equivocation": 1},
         "last_kind": "equivocation", "last_detail": "signed two different held statements",
         "last_seen": "2026-01-01T00:00:30+00:00"},
    ]
    assert state.attributes["last_kind"] == "forged_result"
    assert state.attributes["last_member"] == "house2"
    assert state.attributes["last_seen"] == "2026-01-01T00:01:00+00:00"
    assert state.attributes["members_without_post_quantum"] == ["house1"]
    registry_entry = er.async_get(hass).async_get(SENSOR)
    assert registry_entry.entity_category is EntityCategory.DIAGNOSTIC
    assert registry_entry.unique_id == f"{backend.node_id}_misbehaviour_reports"

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["status"]["misbehaviour"]["total"] == 3
    assert diagnostics["status"]["classical_members"] == ("house1",)
    assert '"last_at":"2026-01-01T00:01:00+00:00"' in json_dumps(diagnostics)


async def test_no_reports_no_issue(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    state = hass.states.get(SENSOR)
    assert state.state == "0"
    assert state.attributes["members"] == []
    assert "last_kind" not in state.attributes
    assert state.attributes["members_without_post_quantum"] == []
    assert issues(hass) == {}


async def test_an_older_backend_gets_no_sensor_and_no_issue(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    """No "misbehaviour" key: no sensor until the backend (upgraded) reports it."""
    backend.misbehaviour = None
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR) is None
    assert issues(hass) == {}

    backend.misbehaviour = {"total": 0, "members": []}
    await refresh(hass, entry)
    assert hass.states.get(SENSOR).state == "0"
    backend.misbehaviour = None  # and downgraded again: unknown, not zero
    await refresh(hass, entry)
    assert hass.states.get(SENSOR).state == STATE_UNKNOWN
    assert issues(hass) == {}


async def test_repair_issue_names_the_member_and_follows_new_reports(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.report_misbehaviour(2, "forged_result", "bad co-signatures", JAN_1)
    await refresh(hass, loaded)
    assert list(issues(hass)) == [issue_id(loaded.entry_id, 1)]
    issue = issues(hass)[issue_id(loaded.entry_id, 1)]
    assert issue.translation_key == "misbehaviour"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable and not issue.is_persistent
    assert issue.translation_placeholders == {
        "title": loaded.title,
        "members": "house2",
        "total": "1",
        "reports": "- **house2**: Forged result (1)",
    }

    backend.report_misbehaviour(2, "equivocation", "two held sets for round 7", JAN_1 + 60)
    backend.report_misbehaviour(1, "bad_signature", "", JAN_1 + 120)
    backend.report_misbehaviour(2, "equivocation", "two held sets for round 8", JAN_1 + 180)
    await refresh(hass, loaded)
    assert hass.states.get(SENSOR).state == "4"
    assert list(issues(hass)) == [issue_id(loaded.entry_id, 4)]  # replaced, not added
    placeholders = issues(hass)[issue_id(loaded.entry_id, 4)].translation_placeholders
    assert placeholders["members"] == "house2, house1"
    assert placeholders["total"] == "4"
    assert placeholders["reports"] == (
        "- **house2**: Contradictory signed messages (2), Forged result (1)\n"
        "- **house1**: Invalid signature (1)"
    )

    backend.misbehaviour = {"total": 0, "members": []}  # e.g. the node's data was reset
    await refresh(hass, loaded)
    assert issues(hass) == {}


async def test_an_ignored_issue_stays_ignored_until_new_reports(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.report_misbehaviour(1, "contributor_set_refused", "", JAN_1)
    await refresh(hass, loaded)
    first = issue_id(loaded.entry_id, 1)
    ir.async_ignore_issue(hass, DOMAIN, first, True)

    await refresh(hass, loaded)  # the same count, polled again
    assert issues(hass)[first].dismissed_version is not None

    backend.report_misbehaviour(1, "forged_result", "", JAN_1 + 60)
    await refresh(hass, loaded)
    assert list(issues(hass)) == [issue_id(loaded.entry_id, 2)]
    assert issues(hass)[issue_id(loaded.entry_id, 2)].dismissed_version is None


async def test_the_issue_goes_with_the_entry(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.report_misbehaviour(2, "equivocation", "", JAN_1)
    await refresh(hass, loaded)
    assert issues(hass)
    await hass.config_entries.async_remove(loaded.entry_id)
    await hass.async_block_till_done()
    assert issues(hass) == {}


async def test_an_offline_backend_leaves_the_issue(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.report_misbehaviour(2, "bad_signature", "", JAN_1)
    await refresh(hass, loaded)
    await backend.stop()
    await wait_for(hass, lambda: hass.states.get(SENSOR).state == STATE_UNAVAILABLE)
    await refresh(hass, loaded)
    assert list(issues(hass)) == [issue_id(loaded.entry_id, 1)]


async def test_member_names_cannot_inject_markdown(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """Names are other households' choice; the description is rendered as Markdown."""
    name = "[Click here](https://evil.example)\n# now!" + "x" * 100
    backend.misbehaviour = {"total": 2, "members": [
        {"node_id": "1" * 32, "name": name, "count": 2, "kinds": {"brand_new_kind": 2},
         "last_kind": "brand_new_kind", "last_detail": "", "last_at": iso(JAN_1)},
    ]}
    await refresh(hass, loaded)
    placeholders = issues(hass)[issue_id(loaded.entry_id, 2)].translation_placeholders
    line = placeholders["reports"]
    assert line.startswith(r"- **\[Click here\]\(https://evil.example\) \# now\!xxx")
    assert line.endswith("…**: brand new kind (2)")
    assert "\n" not in line
    assert placeholders["members"] == plain(name)
    assert len(placeholders["members"]) == 64


async def test_many_members_and_sparse_reports(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """The title names three members; a report without kinds falls back to its last kind."""
    members: list[dict[str, Any]] = [
        {"node_id": f"{i}" * 32, "name": f"house{i}", "count": 6 - i, "kinds": {},
         "last_kind": "equivocation"}
        for i in range(1, 5)
    ]
    members.append({"node_id": "9" * 32, "name": "house9", "count": 1})
    backend.misbehaviour = {"total": 15, "members": members}
    await refresh(hass, loaded)
    placeholders = issues(hass)[issue_id(loaded.entry_id, 15)].translation_placeholders
    assert placeholders["members"] == "house1, house2, house3 +2"
    lines = placeholders["reports"].splitlines()
    assert lines[0] == "- **house1**: Contradictory signed messages (5)"
    assert lines[-1] == "- **house9** (1)"
    state = hass.states.get(SENSOR)
    assert state.state == "15"
    assert state.attributes["members"][-1] == {
        "name": "house9", "node_id": "9" * 32, "count": 1, "kinds": {}, "last_kind": None,
        "last_detail": None, "last_seen": None,
    }
    assert "last_kind" not in state.attributes  # no report says when it happened


def test_text_helpers() -> None:
    assert plain(" a\tb\x00c  d ") == "a b c d"
    assert plain("abcdef", 4) == "abc…"
    assert markdown("*bold* <b>`x`</b>") == r"\*bold\* \<b\>\`x\`\</b\>"


GOOD_MEMBER: dict[str, Any] = {
    "node_id": "1" * 32, "name": "house1", "count": 2, "kinds": {"forged_result": 2},
    "last_kind": "forged_result", "last_detail": "x", "last_at": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (None, None),
        ("lots", None),
        ([1, 2], None),
        ({"members": []}, None),
        ({"total": "3", "members": []}, None),
        ({"total": True, "members": []}, None),
        ({"total": -1, "members": []}, None),
        ({"total": 2, "members": "house1"}, (2, [])),
        ({"total": 2}, (2, [])),
        ({"total": 2, "members": [GOOD_MEMBER]}, (2, [("house1", 2, {"forged_result": 2})])),
        ({"total": 2, "members": [5, None, {"name": "house1"}, GOOD_MEMBER]},
         (2, [("house1", 2, {"forged_result": 2})])),
        ({"total": 2, "members": [GOOD_MEMBER | {"count": -2}]}, (2, [])),
        ({"total": 2, "members": [GOOD_MEMBER | {"count": 2.5}]}, (2, [])),
        ({"total": 2, "members": [GOOD_MEMBER | {"node_id": None}]}, (2, [])),
        ({"total": 2, "members": [GOOD_MEMBER | {"kinds": ["forged_result"]}]},
         (2, [("house1", 2, {})])),
        ({"total": 2, "members": [
            GOOD_MEMBER | {"kinds": {"forged_result": "2", "equivocation": 1, "x": True,
                                     "y": 0}}]},
         (2, [("house1", 2, {"equivocation": 1})])),
    ],
)
def test_malformed_misbehaviour_is_tolerated(block: Any, expected: Any) -> None:
    parsed = Misbehaviour.from_json(block)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.total, [(m.name, m.count, m.kinds) for m in parsed.members]) == expected


@pytest.mark.parametrize(
    ("change", "last"),
    [
        ({}, ("forged_result", "x", "2026-01-01T00:00:00+00:00")),
        ({"last_at": "yesterday"}, ("forged_result", "x", None)),
        ({"last_at": "2026-13-45T99:00:00Z"}, ("forged_result", "x", None)),
        ({"last_at": 1767225600}, ("forged_result", "x", None)),
        ({"last_kind": 3, "last_detail": None}, (None, None, "2026-01-01T00:00:00+00:00")),
    ],
)
def test_member_fields_that_only_describe(change: dict, last: tuple) -> None:
    parsed = Misbehaviour.from_json({"total": 2, "members": [GOOD_MEMBER | change]})
    assert parsed is not None
    member = parsed.members[0]
    at = None if member.last_at is None else member.last_at.isoformat()
    assert (member.last_kind, member.last_detail, at) == last


async def test_malformed_block_keeps_the_entry_working(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """An unreadable report is unknown: the other sensors and an existing issue stay."""
    backend.report_misbehaviour(2, "forged_result", "", JAN_1)
    await refresh(hass, loaded)
    backend.misbehaviour = {"total": "many", "members": {"house2": 1}}
    await refresh(hass, loaded)
    assert hass.states.get(SENSOR).state == STATE_UNKNOWN
    assert hass.states.get("sensor.neighbourhood_members_online").state == "3"
    assert list(issues(hass)) == [issue_id(loaded.entry_id, 1)]

    # Unreadable member entries are skipped; the issue still raises on the total.
    backend.misbehaviour = {"total": 3, "members": [{"name": 7}]}
    await refresh(hass, loaded)
    placeholders = issues(hass)[issue_id(loaded.entry_id, 3)].translation_placeholders
    assert (placeholders["members"], placeholders["reports"]) == ("?", "")


def test_classical_members_from_status() -> None:
    base: dict[str, Any] = {
        "identity": {"node_id": "n", "name": "house0", "version": "1"},
        "federation": None, "load": {},
    }
    assert NodeStatus.from_json(base).classical_members is None
    members = [
        {"node_id": "a", "name": "house0", "post_quantum": True},
        {"node_id": "b", "name": "house1", "post_quantum": False},
        {"node_id": "c", "post_quantum": False},
        {"node_id": "d", "name": "house3"},  # an older backend says nothing
        "garbage",
    ]
    status = NodeStatus.from_json(base | {"members": members})
    assert status.classical_members == ("house1", "c")
    assert NodeStatus.from_json(base | {"members": members[3:]}).classical_members is None
    assert NodeStatus.from_json(base | {"members": "x"}).classical_members is None
    assert NodeStatus.from_json(base).misbehaviour is None
    assert NodeStatus.from_json(base | {"misbehaviour": {"total": 0}}).misbehaviour == (
        Misbehaviour(total=0, members=())
    )


async def test_an_invalid_report_reads_as_a_neighbours_report_left_out(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    """A household whose report failed its validity proof is named by the co-signed result;
    the node logs it, and the issue says its report was left out, not that it forged."""
    backend.publish(TASK, 100, [19.0, 21.5, 23.0], excluded={2: "invalid"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    state = hass.states.get(SENSOR)
    assert state.state == "1"
    assert state.attributes["members"] == [
        {"name": "house2", "node_id": "2" * 32, "count": 1, "kinds": {"invalid_report": 1},
         "last_kind": "invalid_report",
         "last_detail": f"indoor_temperature round 100: {INVALID_REPORT_DETAIL}",
         "last_seen": iso(101 * 60 + 2).replace("Z", "+00:00")},
    ]
    assert state.attributes["last_kind"] == "invalid_report"
    assert state.attributes["last_member"] == "house2"
    # The round itself was released from the three valid reports, and says one was left out.
    last_round = hass.states.get(LAST_ROUND)
    assert last_round.state == "released"
    assert last_round.attributes["excluded_reports"] == 1
    assert hass.states.get("sensor.neighbourhood_indoor_temperature_contributors").state == "3"
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["latest"][TASK]["excluded_reports"] == 1

    issue = issues(hass)[issue_id(entry.entry_id, 1)]
    assert issue.translation_key == ISSUE_EXCLUDED_REPORTS
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {
        "title": entry.title,
        "members": "house2",
        "total": "1",
        "reports": "- **house2**: Invalid report (failed its validity proof) (1)",
    }
    title, description = await rendered(hass, issue)
    assert title == "Elm Street (house0): a neighbour's report was left out (house2)"
    assert "left out of its results (1 so far):\n\n" \
        "- **house2**: Invalid report (failed its validity proof) (1)\n\n" in description
    assert "*invalid report* failed its validity proof" in description
    assert "your own statistics are unaffected" in description
    assert "forged" not in description.lower()
    assert "inconsistent" not in description.lower()

    # Another invalid report, from another household, joins the same text.
    backend.publish(TASK, 101, [20.0, 21.0, 22.0], excluded={1: "invalid", 2: "unchecked"})
    await refresh(hass, entry)
    assert set(issues(hass)) == {issue_id(entry.entry_id, 2)}
    issue = issues(hass)[issue_id(entry.entry_id, 2)]
    assert issue.translation_key == ISSUE_EXCLUDED_REPORTS
    assert issue.translation_placeholders["members"] == "house1, house2"
    assert issue.translation_placeholders["reports"] == (
        "- **house1**: Invalid report (failed its validity proof) (1)\n"
        "- **house2**: Invalid report (failed its validity proof) (1)"
    )
    assert hass.states.get(SENSOR).attributes["last_member"] == "house1"
    assert hass.states.get(LAST_ROUND).attributes["excluded_reports"] == 2

    # Once a member also broke the protocol, the general text (which mentions both) is back.
    backend.report_misbehaviour(1, "forged_result", "", JAN_1)
    await refresh(hass, entry)
    issue = issues(hass)[issue_id(entry.entry_id, 3)]
    assert issue.translation_key == ISSUE_MISBEHAVIOUR
    _, description = await rendered(hass, issue)
    assert "A report listed as invalid was left out of its round" in description
    assert "inconsistent" not in description.lower()


@pytest.mark.parametrize("verdict", ["inconsistent", "unchecked"])
@pytest.mark.parametrize("house", [0, 2])
async def test_reports_left_out_unattributed_are_nobodys_misbehaviour(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry, verdict: str, house: int
) -> None:
    """A report left out as inconsistent or unchecked may be a lying member's doing: it
    counts on the round, but no household (this hub included) is reported for it."""
    backend.publish(TASK, 100, [19.0, 21.5, 23.0], excluded={house: verdict})
    await refresh(hass, loaded)
    assert hass.states.get(LAST_ROUND).attributes["excluded_reports"] == 1
    diagnostics = await async_get_config_entry_diagnostics(hass, loaded)
    assert diagnostics["latest"][TASK]["excluded_reports"] == 1
    state = hass.states.get(SENSOR)
    assert state.state == "0"
    assert state.attributes["members"] == []
    assert issues(hass) == {}

    # Alongside an invalid report, only that one is anyone's misbehaviour.
    other = 1
    backend.publish(TASK, 101, [19.0, 21.5, 23.0], excluded={house: verdict, other: "invalid"})
    await refresh(hass, loaded)
    assert hass.states.get(LAST_ROUND).attributes["excluded_reports"] == 2
    state = hass.states.get(SENSOR)
    assert state.state == "1"
    assert [(m["name"], m["kinds"]) for m in state.attributes["members"]] == [
        ("house1", {"invalid_report": 1})
    ]
    issue = issues(hass)[issue_id(loaded.entry_id, 1)]
    assert issue.translation_key == ISSUE_EXCLUDED_REPORTS  # not this hub's, even if house0
    assert issue.translation_placeholders["reports"] == (
        "- **house1**: Invalid report (failed its validity proof) (1)"
    )


async def test_this_hubs_own_report_left_out(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """The node records a verdict against itself too: the issue then says it is this hub's."""
    backend.publish(TASK, 100, [19.0, 21.5, 23.0], excluded={0: "invalid", 2: "inconsistent"})
    backend.publish(TASK, 101, [19.0, 21.5, 23.0], excluded={2: "invalid"})
    await refresh(hass, loaded)
    issue = issues(hass)[issue_id(loaded.entry_id, 2)]
    assert issue.translation_key == ISSUE_OWN_REPORT
    assert issue.translation_placeholders["own"] == "house0"
    title, description = await rendered(hass, issue)
    assert title == "Elm Street (house0): this hub's report was left out of a round"
    assert "this hub's own report (house0)" in description
    assert "- **house0**: Invalid report (failed its validity proof) (1)" in description
    assert "- **house2**: Invalid report (failed its validity proof) (1)" in description
    assert "this hub sent a reading the task does not allow" in description
    assert "inconsistent" not in description.lower()
    assert "unaffected" not in description
    assert hass.states.get(LAST_ROUND).attributes["excluded_reports"] == 1


async def test_a_failed_round_records_no_verdicts(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.publish(TASK, 100, status="failed", reason="deadline", excluded={2: "invalid"})
    await refresh(hass, loaded)
    assert hass.states.get(SENSOR).state == "0"
    assert issues(hass) == {}


async def test_a_retired_kind_reads_as_misbehaviour(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """A kind the integration does not know (say, one a backend no longer logs) is not
    taken for a report left out: it shows by its slug, under the general text."""
    backend.report_misbehaviour(2, "inconsistent_report", "", JAN_1)
    await refresh(hass, loaded)
    issue = issues(hass)[issue_id(loaded.entry_id, 1)]
    assert issue.translation_key == ISSUE_MISBEHAVIOUR
    assert issue.translation_placeholders["reports"] == "- **house2**: inconsistent report (1)"


RESULT: dict[str, Any] = {
    "seq": 1, "task": TASK, "metric": TASK, "unit": "°C", "round": 7, "status": "released",
    "reason": None, "contributors": 3, "statistics": {"count": 3},
    "round_end": "2026-01-01T00:08:00Z", "released_at": "2026-01-01T00:08:02Z",
}


@pytest.mark.parametrize(
    ("excluded", "expected"),
    [
        (None, ()),  # an older backend: no key at all
        ([], ()),
        ("house2", ()),
        ([{"household": "2" * 32, "verdict": "invalid"}], (("2" * 32, "invalid"),)),
        ([{"household": "2" * 32}, 5, {"household": 3, "verdict": "invalid"},
          {"household": "1" * 32, "verdict": "inconsistent"}], (("1" * 32, "inconsistent"),)),
        ([{"household": "0" * 32, "verdict": "unchecked"},
          {"household": "2" * 32, "verdict": "invalid"}],
         (("0" * 32, "unchecked"), ("2" * 32, "invalid"))),
    ],
)
def test_excluded_reports_are_read_leniently(excluded: Any, expected: tuple) -> None:
    data = RESULT if excluded is None else RESULT | {"excluded": excluded}
    result = TaskResult.from_json(data)
    assert result.excluded == expected
    assert result.as_dict()["excluded_reports"] == len(expected)
