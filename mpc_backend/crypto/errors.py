"""Errors raised by the crypto layer.

Two families, because callers react differently: an ``AuthError`` means a peer's
message must be rejected (answer 4xx, log, move on); a ``KeyFileError`` means
this node cannot start until its operator fixes the data dir, so the message says
exactly what to run.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Root of every error this package raises."""


class AuthError(CryptoError):
    """A message or ciphertext failed authentication; reject it."""


class UnknownSenderError(AuthError):
    """The sender is not in the federation roster."""


class BadSignatureError(AuthError):
    """The signature does not verify (tampered message or wrong key)."""


class StaleMessageError(AuthError):
    """The message timestamp is outside the accepted window (replay or clock skew)."""


class WrongContextError(AuthError):
    """The message is authentic but meant for another type or federation."""


class MalformedEnvelopeError(AuthError):
    """The envelope does not have the required fields and types."""


class DecryptionError(AuthError):
    """A sealed share did not open: tampered, wrong context (AAD) or wrong recipient."""


class UnsupportedSuiteError(CryptoError, ValueError):
    """An HPKE suite is unknown, or not available in this cryptography build."""


class KeyFileError(CryptoError):
    """The node identity on disk cannot be used."""


class MissingKeysError(KeyFileError):
    """No node identity exists in the data dir yet."""


class InsecureKeyFileError(KeyFileError):
    """The key file is readable by other users."""


class CorruptKeyFileError(KeyFileError):
    """The key file exists but does not hold a valid identity."""


class InvalidInviteError(CryptoError, ValueError):
    """An invite token is malformed or expired."""


class InviteExpiredError(InvalidInviteError):
    """A well-formed invite token past its expiry (written in the token itself)."""
