"""The node identity: an Ed25519 signing key and an HPKE key, kept in one file.

One file, so an identity is created or not, never half; both secrets are
32-byte seeds from ``secrets``. The file is written with O_EXCL at mode 0600,
fsynced, and hard-linked into place: the link is atomic like a rename but never
replaces an existing identity, so two processes racing through first start end
up with the same keys.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .encoding import b64url_decode, b64url_encode, canonical_json
from .errors import CorruptKeyFileError, InsecureKeyFileError, MissingKeysError
from .sealing import SEED_BYTES, default_suite, open_sealed, private_key_from_seed

KEY_FILE_NAME = "node_identity.json"
_FORMAT = "hearth-node-identity/v1"
_FINGERPRINT_CONTEXT = b"hearth/fingerprint/v1\x00"
_MAX_KEY_FILE_BYTES = 64 * 1024


def node_id_of(signing_public: bytes) -> str:
    """A node's id: hex of the first 16 bytes of sha256(Ed25519 public key)."""
    return hashlib.sha256(signing_public).digest()[:16].hex()


def fingerprint_of(signing_public: bytes, hpke_suite: str, hpke_public: bytes) -> str:
    """Human-comparable digest of both public keys, e.g. ``ABCD-EFGH-...`` (8 groups).

    160 bits of sha256, base32 so it reads aloud without 0/O or 1/l confusion.
    A joiner compares it with the one in the invite before trusting the founder.
    """
    digest = hashlib.sha256(
        _FINGERPRINT_CONTEXT + signing_public + hpke_suite.encode("ascii") + b"\x00" + hpke_public
    ).digest()
    text = base64.b32encode(digest[:20]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


class NodeKeys:
    """This node's private keys and the public values peers need.

    Public: ``node_id``, ``signing_public`` (32 raw bytes), ``hpke_public``,
    ``hpke_suite``, ``fingerprint``. Secrets never leave the object except to
    be written to the key file.
    """

    __slots__ = (
        "_hpke_private",
        "_hpke_seed",
        "_signing",
        "fingerprint",
        "hpke_public",
        "hpke_suite",
        "node_id",
        "signing_public",
    )

    def __init__(self, signing_seed: bytes, hpke_suite: str, hpke_seed: bytes) -> None:
        if len(signing_seed) != 32:
            raise ValueError(f"Ed25519 seed must be 32 bytes, got {len(signing_seed)}")
        self._signing = Ed25519PrivateKey.from_private_bytes(signing_seed)
        self._hpke_private, self.hpke_public = private_key_from_seed(hpke_suite, hpke_seed)
        self._hpke_seed = bytes(hpke_seed)
        self.hpke_suite = hpke_suite
        self.signing_public = self._signing.public_key().public_bytes_raw()
        self.node_id = node_id_of(self.signing_public)
        self.fingerprint = fingerprint_of(self.signing_public, hpke_suite, self.hpke_public)

    @classmethod
    def generate(cls, hpke_suite: str | None = None) -> NodeKeys:
        """Fresh in-memory keys (the hybrid suite unless another is asked for)."""
        return cls(
            secrets.token_bytes(32), hpke_suite or default_suite(), secrets.token_bytes(SEED_BYTES)
        )

    def sign(self, data: bytes) -> bytes:
        """Raw Ed25519 signature (64 bytes). Callers prefix their own domain string."""
        return self._signing.sign(data)

    def open_share(self, ciphertext: bytes, aad: bytes) -> bytes:
        """Open a share sealed to this node; DecryptionError unless it authenticates."""
        return open_sealed(self._hpke_private, self.hpke_suite, ciphertext, aad)

    def _file_record(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "signing_key": b64url_encode(self._signing.private_bytes_raw()),
            "hpke_suite": self.hpke_suite,
            "hpke_key": b64url_encode(self._hpke_seed),
        }

    def __repr__(self) -> str:
        return f"NodeKeys(node_id={self.node_id!r}, hpke_suite={self.hpke_suite!r})"


def key_file_path(data_dir: Path) -> Path:
    """Where the identity of the node using ``data_dir`` lives."""
    return Path(data_dir) / KEY_FILE_NAME


def load_keys(data_dir: Path) -> NodeKeys:
    """Load the identity; refuse a missing, foreign-readable or corrupt key file."""
    path = key_file_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingKeysError(
            f"no node identity in {data_dir}; run: mpc-backend init --data-dir {data_dir}"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            what = "readable" if mode & 0o044 else "writable"
            raise InsecureKeyFileError(
                f"key file {path} is {what} by other users (mode {mode:04o}); run: chmod 600 {path}"
            )
        if not stat.S_ISREG(info.st_mode):
            raise CorruptKeyFileError(f"key file {path} is not a regular file")
        raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
    return _parse_key_file(path, raw)


def _parse_key_file(path: Path, raw: bytes) -> NodeKeys:
    try:
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise ValueError("file is too large")
        record = json.loads(raw)
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise ValueError(f"format is not {_FORMAT!r}")
        return NodeKeys(
            b64url_decode(record["signing_key"]),
            record["hpke_suite"],
            b64url_decode(record["hpke_key"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        # UnsupportedSuiteError is a ValueError too: its text says what to install.
        raise CorruptKeyFileError(
            f"key file {path} is not a usable Hearth identity ({err}); restore it from "
            f"a backup, or move it away and run mpc-backend init to create a new "
            f"identity (the federation must then re-admit this hub)"
        ) from None


def load_or_create_keys(data_dir: Path, *, hpke_suite: str | None = None) -> NodeKeys:
    """Load the identity in ``data_dir``, creating it (and the dir, 0700) on first use.

    ``hpke_suite`` only applies when a new identity is created.
    """
    try:
        return load_keys(data_dir)
    except MissingKeysError:
        pass
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = NodeKeys.generate(hpke_suite)
    path = key_file_path(data_dir)
    tmp = data_dir / f".{KEY_FILE_NAME}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(canonical_json(keys._file_record()) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return load_keys(data_dir)  # another process created it first; use theirs
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(data_dir)
    return keys


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable; some filesystems cannot fsync a dir.
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
