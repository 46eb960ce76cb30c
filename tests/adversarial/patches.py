"""The misbehaviours: each function patches one piece of an otherwise honest node.

Every patch logs ``EVIL <name>`` when it acts, so a test can tell the attack was
really attempted (a defence that is never exercised proves nothing).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from mpc_backend.api import server
from mpc_backend.crypto import NodeKeys
from mpc_backend.crypto.sealing import SEED_BYTES, SUITE_X25519
from mpc_backend.node import federation

log = logging.getLogger("mpc_backend.evil")


def declare_member(**fields: Any) -> None:
    """The member record in this node's join request declares ``fields`` (capacity, url...)."""
    honest = federation.sign_envelope

    def sign(keys: NodeKeys, msg_type: str, federation_id: str, body: dict[str, Any],
             **kwargs: Any) -> dict[str, Any]:
        if msg_type == "join":
            log.warning("EVIL declare_member: the join declares %s", fields)
            body = {**body, "member": {**body["member"], **fields}}
        return honest(keys, msg_type, federation_id, body, **kwargs)

    federation.sign_envelope = sign


def classical_hpke() -> None:
    """The node presents a classical X25519 HPKE key, as a build without ML-KEM would."""
    honest = server.load_keys

    def load(data_dir: Path) -> NodeKeys:
        keys = honest(data_dir)
        log.warning("EVIL classical_hpke: presenting an X25519 HPKE key")
        return NodeKeys(keys._signing.private_bytes_raw(), SUITE_X25519,
                        secrets.token_bytes(SEED_BYTES))

    server.load_keys = load
