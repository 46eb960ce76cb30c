"""Channels: a household's shares to one committee member without public-key work per report.

A household (the sender) and a member (the receiver) agree a 32-byte secret once:
the sender draws it from ``secrets``, HPKE-seals it to the member's roster key and
sends it in a signed ``channel`` offer (``offer_aad`` binds federation, both ids,
the channel id and its expiry, so an offer opens for exactly that channel). Keys
are derived from the secret with HKDF-SHA256 under the same context, one per use:

* ``share``: ChaCha20-Poly1305 over each share, with a random 96-bit nonce and the
  share context (federation, task, round, sender, recipient) as AAD, like an HPKE
  share; the sealed bytes start with the channel id, so a share names its key;
* ``request``: HMAC-SHA256 over the same request fields an Ed25519 request
  signature covers (path, time, body digest), sent in its place;
* ``answer``: HMAC-SHA256 over the member's ack of exactly the shares it stored;
* ``relay_request`` / ``relay_answer``: through the relay, ChaCha20-Poly1305 over the
  request's body and over the answer, each with the relay's own context as AAD
  (``mpc_backend.relay.sealed``), in place of an HPKE seal to either end.

Only the two ends know the secret, so a MAC convinces the other end (not a third
party: neither end's MAC is evidence against it, and none is needed: an ack only
tells the household it may stop resending). A member could forge a household's
share to itself, which it can do today by misreporting what it holds; the
validity checks at close treat both alike. Channels expire (at most
``MAX_LIFETIME_S`` after the offer), after which the member refuses them and
forgets the secret. Opening an offer costs the member one HPKE open and one
signature check, as one report did before; every report after it costs a few
microseconds of symmetric work.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .encoding import canonical_json
from .errors import DecryptionError

OFFER_CONTEXT = b"hearth/channel-offer/v1\x00"
KEY_CONTEXT = b"hearth/channel/v1\x00"
REQUEST_CONTEXT = b"hearth/channel-request/v1\x00"
ACK_CONTEXT = b"hearth/channel-ack/v1\x00"
CHANNEL_HEADER = "Hearth-Channel"
SECRET_BYTES = 32
ID_BYTES = 16
NONCE_BYTES = 12
MAX_LIFETIME_S = 2 * 86_400
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Channel:
    """One end's view of a channel: who, which, until when, and its derived keys."""

    federation: str
    sender: str
    receiver: str
    channel: str
    expires: int
    share_key: bytes
    request_key: bytes
    answer_key: bytes
    relay_request_key: bytes
    relay_answer_key: bytes

    def __repr__(self) -> str:  # never print keys
        return (f"Channel({self.sender} -> {self.receiver}, {self.channel}, "
                f"expires {self.expires})")


def new_channel_id() -> str:
    return secrets.token_hex(ID_BYTES)


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def valid_id(channel: object) -> bool:
    return isinstance(channel, str) and _ID.fullmatch(channel) is not None


def _context(federation: str, sender: str, receiver: str, channel: str, expires: int) -> bytes:
    return canonical_json({"federation": federation, "sender": sender, "receiver": receiver,
                           "channel": channel, "expires": expires})


def offer_aad(federation: str, sender: str, receiver: str, channel: str, expires: int) -> bytes:
    """What the HPKE seal of an offer's secret is bound to."""
    return OFFER_CONTEXT + _context(federation, sender, receiver, channel, expires)


def derive(secret: bytes, federation: str, sender: str, receiver: str, channel: str,
           expires: int) -> Channel:
    """Both ends' keys for this channel; ValueError unless the secret is 32 bytes."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a channel secret is {SECRET_BYTES} bytes, got {len(secret)}")
    okm = HKDF(algorithm=hashes.SHA256(), length=160, salt=None,
               info=KEY_CONTEXT + _context(federation, sender, receiver, channel, expires),
               ).derive(secret)
    keys = [okm[i:i + 32] for i in range(0, 160, 32)]
    return Channel(federation, sender, receiver, channel, expires, *keys)


def aead_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || ChaCha20-Poly1305(plaintext, aad), with a random 96-bit nonce."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def aead_open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of ``aead_seal``; DecryptionError if it does not open for ``aad``."""
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionError("does not open under this channel for this context") from None


def seal(channel: Channel, plaintext: bytes, aad: bytes) -> bytes:
    """channel id (16 bytes) || nonce || ChaCha20-Poly1305(plaintext, aad)."""
    return bytes.fromhex(channel.channel) + aead_seal(channel.share_key, plaintext, aad)


def sealed_channel_id(ciphertext: bytes) -> str | None:
    """The channel a sealed share names, or None if it is too short to be one."""
    if len(ciphertext) < ID_BYTES + NONCE_BYTES + 16:
        return None
    return ciphertext[:ID_BYTES].hex()


def open_sealed(channel: Channel, ciphertext: bytes, aad: bytes) -> bytes:
    """The plaintext; DecryptionError if it is not sealed under this channel for ``aad``."""
    if sealed_channel_id(ciphertext) != channel.channel:
        raise DecryptionError("share is not sealed under the channel its request names")
    try:
        return aead_open(channel.share_key, ciphertext[ID_BYTES:], aad)
    except DecryptionError:
        raise DecryptionError(
            "share does not open under its channel for this context (tampered, or sealed "
            "for another task, round, sender or recipient)") from None


def request_mac(channel: Channel, path: str, ts: int, body_digest: bytes) -> bytes:
    data = (REQUEST_CONTEXT + path.encode() + b"\x00" + str(ts).encode() + b"\x00"
            + body_digest)
    return hmac.new(channel.request_key, data, hashlib.sha256).digest()


def check_request_mac(channel: Channel, path: str, ts: int, body_digest: bytes,
                      mac: bytes) -> bool:
    return hmac.compare_digest(request_mac(channel, path, ts, body_digest), mac)


def ack_mac(channel: Channel, ack: dict[str, object]) -> bytes:
    return hmac.new(channel.answer_key, ACK_CONTEXT + canonical_json(ack),
                    hashlib.sha256).digest()


def check_ack_mac(channel: Channel, ack: dict[str, object], mac: bytes) -> bool:
    return hmac.compare_digest(ack_mac(channel, ack), mac)
