"""``mpc-backend relay init``: set up a Mosquitto broker as a federation's relay.

Run by whoever hosts the relay (any machine with mosquitto 2.x and one
forwarded port); it needs no node and no data dir. Failures print one line
``error: ...`` to stderr and exit 1, like the rest of ``mpc-backend``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mpc_backend.node.config import is_loopback

from .broker import (
    ADMIN_FILE_NAME,
    CONFIG_NAME,
    DYNSEC_NAME,
    BrokerSetup,
    BrokerSetupError,
    TlsFiles,
    check_broker_setup,
    make_self_signed_tls,
    write_broker_setup,
)
from .endpoint import RelayConfigError

TLS_PORT, PLAIN_PORT = 8883, 1883


def add_relay_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """relay init."""
    p = sub.add_parser("relay", help="host the federation's relay broker (MQTT)")
    rsub = p.add_subparsers(dest="relay_command", required=True, metavar="ACTION")
    rp = rsub.add_parser(
        "init", help="write a Mosquitto setup for the relay",
        description="Write mosquitto.conf, the dynamic-security accounts file (one admin) and "
                    "relay-admin.json for the founder into DIR. Hubs connect out to the relay, "
                    "so only the relay needs a reachable port.")
    rp.add_argument("--dir", type=Path, required=True,
                    help="where the setup, the accounts and the message store live (made 0700)")
    rp.add_argument("--public-host", required=True,
                    help="host name or IP address hubs reach the relay at")
    rp.add_argument("--port", type=int,
                    help=f"port to listen on and forward (default {TLS_PORT}, {PLAIN_PORT} "
                         "with --plain)")
    rp.add_argument("--listen", default="0.0.0.0",  # noqa: S104
                    help="address to listen on (default 0.0.0.0: all)")
    rp.add_argument("--tls-cert", type=Path, metavar="FILE",
                    help="TLS certificate chain (PEM) for the public host, e.g. Let's Encrypt's "
                         "fullchain.pem")
    rp.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    rp.add_argument("--tls-ca", type=Path, metavar="FILE",
                    help="CA certificate (PEM) members must trust, if --tls-cert is not from a "
                         "public CA")
    rp.add_argument("--self-signed", action="store_true",
                    help="make a private CA and certificate for the public host (the default "
                         "unless the host is this machine); members get the CA in the invite")
    rp.add_argument("--plain", action="store_true",
                    help="no TLS; only for a relay on this machine (127.0.0.1, localhost)")
    rp.add_argument("--plugin", type=Path, metavar="FILE",
                    help="mosquitto_dynamic_security.so, if not in a usual place")
    rp.set_defaults(func=run_relay_init)


def run_relay_init(args: argparse.Namespace) -> int:
    try:
        setup, self_signed = _init(args)
    except (BrokerSetupError, RelayConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    _print_instructions(setup, self_signed=self_signed)
    return 0


def _init(args: argparse.Namespace) -> tuple[BrokerSetup, bool]:
    host: str = args.public_host
    if sum((args.plain, args.self_signed, args.tls_cert is not None)) > 1:
        raise BrokerSetupError("choose one of --plain, --self-signed and --tls-cert/--tls-key")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise BrokerSetupError("--tls-cert and --tls-key go together")
    if args.tls_ca is not None and args.tls_cert is None:
        raise BrokerSetupError("--tls-ca only goes with --tls-cert/--tls-key")
    if args.plain and not is_loopback(host):
        raise BrokerSetupError(
            f"--plain would send members' broker passwords in clear to {host}; it is only "
            f"for a relay on this machine (use --self-signed or --tls-cert)")
    plain = args.plain or (is_loopback(host) and not args.self_signed
                           and args.tls_cert is None)
    self_signed = not plain and args.tls_cert is None
    port = args.port if args.port is not None else PLAIN_PORT if plain else TLS_PORT
    directory: Path = args.dir.absolute()
    # Every check before the first file: bad input leaves nothing behind.
    plugin = check_broker_setup(directory, public_host=host, port=port, tls=not plain,
                                plugin=args.plugin)
    tls: TlsFiles | None = None
    if args.tls_cert is not None:
        ca_pem = None
        if args.tls_ca is not None:
            ca_pem = args.tls_ca.read_text(encoding="utf-8")
        for path in (args.tls_cert, args.tls_key):
            path.read_bytes()  # OSError now, not when the broker starts
        tls = TlsFiles(args.tls_cert.absolute(), args.tls_key.absolute(), ca_pem)
    elif self_signed:
        ca_pem, cert, key = make_self_signed_tls(directory, [host])
        tls = TlsFiles(cert, key, ca_pem)
    setup = write_broker_setup(directory, public_host=host, port=port, listen_host=args.listen,
                               tls=tls, plugin=plugin)
    return setup, self_signed


def _print_instructions(setup: BrokerSetup, *, self_signed: bool) -> None:
    d = setup.directory
    port = setup.endpoint.port
    print(f"relay broker set up in {d} (mode 0700, keep it that way)")
    print(f"  {CONFIG_NAME:<24}  broker settings")
    print(f"  {DYNSEC_NAME:<24}  accounts and access rules (the broker keeps it up to date)")
    print(f"  {ADMIN_FILE_NAME:<24}  the admin account: for the federation's founder only")
    if self_signed:
        print(f"  {'relay-cert.pem, -key.pem':<24}  self-signed TLS; members get its CA with "
              "their invite")
    print(f"hubs connect to {setup.endpoint.url}")
    print("run the broker (as this user; SIGTERM or Ctrl-C saves queued messages):")
    print(f"  mosquitto -c {setup.config_path}")
    if not is_loopback(setup.endpoint.host):
        print(f"forward TCP port {port} on the router to this machine: the only port the "
              "federation needs")
    print(f"give {setup.admin_file} to the founder over a private channel; on the founder's hub:")
    print(f"  mpc-backend federation create --data-dir DIR --name NAME "
          f"--relay-admin {ADMIN_FILE_NAME}")
    print("Home Assistant OS: the Mosquitto broker app (7.x) cannot host the relay: its Home "
          "Assistant login plugin answers every login and access check before any other plugin. "
          "Run this broker in a container or on any machine with mosquitto 2.x.")
