"""HPKE sealing of shares to one committee member (RFC 9180, base mode).

Suite: KEM MLKEM768-X25519 (X-Wing, HPKE KEM id 0x647A) where this cryptography
build has ML-KEM, else DHKEM(X25519); always HKDF-SHA256 and ChaCha20-Poly1305.

* Hybrid KEM: shares are recorded by whoever relays them; the ML-KEM half keeps
  them private against a future quantum adversary, the X25519 half keeps them
  private if ML-KEM is ever broken.
* HKDF-SHA256: the KDF every HPKE implementation ships and the one the
  hpke-pq drafts pair with MLKEM768-X25519.
* ChaCha20-Poly1305: a 256-bit key (AES-128's margin halves under Grover), and
  fast, constant-time software on hub CPUs without AES instructions (Raspberry
  Pi 4 / CM4). Plaintexts are a few hundred bytes, so AES-NI would save < 1 µs.

The share context (federation, task, round, sender, recipient) is passed as HPKE
``info``: cryptography's single-shot API has no separate AAD, and RFC 9180 §8.1
says single-shot users carry authenticated context in ``info``. It feeds the key
schedule, so a share replayed into another context derives a different key and
fails to open.

Private keys are 32-byte seeds. The hybrid seed is the X-Wing decapsulation key
(draft-connolly-cfrg-xwing-kem): SHAKE256(seed, 96) gives the ML-KEM-768 seed
(d || z) and the X25519 scalar, so the key file is the standard, portable form.
Public keys: X25519 raw (32 bytes); hybrid ML-KEM-768 key || X25519 key (1216).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import x25519

from .errors import DecryptionError, UnsupportedSuiteError

try:
    from cryptography.hazmat.primitives import hpke
except ImportError:  # cryptography < 47
    hpke = None  # type: ignore[assignment]

SUITE_HYBRID = "MLKEM768-X25519"
SUITE_X25519 = "X25519"
SHARE_CONTEXT = "hearth/share/v1"
_AAD_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
SEED_BYTES = 32
PUBLIC_BYTES = {SUITE_X25519: 32, SUITE_HYBRID: 1184 + 32}

_UPGRADE_HINT = "install cryptography >= 47 (pip install 'cryptography>=47')"


@functools.cache
def available_suites() -> tuple[str, ...]:
    """HPKE suites this cryptography build supports, preferred first."""
    if hpke is None:
        return ()
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

        mlkem.MLKEM768PrivateKey.generate()
    except (ImportError, UnsupportedAlgorithm):
        # e.g. a distro build against OpenSSL without ML-KEM.
        return (SUITE_X25519,)
    return (SUITE_HYBRID, SUITE_X25519)


def default_suite() -> str:
    """The suite new identities get: the hybrid one when available."""
    suites = available_suites()
    if not suites:
        raise UnsupportedSuiteError(f"this cryptography build has no HPKE; {_UPGRADE_HINT}")
    return suites[0]


def _require(suite: str) -> None:
    if suite not in PUBLIC_BYTES:
        raise UnsupportedSuiteError(
            f"unknown HPKE suite {suite!r}; expected one of {sorted(PUBLIC_BYTES)}"
        )
    if suite not in available_suites():
        hint = _UPGRADE_HINT if hpke is None else "use a cryptography build with ML-KEM support"
        raise UnsupportedSuiteError(f"HPKE suite {suite} is not available here; {hint}")


@functools.cache
def _suite(suite: str) -> Any:
    kem = hpke.KEM.MLKEM768_X25519 if suite == SUITE_HYBRID else hpke.KEM.X25519
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def private_key_from_seed(suite: str, seed: bytes) -> tuple[Any, bytes]:
    """Expand a 32-byte seed into (HPKE private key object, public key bytes)."""
    _require(suite)
    if len(seed) != SEED_BYTES:
        raise ValueError(f"HPKE seed must be {SEED_BYTES} bytes, got {len(seed)}")
    if suite == SUITE_X25519:
        key = x25519.X25519PrivateKey.from_private_bytes(seed)
        return key, key.public_key().public_bytes_raw()
    from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

    expanded = hashlib.shake_256(seed).digest(96)
    mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    x_key = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    public = mlkem_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes_raw()
    return hpke.MLKEM768X25519PrivateKey(mlkem_key, x_key), public


@functools.lru_cache(maxsize=256)
def _public_key(suite: str, public: bytes) -> Any:
    # Cached: a sender seals to the same few committee members every round, and
    # parsing an ML-KEM key costs about as much as the X25519 half of a seal.
    _require(suite)
    if len(public) != PUBLIC_BYTES[suite]:
        raise ValueError(
            f"{suite} public key must be {PUBLIC_BYTES[suite]} bytes, got {len(public)}"
        )
    if suite == SUITE_X25519:
        return x25519.X25519PublicKey.from_public_bytes(public)
    from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

    return hpke.MLKEM768X25519PublicKey(
        mlkem.MLKEM768PublicKey.from_public_bytes(public[:1184]),
        x25519.X25519PublicKey.from_public_bytes(public[1184:]),
    )


def share_aad(
    federation_id: str, task_id: str, round_id: int, sender_id: str, recipient_id: str
) -> bytes:
    """The context a share is sealed to, as canonical bytes under ``hearth/share/v1``."""
    for name, value in (
        ("federation_id", federation_id),
        ("task_id", task_id),
        ("sender_id", sender_id),
        ("recipient_id", recipient_id),
    ):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
        raise ValueError(f"round_id must be a non-negative integer, got {round_id!r}")
    # canonical_json's bytes, its keys written in sorted order: the values are checked
    # above, and this runs once per share on both sides.
    return _AAD_JSON.encode({
        "ctx": SHARE_CONTEXT,
        "federation": federation_id,
        "recipient": recipient_id,
        "round": round_id,
        "sender": sender_id,
        "task": task_id,
    }).encode()


def seal_share(recipient_hpke_public: bytes, suite: str, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` to the recipient, bound to ``aad`` (see share_aad).

    Returns the HPKE encapsulated key followed by the AEAD ciphertext.
    Raises ValueError for a malformed public key, UnsupportedSuiteError for a
    suite this build cannot use.
    """
    public = _public_key(suite, bytes(recipient_hpke_public))
    return _suite(suite).encrypt(plaintext, public, info=aad)


def open_sealed(private_key: Any, suite: str, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt a seal_share ciphertext; DecryptionError if it does not authenticate."""
    try:
        return _suite(suite).decrypt(ciphertext, private_key, info=aad)
    except (InvalidTag, ValueError):
        raise DecryptionError(
            "share did not decrypt: it was tampered with, sealed for another "
            "federation/task/round/sender, or sealed to a different node"
        ) from None
