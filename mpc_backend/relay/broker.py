"""A ready-to-run Mosquitto setup for a federation's relay: config, access control, TLS.

``write_broker_setup`` fills one directory with everything the broker needs:
``mosquitto.conf``, the dynamic-security plugin's ``dynamic-security.json`` (one
admin account, everything else denied), the persistence database once it runs,
and ``relay-admin.json`` for the federation's founder, who provisions one
account per member through the plugin's ``$CONTROL`` topic (``provision.py``).
The relay operator needs nothing but the broker: the admin password is hashed
here the way the plugin stores it, so neither ``mosquitto_ctrl`` nor a running
broker is needed to set up.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import pwd
import secrets
from dataclasses import dataclass
from pathlib import Path

from mpc_backend.node.config import is_loopback

from .endpoint import BrokerAccount, RelayEndpoint

CONFIG_NAME = "mosquitto.conf"
DYNSEC_NAME = "dynamic-security.json"
ADMIN_FILE_NAME = "relay-admin.json"
LOG_NAME = "mosquitto.log"

# Debian/Ubuntu (multiarch), Alpine and the eclipse-mosquitto image, source builds.
_PLUGIN_NAME = "mosquitto_dynamic_security.so"
_PLUGIN_GLOBS = ("/usr/lib/*-linux-gnu", "/usr/lib", "/usr/local/lib", "/usr/lib/mosquitto",
                 "/usr/local/lib/mosquitto", "/usr/lib64")

# Limits: a member offline for a round or two must find every message queued for it,
# and no member can make the broker hold unbounded memory or disk for it.
MAX_QUEUED_MESSAGES = 10_000
MAX_QUEUED_BYTES = 32 * 1024 * 1024
MAX_PACKET_SIZE = 8 * 1024 * 1024
AUTOSAVE_INTERVAL_S = 30
# The admin password is 192 random bits: key stretching adds nothing, so this is
# mosquitto's own default (what `mosquitto_ctrl dynsec init` writes).
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12  # dynsec refuses any other salt length


class BrokerSetupError(ValueError):
    """The relay broker cannot be set up as asked; the message says why."""


@dataclass(frozen=True)
class TlsFiles:
    """The broker's TLS certificate chain and key (PEM paths), and the CA certificate
    members must trust: None when a public CA signed it (e.g. Let's Encrypt)."""

    cert_path: Path
    key_path: Path
    ca_pem: str | None = None


@dataclass(frozen=True)
class BrokerSetup:
    """What ``write_broker_setup`` wrote and how to run it."""

    directory: Path
    config_path: Path
    dynsec_path: Path
    admin_file: Path
    endpoint: RelayEndpoint
    admin: BrokerAccount
    plugin: Path

    @property
    def command(self) -> list[str]:
        return ["mosquitto", "-c", str(self.config_path)]


def find_dynsec_plugin() -> Path:
    """The dynamic-security plugin shipped with the installed mosquitto."""
    for pattern in _PLUGIN_GLOBS:
        for candidate in sorted(Path("/").glob(f"{pattern.lstrip('/')}/{_PLUGIN_NAME}")):
            if candidate.is_file():
                return candidate
    raise BrokerSetupError(
        f"mosquitto's dynamic-security plugin ({_PLUGIN_NAME}) is not in "
        f"{', '.join(_PLUGIN_GLOBS)}; install mosquitto 2.x (Debian: apt install mosquitto) "
        f"or pass its path")


def relay_url(public_host: str, port: int, *, tls: bool) -> str:
    host = f"[{public_host}]" if ":" in public_host else public_host
    return f"{'mqtts' if tls else 'mqtt'}://{host}:{port}"


def check_broker_setup(
    directory: Path, *, public_host: str, port: int, tls: bool, plugin: Path | None = None,
) -> Path:
    """Raise BrokerSetupError (or RelayConfigError) if this setup cannot be written;
    returns the plugin to load."""
    if not 0 < port < 65536:
        raise BrokerSetupError(f"port {port} must be between 1 and 65535")
    if not public_host or any(c in public_host for c in "/@[] \t\n"):
        raise BrokerSetupError(f"public host {public_host!r} must be a host name or IP address")
    if not tls and not is_loopback(public_host):
        raise BrokerSetupError(
            f"{public_host} is not this machine: members would send their broker passwords "
            f"in clear; give the broker a TLS certificate")
    RelayEndpoint(relay_url(public_host, port, tls=tls))  # RelayConfigError if malformed
    if any(c.isspace() or c == "#" for c in str(Path(directory).absolute())):
        raise BrokerSetupError(f"{directory}: mosquitto.conf cannot name a path with spaces")
    if any((Path(directory) / n).exists() for n in (CONFIG_NAME, DYNSEC_NAME, ADMIN_FILE_NAME)):
        raise BrokerSetupError(f"{directory} already holds a relay setup; use another --dir")
    return Path(plugin) if plugin is not None else find_dynsec_plugin()


def write_broker_setup(
    directory: Path, *, public_host: str, port: int, listen_host: str = "0.0.0.0",  # noqa: S104
    tls: TlsFiles | None, plugin: Path | None = None,
) -> BrokerSetup:
    """Write a relay broker's whole setup into ``directory`` (created 0700).

    Everything is checked before the first file is written; an existing setup
    in ``directory`` is never overwritten.
    """
    directory = Path(directory).absolute()
    plugin = check_broker_setup(directory, public_host=public_host, port=port,
                                tls=tls is not None, plugin=plugin)
    if tls is not None:
        for path in (tls.cert_path, tls.key_path):
            if not Path(path).is_file():
                raise BrokerSetupError(f"TLS file {path} does not exist")
    endpoint = RelayEndpoint(relay_url(public_host, port, tls=tls is not None),
                             tls.ca_pem if tls else None)
    paths = [directory / n for n in (CONFIG_NAME, DYNSEC_NAME, ADMIN_FILE_NAME)]
    _private_dir(directory)
    admin = BrokerAccount(f"hearth-admin-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    config_path, dynsec_path, admin_file = paths
    write_private(dynsec_path, json.dumps(dynsec_config(admin.username, admin.password),
                                          indent=2) + "\n")
    write_private(config_path, mosquitto_conf(
        directory, plugin=plugin, dynsec_path=dynsec_path, listen_host=listen_host,
        port=port, tls=tls))
    write_private(admin_file, json.dumps(
        {**endpoint.to_dict(), "admin": admin.to_dict()}, indent=2) + "\n")
    return BrokerSetup(directory, config_path, dynsec_path, admin_file, endpoint, admin, plugin)


def mosquitto_conf(
    directory: Path, *, plugin: Path, dynsec_path: Path, listen_host: str, port: int,
    tls: TlsFiles | None,
) -> str:
    lines = [
        "# Hearth relay broker (mosquitto 2.x), written by `mpc-backend relay init`.",
        "# Members hold the keys: the broker only sees padded, signed, encrypted frames.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec_path}",
        "",
        # Started as root, mosquitto switches to user 'mosquitto' before it loads the
        # plugin; these 0600 files belong to the user who wrote them.
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        "",
        f"listener {port} {listen_host}",
        "protocol mqtt",
    ]
    if tls is not None:
        lines += [f"certfile {Path(tls.cert_path).absolute()}",
                  f"keyfile {Path(tls.key_path).absolute()}"]
    lines += [
        "",
        # Queued messages survive a restart (saved on SIGTERM) and, at most
        # AUTOSAVE_INTERVAL_S old, a crash.
        "persistence true",
        f"persistence_location {directory}",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        "persistent_client_expiration 7d",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        f"max_packet_size {MAX_PACKET_SIZE}",
        # Inboxes are queues: a retained frame would be replayed at every subscribe.
        "retain_available false",
        "set_tcp_nodelay true",
        "sys_interval 0",
        "",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    return "\n".join(lines) + "\n"


def dynsec_config(admin_username: str, admin_password: str) -> dict[str, object]:
    """The plugin's initial state: one admin that may only administer the plugin."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", admin_password.encode(), salt, _PBKDF2_ITERATIONS)
    control = "$CONTROL/dynamic-security/#"
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": False,
        },
        "clients": [{
            "username": admin_username,
            "textname": "Hearth relay admin (the federation's founder)",
            "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(),
            "iterations": _PBKDF2_ITERATIONS,
            "roles": [{"rolename": "hearth-admin"}],
        }],
        "groups": [],
        "roles": [{
            "rolename": "hearth-admin",
            # The role itself reads no inbox; but whoever holds the admin account can create
            # accounts and roles, so it holds the broker operator's power (README).
            "acls": [{"acltype": acltype, "topic": control, "allow": True, "priority": 0}
                     for acltype in ("publishClientSend", "publishClientReceive",
                                     "subscribePattern", "unsubscribePattern")],
        }],
    }


def make_self_signed_tls(directory: Path, hostnames_or_ips: list[str]) -> tuple[str, Path, Path]:
    """A private CA and a server certificate for these names, for a relay without a
    public-CA certificate: returns (CA PEM, certificate path, key path).

    The CA's key is not kept: a new host name means a new CA, sent to every member
    again with the admin file; in exchange nothing here can sign another certificate.
    """
    from cryptography import x509  # noqa: PLC0415 (only relay operators need it)
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    if not hostnames_or_ips:
        raise BrokerSetupError("a TLS certificate needs at least one host name or IP address")
    sans: list[x509.GeneralName] = []
    for name in hostnames_or_ips:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, f"Hearth relay CA {secrets.token_hex(4)}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames_or_ips[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = Path(directory).absolute()
    cert_path, key_path = directory / "relay-cert.pem", directory / "relay-key.pem"
    if cert_path.exists() or key_path.exists():
        raise BrokerSetupError(f"{directory} already holds a TLS certificate; use another --dir")
    _private_dir(directory)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    write_private(key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode())
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode() + ca_pem)
    return ca_pem, cert_path, key_path


def write_private(path: Path, text: str) -> None:
    """Create ``path`` 0600 (never readable by others, even briefly); never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _private_dir(directory: Path) -> None:
    # The broker rewrites dynamic-security.json with its umask (0644 usually):
    # the directory's 0700 is what keeps the hashes and the database private.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
