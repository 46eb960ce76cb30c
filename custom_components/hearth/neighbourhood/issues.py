"""The repair issue that says another member's node misbehaved towards this one.

The backend records each misbehaviour it detects (a bad signature, conflicting signed
messages, a forged result...) with the member's name and counts them in /status. While
that total is above zero the Neighbourhood entry has one warning issue naming the
members and what they did. The total is part of the issue id: an issue the household
ignored stays ignored (across restarts too) until new reports arrive, and then a fresh
one replaces it.

A report the committee judged invalid (its validity proof failed on the agreeing
verifier shares of 2t + 1 members, a verdict named in the co-signed result) is recorded
against the household that sent it. When such reports are all there is, the issue says
so in its own words (a neighbour's report was left out, this home's statistics are
unaffected); when this hub's own report was judged invalid, it says that instead: the
backend records the verdict against its own node too. Reports a round leaves out as
"inconsistent" or "unchecked" are nobody's misbehaviour (a lying committee member could
be the cause): they only count on the round's result, never here.
"""

from __future__ import annotations

import re

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations

from ..const import DOMAIN
from .models import REPORT_KINDS, MemberMisbehaviour, Misbehaviour

ISSUE_MISBEHAVIOUR = "misbehaviour"  # some member broke the protocol towards this node
ISSUE_EXCLUDED_REPORTS = "excluded_reports"  # only reports left out, none of them this hub's
ISSUE_OWN_REPORT = "own_report_excluded"  # this hub's own report was left out
# The sensor's translated "last kind" states double as the issue's words for each kind.
SENSOR_KEY = "misbehaviour_reports"
KIND_ATTRIBUTE = "last_kind"
NAMES_IN_TITLE = 3
NAME_MAX = 64

# Member names are chosen by other households, and the description is rendered as Markdown.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#!|~])")


def plain(text: str, limit: int = NAME_MAX) -> str:
    """``text`` on one line, at most ``limit`` characters (for the issue's plain title)."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(text: str, limit: int = NAME_MAX) -> str:
    """``plain(text)`` with Markdown's active characters escaped: no links, no markup."""
    return _MARKDOWN.sub(r"\\\1", plain(text, limit))


def _prefix(entry_id: str) -> str:
    return f"{ISSUE_MISBEHAVIOUR}_{entry_id}_"


def issue_id(entry_id: str, total: int) -> str:
    return f"{_prefix(entry_id)}{total}"


async def _kind_words(hass: HomeAssistant) -> dict[str, str]:
    prefix = (
        f"component.{DOMAIN}.entity.sensor.{SENSOR_KEY}.state_attributes.{KIND_ATTRIBUTE}.state."
    )
    strings = await async_get_translations(hass, hass.config.language, "entity", {DOMAIN})
    return {key.removeprefix(prefix): text for key, text in strings.items()
            if key.startswith(prefix)}


def _kinds(member: MemberMisbehaviour) -> dict[str, int]:
    return member.kinds or ({member.last_kind: member.count} if member.last_kind else {})


def _translation_key(misbehaviour: Misbehaviour, node_id: str) -> tuple[str, str | None]:
    """Which issue text fits the reports, and this hub's name if its own report is named."""
    for member in misbehaviour.members:
        if member.node_id == node_id and REPORT_KINDS & set(_kinds(member)):
            return ISSUE_OWN_REPORT, member.name
    kinds = {kind for member in misbehaviour.members for kind in _kinds(member)}
    if kinds and kinds <= REPORT_KINDS:
        return ISSUE_EXCLUDED_REPORTS, None
    return ISSUE_MISBEHAVIOUR, None


def _report_line(member: MemberMisbehaviour, words: dict[str, str]) -> str:
    kinds = _kinds(member)
    if not kinds:
        return f"- **{markdown(member.name)}** ({member.count})"
    what = ", ".join(
        f"{words.get(kind) or markdown(kind.replace('_', ' '))} ({count})"
        for kind, count in sorted(kinds.items(), key=lambda item: -item[1])
    )
    return f"- **{markdown(member.name)}**: {what}"


async def async_sync_misbehaviour_issue(
    hass: HomeAssistant, entry: ConfigEntry, misbehaviour: Misbehaviour | None, node_id: str
) -> None:
    """Raise, replace or withdraw the entry's issue to match the backend's reports.

    ``None`` (a backend that does not report misbehaviour, or an unreadable report)
    changes nothing: not knowing is no reason to raise or to withdraw a warning.
    """
    if misbehaviour is None:
        return
    if misbehaviour.total == 0:
        async_clear_misbehaviour_issues(hass, entry.entry_id)
        return
    current = issue_id(entry.entry_id, misbehaviour.total)
    async_clear_misbehaviour_issues(hass, entry.entry_id, keep=current)
    words = await _kind_words(hass)
    translation_key, own = _translation_key(misbehaviour, node_id)
    names = [plain(m.name) for m in misbehaviour.members]
    shown = ", ".join(names[:NAMES_IN_TITLE])
    if len(names) > NAMES_IN_TITLE:
        shown += f" +{len(names) - NAMES_IN_TITLE}"
    ir.async_create_issue(
        hass,
        DOMAIN,
        current,
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=translation_key,
        translation_placeholders={
            "title": plain(entry.title, 128),
            "members": shown or "?",
            "total": str(misbehaviour.total),
            "reports": "\n".join(_report_line(m, words) for m in misbehaviour.members),
            **({"own": markdown(own)} if own is not None else {}),
        },
    )


@callback
def async_clear_misbehaviour_issues(
    hass: HomeAssistant, entry_id: str, keep: str | None = None
) -> None:
    """Withdraw the entry's misbehaviour issues (all, or all but ``keep``)."""
    prefix = _prefix(entry_id)
    for domain, existing in list(ir.async_get(hass).issues):
        if domain == DOMAIN and existing.startswith(prefix) and existing != keep:
            ir.async_delete_issue(hass, DOMAIN, existing)
