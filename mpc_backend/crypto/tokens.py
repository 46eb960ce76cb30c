"""Invite tokens, API tokens and how their secrets are stored.

An invite is ``hearth-invite-v1.`` + base64url(canonical JSON) carrying the
founder's URL, the fingerprint of the founder's keys (so the joiner can tell it
reached the real founder), the federation id, a one-time secret and an expiry.
In a relay federation it also carries ``relay``: the broker's URL and CA, the
founder's mailbox and the broker account the founder provisioned for the
joiner, whose username (its mailbox) is derived from the secret
of the invite key (``invite_mailbox``), so the founder knows which mailbox a
join may claim.
The founder's URL is then null: it takes no inbound connection.
The token is self-describing but not signed. The secret never leaves the
joiner's hub: it seeds an Ed25519 *invite key*, and a join carries the invite
key's public half and its signature over the joiner's member record
(``join_proof``). The founder keeps only a hash of that public key
(``invite_key_id``), so a leaked founder database admits nobody, and whoever
sees a join on its way (a relay broker, a network path without TLS) cannot
reuse it for another member record.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .encoding import b64url_decode, b64url_encode, canonical_json
from .errors import InvalidInviteError, InviteExpiredError

INVITE_PREFIX = "hearth-invite-v1."
_INVITE_KEY_CONTEXT = b"hearth/invite-key/v1\x00"
_INVITE_ID_CONTEXT = b"hearth/invite-id/v1\x00"
_JOIN_CONTEXT = b"hearth/join/v1\x00"
_FINGERPRINT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")
_FIELDS = {"url", "fingerprint", "federation", "secret", "expires_at"}
_RELAY_FIELDS = {"url", "username", "password", "founder"}  # and "ca", optional
_MAILBOX_CONTEXT = b"hearth/mailbox/v1\x00"


@dataclass(frozen=True)
class Invite:
    """A parsed, unexpired invite token."""

    founder_url: str | None  # None behind a relay
    founder_fingerprint: str
    federation_id: str
    secret: str
    expires_at: float
    relay: dict[str, str] | None = None  # url, ca (optional), username, password, founder


def new_invite_secret() -> str:
    return secrets.token_urlsafe(32)


def _invite_signing_key(secret: str) -> Ed25519PrivateKey:
    # The secret has 256 bits of entropy: one hash makes a uniform Ed25519 seed.
    seed = hashlib.sha256(_INVITE_KEY_CONTEXT + secret.encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def invite_public_key(secret: str) -> bytes:
    return _invite_signing_key(secret).public_key().public_bytes_raw()


def invite_key_id(invite_public: bytes) -> str:
    """What the founder stores of an invite: a hash of its public key."""
    return hashlib.sha256(_INVITE_ID_CONTEXT + invite_public).hexdigest()


def invite_mailbox(invite_public: bytes) -> str:
    """The relay mailbox (broker username) of whoever joins with this invite."""
    return "h-" + hashlib.sha256(_MAILBOX_CONTEXT + invite_public).hexdigest()[:20]


def _join_message(federation_id: str, member: dict[str, Any]) -> bytes:
    return _JOIN_CONTEXT + canonical_json({"federation": federation_id, "member": member})


def join_proof(secret: str, federation_id: str, member: dict[str, Any]) -> dict[str, str]:
    """The join body's proof of the invite, bound to exactly this member record."""
    key = _invite_signing_key(secret)
    return {"invite": b64url_encode(key.public_key().public_bytes_raw()),
            "proof": b64url_encode(key.sign(_join_message(federation_id, member)))}


def check_join_proof(body: Any, federation_id: str, member: dict[str, Any]) -> bytes:
    """The invite public key a join body proves, for exactly ``member``; InvalidInviteError
    if the proof is missing or does not verify."""
    try:
        public = b64url_decode(body["invite"])
        Ed25519PublicKey.from_public_bytes(public).verify(
            b64url_decode(body["proof"]), _join_message(federation_id, member))
    except (KeyError, TypeError, ValueError, InvalidSignature):
        raise InvalidInviteError("the join does not prove an invite for this member "
                                 "record (invite and proof)") from None
    return public


