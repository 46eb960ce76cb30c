"""A node's own relay settings in its data dir: ``relay.json``, mode 0600.

It holds the broker endpoint, this node's broker account and, on the founder,
the broker admin account it provisions newcomers with. It is written when the
node creates or joins a relay federation and read at every start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpc_backend.node.config import replace_private

from .endpoint import BrokerAccount, RelayConfigError, RelayEndpoint

RELAY_FILE_NAME = "relay.json"


@dataclass(frozen=True)
class RelaySettings:
    endpoint: RelayEndpoint
    account: BrokerAccount
    admin: BrokerAccount | None = None  # founder only: provisions invitees' accounts
    # The invite's password while its replacement is being set: either may be in force.
    fallback: BrokerAccount | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"endpoint": self.endpoint.to_dict(),
                                "account": self.account.to_dict()}
        if self.admin is not None:
            data["admin"] = self.admin.to_dict()
        if self.fallback is not None:
            data["fallback"] = self.fallback.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RelaySettings:
        if not isinstance(data, dict):
            raise RelayConfigError("relay settings must be a JSON object")
        admin, fallback = data.get("admin"), data.get("fallback")
        return cls(RelayEndpoint.from_dict(data.get("endpoint")),
                   BrokerAccount.from_dict(data.get("account")),
                   None if admin is None else BrokerAccount.from_dict(admin),
                   None if fallback is None else BrokerAccount.from_dict(fallback))


def load_relay_settings(data_dir: Path) -> RelaySettings | None:
    path = Path(data_dir) / RELAY_FILE_NAME
    if not path.exists():
        return None
    try:
        return RelaySettings.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise RelayConfigError(f"{path} is unreadable ({err}); restore it from a backup of "
                               "the data dir") from None


def save_relay_settings(data_dir: Path, settings: RelaySettings) -> None:
    replace_private(Path(data_dir) / RELAY_FILE_NAME, json.dumps(settings.to_dict()))


def forget_relay_settings(data_dir: Path) -> None:
    """After a join that failed: the invite's account is of no use to this node."""
    (Path(data_dir) / RELAY_FILE_NAME).unlink(missing_ok=True)
