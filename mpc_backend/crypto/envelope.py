"""Signed message envelopes between federation members.

An envelope is ``{"type", "federation", "sender", "ts", "nonce", "body", "sig"}``.
The Ed25519 signature covers ``hearth/msg/v1\\0`` followed by the canonical JSON
of every other field, so a body cannot be replayed under another message type,
federation, sender or time. ``ts`` is whole Unix seconds; ``nonce`` is 128 random
bits. Verification enforces the age window; rejecting a nonce seen before
within that window is the node's job, since only it has storage.

A peer HTTP request is also signed as a whole (``sign_request``), over
``hearth/peer-request/v1\\0``, the request path, the time and the SHA-256 of
the exact body bytes: the receiver checks that before it reads the body, so
only a member's key can make a node read, hash or parse anything large.
Where that request signature (or a channel MAC in its place) has already
authenticated the exact bytes of an envelope as its sender's,
``check_authenticated_envelope`` makes every check but the envelope's own
signature, which would prove the same thing a second time; a household's shares
over a channel carry none (``request_envelope``).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .encoding import b64url_decode, b64url_encode, canonical_json, check_json
from .errors import (
    BadSignatureError,
    MalformedEnvelopeError,
    StaleMessageError,
    UnknownSenderError,
    WrongContextError,
)
from .keys import NodeKeys

MESSAGE_CONTEXT = b"hearth/msg/v1\x00"
REQUEST_CONTEXT = b"hearth/peer-request/v1\x00"
_FIELD_TYPES: dict[str, type] = {
    "type": str,
    "federation": str,
    "sender": str,
    "ts": int,
    "nonce": str,
    "body": dict,
    "sig": str,
}
_NONCE = re.compile(r"[0-9a-f]{32}")


def _signed_bytes(envelope: dict[str, Any]) -> bytes:
    return MESSAGE_CONTEXT + canonical_json({k: v for k, v in envelope.items() if k != "sig"})


def sign_envelope(
    keys: NodeKeys,
    msg_type: str,
    federation_id: str,
    body: dict[str, Any],
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Wrap ``body`` in an envelope signed by ``keys``.

    The body is copied through canonical JSON, so the envelope holds exactly what
    a receiver will parse (tuples become lists) and later edits to ``body`` by
    the caller cannot invalidate the signature.
    """
    canonical = canonical_json(body)
    envelope = _fields(keys.node_id, msg_type, federation_id, now)
    # "body" sorts first among the fields: splice its canonical bytes in, not encode it twice.
    rest = canonical_json(envelope)
    signed = MESSAGE_CONTEXT + b'{"body":' + canonical + b"," + rest[1:]
    envelope["body"] = json.loads(canonical)
    envelope["sig"] = b64url_encode(keys.sign(signed))
    return envelope


