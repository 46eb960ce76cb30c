"""Invite tokens, API tokens and how their secrets are stored.

An invite is ``hearth-invite-v1.`` + base64url(canonical JSON) carrying the
founder's URL, the fingerprint of the founder's keys (so the joiner can tell it
reached the real founder), the federation id, a one-time secret and an expiry.
In a relay federation it also carries ``relay``: the broker's URL and CA, the
founder's mailbox and the broker account the founder provisioned for the
joiner, whose username (its mailbox) is derived from the secret
(``invite_mailbox``), so the founder knows which mailbox a join may claim.
The founder's URL is then null: it takes no inbound connection.
The token is self-describing but not signed: what it proves is knowledge of
the secret, and the founder keeps only ``hash_secret(secret)``, so a leaked
founder database admits nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .encoding import b64url_decode, b64url_encode, canonical_json
from .errors import InvalidInviteError

INVITE_PREFIX = "hearth-invite-v1."
_SECRET_CONTEXT = b"hearth/secret/v1\x00"
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


def invite_mailbox(secret: str) -> str:
    """The relay mailbox (broker username) of whoever joins with this invite secret."""
    return "h-" + hashlib.sha256(_MAILBOX_CONTEXT + secret.encode("utf-8")).hexdigest()[:20]


def hash_secret(secret: str) -> str:
    """Hex sha256 of a high-entropy secret (a plain hash suffices at 256 bits)."""
    return hashlib.sha256(_SECRET_CONTEXT + secret.encode("utf-8")).hexdigest()


def check_secret(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` matches a stored hash_secret value, in constant time."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)


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
    """Create an invite; returns (token for the joiner, secret hash to store, expiry)."""
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
    return INVITE_PREFIX + b64url_encode(canonical_json(fields)), hash_secret(secret), expires_at


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
        raise InvalidInviteError(f"invite expired at {when}; ask the founder for a new one")
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
