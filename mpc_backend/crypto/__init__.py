"""Node identity, HPKE share sealing, signed envelopes and invite tokens.

Everything secret comes from ``secrets``; everything signed is canonical JSON
under a domain string (``hearth/msg/v1``, ``hearth/share/v1``).
"""

from .encoding import b64url_decode, b64url_encode, canonical_json
from .envelope import sign_envelope, verify_envelope, verify_signature
from .errors import (
    AuthError,
    BadSignatureError,
    CorruptKeyFileError,
    CryptoError,
    DecryptionError,
    InsecureKeyFileError,
    InvalidInviteError,
    InviteExpiredError,
    KeyFileError,
    MalformedEnvelopeError,
    MissingKeysError,
    StaleMessageError,
    UnknownSenderError,
    UnsupportedSuiteError,
    WrongContextError,
)
from .keys import (
    KEY_FILE_NAME,
    NodeKeys,
    fingerprint_of,
    key_file_path,
    load_keys,
    load_or_create_keys,
    node_id_of,
)
from .sealing import (
    SUITE_HYBRID,
    SUITE_X25519,
    available_suites,
    default_suite,
    seal_share,
    share_aad,
)
from .tokens import (
    INVITE_PREFIX,
    Invite,
    check_join_proof,
    invite_key_id,
    invite_mailbox,
    invite_public_key,
    join_proof,
    make_invite,
    new_api_token,
    new_invite_secret,
    parse_invite,
)

__all__ = [
    "INVITE_PREFIX",
    "KEY_FILE_NAME",
    "SUITE_HYBRID",
    "SUITE_X25519",
    "AuthError",
    "BadSignatureError",
    "CorruptKeyFileError",
    "CryptoError",
    "DecryptionError",
    "InsecureKeyFileError",
    "InvalidInviteError",
    "Invite",
    "InviteExpiredError",
    "KeyFileError",
    "MalformedEnvelopeError",
    "MissingKeysError",
    "NodeKeys",
    "StaleMessageError",
    "UnknownSenderError",
    "UnsupportedSuiteError",
    "WrongContextError",
    "available_suites",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "check_join_proof",
    "default_suite",
    "fingerprint_of",

    "invite_key_id",
    "invite_mailbox",
    "invite_public_key",
    "join_proof",
    "key_file_path",
    "load_keys",
    "load_or_create_keys",
    "make_invite",
    "new_api_token",
    "new_invite_secret",
    "node_id_of",
    "parse_invite",
    "seal_share",
    "share_aad",
    "sign_envelope",
    "verify_envelope",
    "verify_signature",
]