def request_envelope(
    sender: str,
    msg_type: str,
    federation_id: str,
    body: dict[str, Any],
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """An envelope with an empty ``sig``, for a request authenticated as a whole by a
    channel MAC (``mpc_backend.crypto.channel``) or by the request's signature: only
    ``check_authenticated_envelope`` accepts it, which the peer API reaches only once that
    has checked out. ``body`` is carried as given (no canonical copy: the MAC or signature
    covers the request's bytes, not a form of them), once checked to be JSON the receiver
    reads as the sender meant."""
    check_json(body)
    return {**_fields(sender, msg_type, federation_id, now), "body": body, "sig": ""}


def _fields(sender: str, msg_type: str, federation_id: str,
            now: float | None) -> dict[str, Any]:
    """An envelope's fields but its body and signature."""
    return {
        "type": msg_type,
        "federation": federation_id,
        "sender": sender,
        "ts": int(time.time() if now is None else now),
        "nonce": secrets.token_hex(16),
    }


def verify_signature(public: bytes, data: bytes, sig: bytes) -> None:
    """Check a raw Ed25519 signature; BadSignatureError if it does not verify."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, data)
    except ValueError:
        raise BadSignatureError(
            f"not an Ed25519 public key: expected 32 bytes, got {len(public)}"
        ) from None
    except InvalidSignature:
        raise BadSignatureError("signature does not verify") from None


def _request_bytes(path: str, ts: int, body_digest: bytes) -> bytes:
    return REQUEST_CONTEXT + path.encode() + b"\x00" + str(ts).encode() + b"\x00" + body_digest


def sign_request(keys: NodeKeys, path: str, ts: int, body_digest: bytes) -> bytes:
    """Signature of a peer request: ``path`` at ``ts`` with body SHA-256 ``body_digest``."""
    return keys.sign(_request_bytes(path, ts, body_digest))


def verify_request(public: bytes, path: str, ts: int, body_digest: bytes, sig: bytes) -> None:
    """BadSignatureError unless ``sig`` is ``sign_request`` of these by ``public``'s owner."""
    verify_signature(public, _request_bytes(path, ts, body_digest), sig)


def verify_envelope(
    envelope: Any,
    lookup_public: Callable[[str], bytes | None],
    expected_type: str,
    federation_id: str,
    max_age_s: float = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Return the body of an authentic, fresh envelope for this context.

    ``lookup_public`` maps a node id to its roster signing key (None if not a
    member). Messages up to ``max_age_s`` old, or that far ahead for clock skew,
    are accepted. Raises (all AuthError): MalformedEnvelopeError,
    WrongContextError, UnknownSenderError, BadSignatureError, StaleMessageError.
    """
    _check_context(envelope, expected_type, federation_id)
    sender = envelope["sender"]
    public = lookup_public(sender)
    if public is None:
        raise UnknownSenderError(f"sender {sender} is not a member of federation {federation_id}")
    try:
        sig = b64url_decode(envelope["sig"])
    except ValueError as err:
        raise BadSignatureError(f"signature from {sender} is not base64url: {err}") from None
    try:
        signed = _signed_bytes(envelope)
    except (ValueError, RecursionError) as err:
        # json.loads accepts NaN and any depth; such a body was never signed by us.
        raise MalformedEnvelopeError(
            f"message from {sender} cannot be canonicalised: {err}"
        ) from None
    try:
        verify_signature(public, signed, sig)
    except BadSignatureError as err:
        raise BadSignatureError(f"{expected_type} message from {sender}: {err}") from None
    _check_age(envelope, expected_type, max_age_s, now)
    return envelope["body"]


def check_authenticated_envelope(
    envelope: Any,
    sender: str,
    expected_type: str,
    federation_id: str,
    max_age_s: float = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """The body of an envelope whose exact bytes ``sender`` has already been proven to
    have signed; the same AuthErrors as ``verify_envelope``, the envelope's ``sig`` unread.

    For a peer request: its signature (``verify_request``, checked against ``sender``'s
    key before the body was read) covers the path, the time and the SHA-256 of these
    bytes, so checking the envelope's signature too would only prove again that
    ``sender`` wrote them. What that signature binds (type, federation, sender, time) is
    checked here against the envelope's fields, and the envelope must name ``sender``:
    a member cannot pass its own request off as carrying another member's message.
    """
    _check_context(envelope, expected_type, federation_id)
    if envelope["sender"] != sender:
        raise WrongContextError(
            f"{expected_type} message names sender {envelope['sender']}, but the request "
            f"carrying it is signed by {sender}"
        )
    _check_age(envelope, expected_type, max_age_s, now)
    return envelope["body"]


def _check_context(envelope: Any, expected_type: str, federation_id: str) -> None:
    _check_shape(envelope)
    if envelope["type"] != expected_type:
        raise WrongContextError(f"expected a {expected_type!r} message, got {envelope['type']!r}")
    if envelope["federation"] != federation_id:
        raise WrongContextError(
            f"message is for federation {envelope['federation']!r}, not {federation_id!r}"
        )


def _check_age(envelope: dict[str, Any], expected_type: str, max_age_s: float,
               now: float | None) -> None:
    sender = envelope["sender"]
    age = (time.time() if now is None else now) - envelope["ts"]
    if age > max_age_s:
        raise StaleMessageError(
            f"{expected_type} message from {sender} is {age:.0f} s old (limit {max_age_s:g} s):"
            " replayed or long delayed; check both hubs' clocks if this repeats"
        )
    if age < -max_age_s:
        raise StaleMessageError(
            f"{expected_type} message from {sender} is dated {-age:.0f} s in the future "
            f"(limit {max_age_s:g} s): a hub's clock is wrong; enable NTP on both"
        )


def _check_shape(envelope: Any) -> None:
    if not isinstance(envelope, dict):
        raise MalformedEnvelopeError(
            f"envelope must be a JSON object, got {type(envelope).__name__}"
        )
    missing = sorted(_FIELD_TYPES.keys() - envelope.keys())
    extra = sorted(envelope.keys() - _FIELD_TYPES.keys())
    if missing or extra:
        raise MalformedEnvelopeError(
            f"envelope fields wrong: missing {missing}, unexpected {extra}"
        )
    for field, expected in _FIELD_TYPES.items():
        value = envelope[field]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise MalformedEnvelopeError(
                f"envelope field {field!r} must be {expected.__name__}, got {type(value).__name__}"
            )
    if not _NONCE.fullmatch(envelope["nonce"]):
        raise MalformedEnvelopeError("envelope nonce must be 32 lowercase hex digits")
