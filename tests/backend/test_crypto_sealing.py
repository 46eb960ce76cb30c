"""HPKE sealing of shares: round trips, wire format, and every way opening must fail."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from mpc_backend.crypto import (
    SUITE_HYBRID,
    SUITE_X25519,
    DecryptionError,
    NodeKeys,
    UnsupportedSuiteError,
    available_suites,
    canonical_json,
    seal_share,
    share_aad,
)

SUITES = available_suites()
# RFC 9180 / X-Wing sizes: encapsulated key, then ciphertext with a 16-byte tag.
ENC_BYTES = {SUITE_X25519: 32, SUITE_HYBRID: 1088 + 32}
CONTEXT = {
    "federation_id": "fed-1",
    "task_id": "task-temp",
    "round_id": 7,
    "sender_id": "sender-node",
    "recipient_id": "recipient-node",
}


def _aad(**changes: object) -> bytes:
    return share_aad(**{**CONTEXT, **changes})  # type: ignore[arg-type]


@pytest.fixture(params=SUITES)
def recipient(request: pytest.FixtureRequest) -> NodeKeys:
    return NodeKeys.generate(request.param)


def test_both_suites_are_available_here() -> None:
    assert SUITES == (SUITE_HYBRID, SUITE_X25519)


def test_round_trip_and_ciphertext_layout(recipient: NodeKeys) -> None:
    plaintext = bytes(range(200))
    aad = _aad()
    sealed = seal_share(recipient.hpke_public, recipient.hpke_suite, plaintext, aad)
    assert len(sealed) == ENC_BYTES[recipient.hpke_suite] + len(plaintext) + 16
    assert plaintext not in sealed
    assert recipient.open_share(sealed, aad) == plaintext
    again = seal_share(recipient.hpke_public, recipient.hpke_suite, plaintext, aad)
    assert again != sealed  # fresh ephemeral key every time
    assert recipient.open_share(again, aad) == plaintext
    assert (
        recipient.open_share(seal_share(recipient.hpke_public, recipient.hpke_suite, b"", aad), aad)
        == b""
    )


def test_wire_format_is_plain_rfc9180_with_the_documented_suite() -> None:
    """An independent HPKE receiver, built straight from the seeds, opens our shares."""
    seed = bytes(range(32))
    aad = _aad()
    suite_args = (hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

    x_keys = NodeKeys(bytes(32), SUITE_X25519, seed)
    sealed = seal_share(x_keys.hpke_public, SUITE_X25519, b"share", aad)
    receiver = hpke.Suite(hpke.KEM.X25519, *suite_args)
    assert (
        receiver.decrypt(sealed, x25519.X25519PrivateKey.from_private_bytes(seed), info=aad)
        == b"share"
    )

    h_keys = NodeKeys(bytes(32), SUITE_HYBRID, seed)
    sealed = seal_share(h_keys.hpke_public, SUITE_HYBRID, b"share", aad)
    expanded = hashlib.shake_256(seed).digest(96)
    private = hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )
    receiver = hpke.Suite(hpke.KEM.MLKEM768_X25519, *suite_args)
    assert receiver.decrypt(sealed, private, info=aad) == b"share"


@pytest.mark.parametrize(
    "where", ["first", "enc_end", "body", "tag", "truncate", "extend", "empty"]
)
def test_tampered_ciphertext_does_not_open(recipient: NodeKeys, where: str) -> None:
    aad = _aad()
    sealed = bytearray(seal_share(recipient.hpke_public, recipient.hpke_suite, b"x" * 200, aad))
    enc = ENC_BYTES[recipient.hpke_suite]
    if where == "truncate":
        sealed = sealed[:-1]
    elif where == "extend":
        sealed += b"\x00"
    elif where == "empty":
        sealed = bytearray()
    else:
        index = {"first": 0, "enc_end": enc - 1, "body": enc + 100, "tag": len(sealed) - 1}[where]
        sealed[index] ^= 0x01
    with pytest.raises(DecryptionError, match="did not decrypt"):
        recipient.open_share(bytes(sealed), aad)


@pytest.mark.parametrize(
    "change",
    [
        {"federation_id": "fed-2"},
        {"task_id": "task-power"},
        {"round_id": 8},
        {"sender_id": "other-sender"},
        {"recipient_id": "other-recipient"},
        {"sender_id": "recipient-node", "recipient_id": "sender-node"},
    ],
)
def test_share_opened_in_another_context_does_not_open(
    recipient: NodeKeys, change: dict[str, object]
) -> None:
    sealed = seal_share(recipient.hpke_public, recipient.hpke_suite, b"share", _aad())
    with pytest.raises(DecryptionError):
        recipient.open_share(sealed, _aad(**change))


def test_share_sealed_to_someone_else_does_not_open(recipient: NodeKeys) -> None:
    intended = NodeKeys.generate(recipient.hpke_suite)
    sealed = seal_share(intended.hpke_public, intended.hpke_suite, b"share", _aad())
    with pytest.raises(DecryptionError):
        recipient.open_share(sealed, _aad())
    assert intended.open_share(sealed, _aad()) == b"share"


def test_share_aad_is_canonical_and_names_its_domain() -> None:
    aad = _aad()
    assert aad == (
        b'{"ctx":"hearth/share/v1","federation":"fed-1","recipient":"recipient-node",'
        b'"round":7,"sender":"sender-node","task":"task-temp"}'
    )
    assert json.loads(aad)["ctx"] == "hearth/share/v1"
    # Written without canonical_json's walk and sort, yet byte for byte its output, also
    # for names that JSON escapes or that are not ASCII.
    for task in ("task-temp", 'q"uote\\back', "t\u00e9mp\u2028\n", "\U0001f321"):
        context = {"federation_id": "fed-1", "task_id": task, "round_id": 2**40,
                   "sender_id": "s", "recipient_id": "r"}
        assert share_aad(**context) == canonical_json({  # type: ignore[arg-type]
            "ctx": "hearth/share/v1", "federation": "fed-1", "task": task, "round": 2**40,
            "sender": "s", "recipient": "r"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"round_id": -1}, "round_id"),
        ({"round_id": True}, "round_id"),
        ({"round_id": "7"}, "round_id"),
        ({"federation_id": ""}, "federation_id"),
        ({"sender_id": None}, "sender_id"),
    ],
)
def test_share_aad_rejects_bad_context(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _aad(**change)


def test_public_key_of_the_wrong_size_or_suite_is_rejected() -> None:
    hybrid = NodeKeys.generate(SUITE_HYBRID)
    classic = NodeKeys.generate(SUITE_X25519)
    with pytest.raises(ValueError, match="must be 32 bytes, got 1216"):
        seal_share(hybrid.hpke_public, SUITE_X25519, b"s", _aad())
    with pytest.raises(ValueError, match="must be 1216 bytes, got 32"):
        seal_share(classic.hpke_public, SUITE_HYBRID, b"s", _aad())
    with pytest.raises(UnsupportedSuiteError, match="unknown HPKE suite"):
        seal_share(classic.hpke_public, "P256", b"s", _aad())
