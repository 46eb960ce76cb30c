"""Invite tokens, invite keys and join proofs, API tokens."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mpc_backend.crypto import (
    INVITE_PREFIX,
    InvalidInviteError,
    NodeKeys,
    b64url_decode,
    b64url_encode,
    check_join_proof,
    invite_key_id,
    invite_mailbox,
    invite_public_key,
    join_proof,
    make_invite,
    new_api_token,
    parse_invite,
)

NOW = 1_800_000_000.0
URL = "https://hub-17.example.net:8765"
FINGERPRINT = NodeKeys.generate().fingerprint


def _fields(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token[len(INVITE_PREFIX) :]))


def _token(fields: dict[str, Any]) -> str:
    return INVITE_PREFIX + b64url_encode(json.dumps(fields).encode())


def test_invite_round_trip() -> None:
    token, key_id, expires_at = make_invite(URL, FINGERPRINT, "fed-1", 3600, now=NOW)
    assert token.startswith(INVITE_PREFIX)
    assert re.fullmatch(r"[A-Za-z0-9_\-.]+", token)  # pastes cleanly into a shell or a URL
    assert expires_at == NOW + 3600
    invite = parse_invite(f"  {token}\n", now=NOW + 3599)
    assert invite.founder_url == URL
    assert invite.founder_fingerprint == FINGERPRINT
    assert invite.federation_id == "fed-1"
    assert invite.expires_at == expires_at
    assert len(invite.secret) == 43  # 32 bytes, base64url
    assert key_id == invite_key_id(invite_public_key(invite.secret))
    assert key_id not in token


def test_each_invite_has_its_own_secret() -> None:
    secrets_seen = {
        parse_invite(make_invite(URL, FINGERPRINT, "f", 60, now=NOW)[0], now=NOW).secret
        for _ in range(20)
    }
    assert len(secrets_seen) == 20


def test_expired_invite() -> None:
    token, _, _ = make_invite(URL, FINGERPRINT, "fed-1", 600, now=NOW)
    with pytest.raises(InvalidInviteError) as err:
        parse_invite(token, now=NOW + 600)
    assert str(err.value) == (
        "invite expired at 2027-01-15 08:10:00 UTC; ask the founder for a new one"
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "should start with 'hearth-invite-v1.'"),
        ("hearth-invite-v2.abc", "should start with"),
        ("https://hub/invite", "should start with"),
        (INVITE_PREFIX + "!!!", "damaged"),
        (INVITE_PREFIX + "e", "damaged"),
        (INVITE_PREFIX + b64url_encode(b"not json"), "damaged"),
    ],
)
def test_malformed_invites_say_what_to_do(token: str, message: str) -> None:
    with pytest.raises(InvalidInviteError, match=re.escape(message)):
        parse_invite(token, now=NOW)


def test_invite_cut_short_when_copied() -> None:
    token, _, _ = make_invite(URL, FINGERPRINT, "fed-1", 600, now=NOW)
    for length in (len(INVITE_PREFIX) + 10, len(token) - 1, len(token) - 5):
        with pytest.raises(InvalidInviteError, match="copy the whole token"):
            parse_invite(token[:length], now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "ftp://hub"}, "http(s) URL"),
        ({"url": "https://"}, "http(s) URL"),
        ({"url": "http://[::1"}, "http(s) URL"),
        ({"fingerprint": "abcd"}, "not a Hearth key fingerprint"),
        ({"federation": ""}, "'federation' must be a non-empty string"),
        ({"secret": 5}, "'secret' must be a non-empty string"),
        ({"expires_at": "tomorrow"}, "Unix time"),
        ({"expires_at": True}, "Unix time"),
        ({"extra": 1}, "must have fields"),
    ],
)
def test_invites_with_bad_fields(change: dict[str, Any], message: str) -> None:
    fields = _fields(make_invite(URL, FINGERPRINT, "fed-1", 600, now=NOW)[0])
    fields.update(change)
    with pytest.raises(InvalidInviteError, match=re.escape(message)):
        parse_invite(_token(fields), now=NOW)


def test_invite_with_a_missing_field() -> None:
    fields = _fields(make_invite(URL, FINGERPRINT, "fed-1", 600, now=NOW)[0])
    del fields["secret"]
    with pytest.raises(InvalidInviteError, match="must have fields"):
        parse_invite(_token(fields), now=NOW)


def test_non_finite_expiry_is_rejected() -> None:
    fields = _fields(make_invite(URL, FINGERPRINT, "fed-1", 600, now=NOW)[0])
    fields["expires_at"] = float("inf")  # json.dumps spells it Infinity, json.loads accepts it
    with pytest.raises(InvalidInviteError, match="finite"):
        parse_invite(_token(fields), now=NOW)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((URL, FINGERPRINT, "f", 0), "positive"),
        ((URL, FINGERPRINT, "f", 1.5), "positive"),
        (("hub.local:8765", FINGERPRINT, "f", 60), "http(s) URL"),
        ((URL, "not-a-fingerprint", "f", 60), "fingerprint"),
        ((URL, FINGERPRINT, "", 60), "federation"),
    ],
)
def test_make_invite_rejects_bad_arguments(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_invite(*args)


def test_the_invite_key_is_seeded_by_the_secret_and_stored_only_as_a_hash() -> None:
    seed = hashlib.sha256(b"hearth/invite-key/v1\x00abc").digest()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert invite_public_key("abc") == public
    assert invite_public_key("abd") != public
    assert invite_key_id(public) == hashlib.sha256(b"hearth/invite-id/v1\x00" + public).hexdigest()
    assert invite_mailbox(public) == "h-" + hashlib.sha256(
        b"hearth/mailbox/v1\x00" + public).hexdigest()[:20]


def test_a_join_proof_holds_for_its_member_record_only() -> None:
    """The secret never travels: what a join carries proves the invite for exactly one
    member record, so whoever reads it on the way cannot join with other keys."""
    member = {"node_id": "n1", "name": "No. 12", "mailbox": "h-1"}
    body = join_proof("abc", "fed-1", member)
    assert "abc" not in json.dumps(body)
    assert check_join_proof(body, "fed-1", member) == invite_public_key("abc")
    for federation, record in [("fed-2", member), ("fed-1", {**member, "node_id": "n2"}),
                               ("fed-1", {**member, "mailbox": "h-2"})]:
        with pytest.raises(InvalidInviteError, match="does not prove an invite"):
            check_join_proof(body, federation, record)
    for broken in [{}, {"invite": body["invite"]}, {**body, "proof": "AAAA"},
                   {**body, "invite": b64url_encode(invite_public_key("abd"))}]:
        with pytest.raises(InvalidInviteError, match="does not prove an invite"):
            check_join_proof(broken, "fed-1", member)


def test_api_tokens() -> None:
    tokens = {new_api_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_\-]{43}", t) for t in tokens)
