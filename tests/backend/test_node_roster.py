"""Member records: a key no one can seal to is refused when the record is read."""

from __future__ import annotations

import pytest

from mpc_backend.crypto import NodeKeys
from mpc_backend.node.roster import MemberInfo, RosterError


def test_member_hpke_suite_and_key_are_checked() -> None:
    keys = NodeKeys.generate()
    good = MemberInfo.of_keys(keys, "house", "http://127.0.0.1:1", 1.0, False).to_dict()
    assert MemberInfo.from_dict(good).hpke_public == keys.hpke_public
    with pytest.raises(RosterError, match="unknown HPKE suite 'RSA-2048'"):
        MemberInfo.from_dict({**good, "hpke_suite": "RSA-2048"})
    short = MemberInfo.from_dict(good).to_dict()
    short["hpke_public"] = short["hpke_public"][:20]
    with pytest.raises(RosterError, match=f"{keys.hpke_suite} public key must be"):
        MemberInfo.from_dict(short)