def new_api_token() -> str:
    """A bearer token for the local API (256 bits from ``secrets``)."""
    return secrets.token_urlsafe(32)


def make_invite(
    founder_url: str | None,
    founder_fingerprint: str,
    federation_id: str,
    ttl_s: int,
    *,
    now: float | None = None,
    secret: str | None = None,
    relay: dict[str, str] | None = None,
) -> tuple[str, str, float]:
    """Create an invite; returns (token for the joiner, invite key id to store, expiry)."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= 0:
        raise ValueError(f"invite lifetime must be a positive number of seconds, got {ttl_s!r}")
    secret = secret or new_invite_secret()
    expires_at = (time.time() if now is None else now) + ttl_s
    fields = {
        "url": founder_url,
        "fingerprint": founder_fingerprint,
        "federation": federation_id,
        "secret": secret,
        "expires_at": expires_at,
    }
    if relay is not None:
        fields["relay"] = relay
    _validate(fields, ValueError)
    token = INVITE_PREFIX + b64url_encode(canonical_json(fields))
    return token, invite_key_id(invite_public_key(secret)), expires_at


def parse_invite(token: str, *, now: float | None = None) -> Invite:
    """Decode an invite token; InvalidInviteError says what is wrong with it."""
    if not isinstance(token, str):
        raise InvalidInviteError("invite token must be text")
    token = token.strip()  # pasted tokens often carry a newline
    if not token.startswith(INVITE_PREFIX):
        raise InvalidInviteError(
            f"not a Hearth invite token: it should start with {INVITE_PREFIX!r}; "
            "copy the whole token from the founder's hub"
        )
    try:
        fields = json.loads(b64url_decode(token[len(INVITE_PREFIX) :]))
    except ValueError:
        raise InvalidInviteError(
            "invite token is damaged (not valid base64url JSON); it was probably cut "
            "short when copied: copy the whole token again"
        ) from None
    _validate(fields, InvalidInviteError)
    if (time.time() if now is None else now) >= fields["expires_at"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(fields["expires_at"]))
        raise InviteExpiredError(f"invite expired at {when}; ask the founder for a new one")
    return Invite(
        founder_url=fields["url"],
        founder_fingerprint=fields["fingerprint"],
        federation_id=fields["federation"],
        secret=fields["secret"],
        expires_at=float(fields["expires_at"]),
        relay=fields.get("relay"),
    )


def _validate(fields: Any, error: type[Exception]) -> None:
    if not isinstance(fields, dict) or fields.keys() - {"relay"} != _FIELDS:
        got = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
        raise error(f"invite must have fields {sorted(_FIELDS)}, got {got}")
    relay = fields.get("relay")
    if relay is not None:
        _validate_relay(relay, error)
    for name in ("fingerprint", "federation", "secret"):
        if not isinstance(fields[name], str) or not fields[name]:
            raise error(f"invite field {name!r} must be a non-empty string")
    if fields["url"] is not None or relay is None:  # behind a relay the founder has no URL
        try:
            url = urlsplit(fields["url"])
            host = url.hostname
        except (ValueError, TypeError, AttributeError):
            host = None
        if host is None or url.scheme not in ("http", "https"):
            raise error(f"invite founder URL {fields['url']!r} must be an http(s) URL with "
                        "a host")
    if not _FINGERPRINT.fullmatch(fields["fingerprint"]):
        raise error(
            f"invite fingerprint {fields['fingerprint']!r} is not a Hearth key fingerprint "
            "(8 groups of 4 characters A-Z, 2-7)"
        )
    expires = fields["expires_at"]
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise error("invite field 'expires_at' must be a Unix time")
    if not math.isfinite(expires):
        raise error("invite field 'expires_at' must be finite")


def _validate_relay(relay: Any, error: type[Exception]) -> None:
    if not isinstance(relay, dict) or not _RELAY_FIELDS <= relay.keys() <= _RELAY_FIELDS | {"ca"}:
        raise error(f"invite field 'relay' must have fields {sorted(_RELAY_FIELDS)} and "
                    "optionally 'ca'")
    for name, value in relay.items():
        if not isinstance(value, str) or not value:
            raise error(f"invite relay field {name!r} must be a non-empty string")
