"""Typed views of the backend's answers about the federation's membership.

``Member`` is one entry of /status ``members``; ``Invite`` is the answer to
``POST /invites``. Parsed as strictly as models.py parses the rest of /status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.util import dt as dt_util

from .errors import UnexpectedAnswer
from .models import field_of


@dataclass(frozen=True, slots=True)
class Member:
    """A member of the federation, as this hub's node sees it."""

    node_id: str
    name: str
    founder: bool
    online: bool | None  # None: not asked (input-only without URL) or not reachable from here
    input_only: bool
    capacity: float
    post_quantum: bool | None  # None: the backend does not say (older)
    this_hub: bool

    @classmethod
    def from_json(cls, data: Any, identity: Any) -> Member:
        node_id = field_of(data, "node_id", str)
        online = data.get("online")
        post_quantum = data.get("post_quantum")
        try:
            capacity = float(field_of(data, "capacity", int | float))
        except (TypeError, ValueError) as err:
            raise UnexpectedAnswer(f"malformed member capacity: {err}") from err
        return cls(
            node_id=node_id,
            name=field_of(data, "name", str),
            founder=field_of(data, "founder", bool),
            online=online if isinstance(online, bool) else None,
            input_only=field_of(data, "input_only", bool),
            capacity=capacity,
            post_quantum=post_quantum if isinstance(post_quantum, bool) else None,
            this_hub=isinstance(identity, Mapping) and identity.get("node_id") == node_id,
        )


@dataclass(frozen=True, slots=True)
class Invite:
    """A one-time join token and when it stops working."""

    token: str
    expires_at: datetime  # aware, UTC

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invite:
        token = field_of(data, "token", str)
        expires = field_of(data, "expires_at", int | float)  # Unix time
        try:
            expires_at = dt_util.utc_from_timestamp(float(expires))
        except (OverflowError, OSError, ValueError) as err:
            raise UnexpectedAnswer(f"invite expiry {expires!r} is not a time") from err
        if not token:
            raise UnexpectedAnswer("the backend sent an empty invite token")
        return cls(token=token, expires_at=expires_at)
