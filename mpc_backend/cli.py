"""``mpc-backend``: set up, run and administer a household node.

``init`` and ``token`` work on the data dir alone; ``serve`` runs the node; all
other commands talk to the running node through its local API (the data dir
tells them where it listens and holds the token). Failures print one line
``error: ...`` to stderr and exit 1 (2 for usage errors). ``--json`` prints the
local API's JSON answer unchanged, so its shape is the one documented in
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mpc_backend import __version__
from mpc_backend.node.config import CAPACITY_MEANING, MAX_CAPACITY, MIN_CAPACITY
from mpc_backend.relay.cli import add_relay_commands

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class CliError(Exception):
    pass


def parse_duration(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _number_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated numbers") from None


def _name_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


# -- commands that need no running node ------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from mpc_backend.crypto import InsecureKeyFileError, load_or_create_keys, new_api_token  # noqa: PLC0415
    from mpc_backend.node.config import (  # noqa: PLC0415
        ConfigError,
        NodeConfig,
        Timing,
        config_path,
        parse_listen,
        save_config,
        token_path,
        write_private,
    )

    data_dir: Path = args.data_dir
    if config_path(data_dir).exists():
        raise CliError(f"{data_dir} is already initialised; use another --data-dir")
    host, port = parse_listen(args.listen)
    timing_args = {
        "grace_s": args.grace, "takeover_s": args.takeover,
        "peer_timeout_s": args.peer_timeout, "peer_attempts": args.peer_attempts,
    }
    try:
        config = NodeConfig(
            name=args.name, listen_host=host, listen_port=port, public_url=args.public_url,
            capacity=args.capacity, input_only=args.input_only, tls_cert=args.tls_cert,
            tls_key=args.tls_key, insecure_listen=args.insecure_listen,
            timing=Timing(**{k: v for k, v in timing_args.items() if v is not None}),
            database_url=args.database_url,
        )
    except ConfigError as err:
        raise CliError(str(err)) from None
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        keys = load_or_create_keys(data_dir)
    except InsecureKeyFileError as err:
        raise CliError(str(err)) from None
    save_config(data_dir, config)
    if not token_path(data_dir).exists():
        write_private(token_path(data_dir), new_api_token() + "\n")
    if args.json:
        _print_json({"node_id": keys.node_id, "fingerprint": keys.fingerprint,
                     "hpke_suite": keys.hpke_suite, "data_dir": str(data_dir),
                     "listen": config.listen, "url": config.peer_url})
    else:
        print(f"initialised node {config.name} in {data_dir}")
        print(f"  node id      {keys.node_id}")
        print(f"  fingerprint  {keys.fingerprint}")
        print(f"  HPKE suite   {keys.hpke_suite}")
        print(f"  listens on   {config.listen}; peers reach it at {config.peer_url}")
        if config.database_url is not None:
            from mpc_backend.storage.postgres import describe  # noqa: PLC0415

            print(f"  storage      PostgreSQL {describe(config.database_url)}")
        print(f"next: mpc-backend serve --data-dir {data_dir}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from mpc_backend.node.config import read_token  # noqa: PLC0415

    print(read_token(args.data_dir))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os  # noqa: PLC0415

    import uvloop  # noqa: PLC0415

    from mpc_backend.api.server import serve  # noqa: PLC0415
    from mpc_backend.api.workers import check_workers  # noqa: PLC0415
    from mpc_backend.node.config import load_config  # noqa: PLC0415
    from mpc_backend.node.logs import setup_logging  # noqa: PLC0415
    from mpc_backend.storage import StorageUnavailableError  # noqa: PLC0415

    config = load_config(args.data_dir, os.environ)
    check_workers(config, args.ingest_workers)
    setup_logging(args.log_level)
    try:
        uvloop.run(serve(args.data_dir, config, ingest_workers=args.ingest_workers))
    except StorageUnavailableError as err:
        raise CliError(str(err)) from None
    return 0


# -- commands that use the running node -------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from mpc_backend.api.client import LocalClient  # noqa: PLC0415

    return LocalClient(args.data_dir)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def cmd_federation_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "allow_classical_hpke": args.allow_classical_hpke}
    if args.relay_admin is not None:
        from mpc_backend.relay.endpoint import RelayConfigError, RelayEndpoint  # noqa: PLC0415
        from mpc_backend.relay.provision import load_admin_file  # noqa: PLC0415
        try:
            endpoint, admin = load_admin_file(args.relay_admin)
            if args.relay is not None:
                endpoint = RelayEndpoint(args.relay, endpoint.ca_pem)
        except RelayConfigError as err:
            raise CliError(str(err)) from None
        body["relay"] = {**endpoint.to_dict(), "admin": admin.to_dict()}
    elif args.relay is not None:
        raise CliError("--relay needs --relay-admin FILE: the founder provisions every member's "
                       "broker account through the broker's admin account (the relay-admin.json "
                       "that mpc-backend relay init wrote)")
    answer = _client(args).request("POST", "/federation", body)
    if args.json:
        _print_json(answer)
    else:
        print(f"created federation {answer['name']} ({answer['federation']}); "
              "this node is its founder")
        if answer["hpke_policy"] != "hybrid":
            print("  members with classical (not post-quantum) HPKE are admitted")
        if answer.get("relay"):
            print(f"  members talk through the relay {answer['relay']}; no hub needs an "
                  "inbound port")
    return 0


def cmd_member_capacity(args: argparse.Namespace) -> int:
    from urllib.parse import quote  # noqa: PLC0415

    answer = _client(args).request("POST", f"/members/{quote(args.member, safe='')}/capacity",
                                   {"capacity": args.capacity})
    if args.json:
        _print_json(answer)
    else:
        print(f"capacity of {answer['name']} ({answer['node_id']}) is {answer['capacity']:g} "
              f"from now on (roster v{answer['roster_version']}); rounds already running keep "
              "their committees")
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    answer = _client(args).request("POST", "/invites", {"expires_s": args.expires})
    if args.json:
        _print_json(answer)
    else:
        print(answer["token"])
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    answer = _client(args).request("POST", "/join", {"token": args.token})
    if args.json:
        _print_json(answer)
    else:
        role = "as a household, " if answer.get("household") else ""
        print(f"joined federation {answer['name']} ({role}founder {answer['founder']}, "
              f"{answer['members']} members, roster v{answer['roster_version']})")
    return 0


def cmd_task_add(args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {
        "metric": args.metric, "unit": args.unit, "low": args.min, "high": args.max,
        "resolution": args.resolution, "stats": args.stats, "period_s": args.period,
        "min_contributors": args.min_contributors,
    }
    if args.buckets:
        spec["buckets"] = args.buckets
    if args.dp_epsilon is not None:
        spec["dp_epsilon"] = args.dp_epsilon
    if args.id:
        spec["task_id"] = args.id
    if args.k is not None:
        spec["k"] = args.k
    if args.t is not None:
        spec["t"] = args.t
    answer = _client(args).request("POST", "/tasks", spec)
    if args.json:
        _print_json(answer)
    else:
        task = answer["task"]
        starts = time.strftime("%H:%M:%S", time.localtime(task["first_round_starts_at"]))
        print(f"task {task['task']} published in roster v{answer['roster_version']}; "
              f"first round starts at {starts}")
    return 0


def cmd_task_list(args: argparse.Namespace) -> int:
    answer = _client(args).request("GET", "/tasks")
    if args.json:
        _print_json(answer)
        return 0
    for task in answer["tasks"]:
        spec = task["spec"]
        print(f"{task['task']}: {spec['metric']} [{spec['low']}, {spec['high']}] {spec['unit']} "
              f"every {spec['period_s']} s, stats {','.join(spec['stats'])}, "
              f"min {spec['min_contributors']} contributors"
              + (f", DP epsilon {spec['dp_epsilon']}" if spec.get("dp_epsilon") else ""))
        print(f"  {task['privacy']}")
    if not answer["tasks"]:
        print("no tasks yet; add one with: mpc-backend task add ...")
    return 0


def cmd_contribute(args: argparse.Namespace) -> int:
    answer = _client(args).request("POST", "/readings", {"task": args.task, "value": args.value})
    if args.json:
        _print_json(answer)
    else:
        again = " (same reading again: unchanged)" if answer["duplicate"] else ""
        print(f"contributed to {answer['task']} round {answer['round']}: "
              f"{answer['acknowledged_by']}/{answer['committee_size']} committee members "
              f"acknowledged{again}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode  # noqa: PLC0415

    query = urlencode({"task": args.task, "limit": args.limit})
    answer = _client(args).request("GET", f"/results?{query}")
    if args.json:
        _print_json({"task": args.task, "results": answer["results"]})
        return 0
    if not answer["results"]:
        print(f"no results for {args.task} yet")
        return 0
    for result in answer["results"]:
        print(_format_result(result))
    return 0


def _format_result(result: dict[str, Any]) -> str:
    head = f"{result['task']} round {result['round']} ({result['round_end']}): {result['status']}"
    if result["status"] != "released":
        return f"{head}: {result.get('reason')}"
    stats = result["statistics"]
    unit = result.get("unit") or ""
    parts = [f"{result['contributors']} contributors"]
    for name in ("mean", "stddev", "variance", "sum"):
        if stats.get(name) is not None:
            parts.append(f"{name} {stats[name]:.6g}{' ' + unit if name != 'variance' else ''}")
    lines = [f"{head}: " + ", ".join(parts)]
    for q, value in (stats.get("quantiles") or {}).items():
        lines.append(f"  {q}: {value:.6g} {unit}")
    for b in stats.get("histogram") or []:
        lines.append(f"  [{b['low']}, {b['high']}): {b['count']}")
    if result.get("dp_epsilon"):
        lines.append(f"  (with differential-privacy noise, epsilon {result['dp_epsilon']})")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    answer = _client(args).request("GET", "/status")
    if args.json:
        _print_json(answer)
        return 0
    ident = answer["identity"]
    print(f"node {ident['name']} ({ident['node_id']}), fingerprint {ident['fingerprint']}")
    relay = answer.get("relay")
    where = f"url {ident['url']}" if relay is None else f"mailbox {relay['mailbox']}"
    print(f"  {where}, capacity {ident['capacity']}"
          + (", input-only" if ident["input_only"] else ""))
    if relay is not None:
        state = "connected" if relay["connected"] else f"DISCONNECTED ({relay['last_error']})"
        print(f"relay {relay['url']}: {state} since {relay['since']}")
    fed = answer["federation"]
    if fed is None:
        print("  not in a federation (mpc-backend federation create / join)")
        return 0
    role = "founder" if fed["is_founder"] else "member"
    print(f"federation {fed['name']} ({fed['id']}), {role}, roster v{fed['roster_version']}, "
          f"{fed['members_online']}/{fed['members']} members online, "
          f"{fed.get('households', 0)} admitted households known")
    for m in answer["members"]:
        state = {True: "online", False: "OFFLINE", None: "-"}[m["online"]]
        print(f"  {m['name']:<20} {m['node_id']} {state} capacity {m['capacity']:g}"
              + (" founder" if m["founder"] else "") + (" input-only" if m["input_only"] else "")
              + (" classical-HPKE" if m.get("post_quantum") is False else ""))
    for t in answer["tasks"]:
        last = t["last_round"]
        last_text = f"last round {last['round']}: {last['status']}" if last else "no rounds yet"
        if last and last.get("reason"):
            last_text += f" ({last['reason']})"
        seat = ", on committee" if t["on_committee"] else ""
        print(f"task {t['task']}: round {t['current_round']} ends {t['round_ends_at']}{seat}; "
              f"{last_text}")
    load = answer["load"]
    print(f"load: {load['shares_accepted']} shares accepted, {load['shares_rejected']} rejected, "
          f"{load['rounds_holding_shares']} open rounds, "
          f"{load['rounds_closed_as_coordinator']} rounds closed as coordinator")
    return 0


# -- parser ------------------------------------------------------------------------------
def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="the node's data dir (keys, settings, database)")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mpc-backend",
        description="Hearth household node: neighbourhood statistics over secret-shared "
                    "readings. Set up with init, run with serve, administer with the rest.",
    )
    parser.add_argument("--version", action="version", version=f"mpc-backend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_setup_commands(sub)
    _add_federation_commands(sub)
    _add_task_commands(sub)
    _add_data_commands(sub)
    add_relay_commands(sub)
    return parser


def _add_setup_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """init and serve."""
    p = sub.add_parser("init", help="create the node's identity, settings and API token",
                       description="Create a data dir: Ed25519 + HPKE keys (0600), settings "
                                   "and the local API token.")
    _data_dir(p)
    p.add_argument("--name", required=True, help="this household's name as members see it")
    p.add_argument("--listen", required=True, help="HOST:PORT to listen on, e.g. 127.0.0.1:8731")
    p.add_argument("--public-url", help="URL other members reach this node at, "
                                        "http(s)://HOST[:PORT] with no path, query or "
                                        "user:password@ (default: http://LISTEN)")
    p.add_argument("--capacity", type=float, default=1.0,
                   help=f"relative compute capacity for committee seats, {MIN_CAPACITY:g} to "
                        f"{MAX_CAPACITY:g}: {CAPACITY_MEANING} (default 1)")
    p.add_argument("--input-only", action="store_true",
                   help="contribute readings but never sit on a committee")
    p.add_argument("--tls-cert", help="TLS certificate (PEM) for a non-loopback listen address")
    p.add_argument("--tls-key", help="TLS private key (PEM)")
    p.add_argument("--insecure-listen", action="store_true",
                   help="allow a non-loopback listen address without TLS (warns at start)")
    p.add_argument("--database-url", metavar="postgresql://USER@HOST:PORT/DB",
                   help="keep the node's state in this PostgreSQL database (one per node) "
                        "instead of SQLite in the data dir; needs the postgres extra. A "
                        "password is better given to serve as HEARTH_DATABASE_URL")
    timing = p.add_argument_group("advanced timing (seconds)")
    timing.add_argument("--grace", type=float, help="accept shares this long after a round ends")
    timing.add_argument("--takeover", type=float,
                        help="delay before the next committee member takes over a close")
    timing.add_argument("--peer-timeout", type=float, help="timeout of one peer request")
    timing.add_argument("--peer-attempts", type=int, help="attempts per peer call (with backoff)")
    _json_flag(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the node (stops cleanly on SIGTERM/SIGINT)",
                       description="Run the node in the foreground; logs go to stderr.")
    _data_dir(p)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--ingest-workers", type=int, default=0, metavar="N",
                   help="take shares in N more processes sharing the node's address and its "
                        "PostgreSQL database (a heavily loaded committee node); the rest "
                        "stays in this process")
    p.set_defaults(func=cmd_serve)



def _add_federation_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """federation create, invite, join, member capacity."""
    p = sub.add_parser("federation", help="federation administration")
    fsub = p.add_subparsers(dest="federation_command", required=True, metavar="ACTION")
    fp = fsub.add_parser("create", help="found a federation (this node becomes its authority)")
    _data_dir(fp)
    fp.add_argument("--name", required=True, help="the neighbourhood's name")
    fp.add_argument("--allow-classical-hpke", action="store_true",
                    help="admit members whose HPKE is classical X25519 only (cryptography "
                         "without ML-KEM); their shares could be read by a future quantum "
                         "computer, and status shows them as not post-quantum. By default "
                         "every member needs the post-quantum MLKEM768-X25519 suite")
    fp.add_argument("--relay", metavar="URL",
                    help="the MQTT broker members talk through, e.g. mqtts://relay.example:8883 "
                         "(default: the URL in --relay-admin); then no hub needs an inbound "
                         "port. Without a relay, every hub must be reachable at its URL")
    fp.add_argument("--relay-admin", metavar="FILE", type=Path,
                    help="the broker admin account file (relay-admin.json from mpc-backend "
                         "relay init): the founder's node creates each member's own broker "
                         "account with it")
    _json_flag(fp)
    fp.set_defaults(func=cmd_federation_create)

    p = sub.add_parser("invite", help="print a one-time invite token (founder only)")
    _data_dir(p)
    p.add_argument("--expires", type=parse_duration, default=24 * 3600,
                   help="token lifetime, e.g. 30m, 24h, 7d (default 24h)")
    _json_flag(p)
    p.set_defaults(func=cmd_invite)

    p = sub.add_parser("join", help="join a federation with an invite token (node must be serving)")
    _data_dir(p)
    p.add_argument("token", help="the invite token from the founder")
    _json_flag(p)
    p.set_defaults(func=cmd_join)

    p = sub.add_parser("member", help="member administration (founder only)")
    msub = p.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    mp = msub.add_parser(
        "capacity", help="change a member's capacity (founder only)",
        description=f"Set a member's capacity in the signed roster, {MIN_CAPACITY:g} to "
                    f"{MAX_CAPACITY:g}: {CAPACITY_MEANING}. Rounds that already started keep "
                    "their committees; later rounds use the new value.")
    _data_dir(mp)
    mp.add_argument("member", metavar="NODE_ID_OR_NAME",
                    help="the member's node id, or its name if no other member has it")
    mp.add_argument("capacity", metavar="VALUE", type=float,
                    help=f"the new capacity, {MIN_CAPACITY:g} to {MAX_CAPACITY:g}")
    _json_flag(mp)
    mp.set_defaults(func=cmd_member_capacity)



def _add_task_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """task add, task list."""
    p = sub.add_parser("task", help="tasks: what the federation aggregates")
    tsub = p.add_subparsers(dest="task_command", required=True, metavar="ACTION")
    tp = tsub.add_parser("add", help="propose a task; the founder publishes it",
                         description="Propose a task. The founder's node validates it and "
                                     "publishes it in the signed roster; it starts with the "
                                     "next round.")
    _data_dir(tp)
    tp.add_argument("--metric", required=True, help="metric name, e.g. indoor_temperature")
    tp.add_argument("--id", help="task id (default: derived from the metric)")
    tp.add_argument("--unit", default="", help="unit, e.g. °C")
    tp.add_argument("--min", type=float, required=True, help="lowest value (readings clip here)")
    tp.add_argument("--max", type=float, required=True, help="highest value")
    tp.add_argument("--resolution", type=float, required=True,
                    help="fixed-point step, e.g. 0.1 (must divide max - min)")
    tp.add_argument("--stats", type=_name_list, required=True,
                    help="comma list of count,sum,mean,variance,stddev,histogram,quantiles")
    tp.add_argument("--buckets", type=_number_list, help="histogram bucket edges, e.g. 18,20,22")
    tp.add_argument("--period", type=int, required=True, help="round length in seconds (>= 10)")
    tp.add_argument("--min-contributors", type=int, required=True,
                    help="no result is released with fewer contributors; at least 3, as a "
                         "mean over two contributors tells each the other's reading")
    tp.add_argument("--dp-epsilon", type=float,
                    help="add differential-privacy noise with this epsilon")
    tp.add_argument("--k", type=int, metavar="SEATS",
                    help="committee size: hubs that hold shares of each reading; up to "
                         "k - t - 1 of them may be offline at the close (default: 5 once "
                         "five hubs accept compute work, else 3)")
    tp.add_argument("--t", type=int, metavar="THRESHOLD",
                    help="t + 1 colluding committee hubs are needed to see a reading, t or "
                         "fewer learn nothing (default: 2 with k = 5, else 1)")
    _json_flag(tp)
    tp.set_defaults(func=cmd_task_add)
    tp = tsub.add_parser("list", help="list the federation's tasks")
    _data_dir(tp)
    _json_flag(tp)
    tp.set_defaults(func=cmd_task_list)



def _add_data_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """contribute, results, status, token."""
    p = sub.add_parser("contribute", help="this household's value for the current round")
    _data_dir(p)
    p.add_argument("--task", required=True, help="task id")
    p.add_argument("--value", type=float, required=True, help="the reading")
    _json_flag(p)
    p.set_defaults(func=cmd_contribute)

    p = sub.add_parser("results", help="latest round outcomes of a task (any member)")
    _data_dir(p)
    p.add_argument("--task", required=True, help="task id")
    p.add_argument("--limit", type=int, default=5, help="how many rounds (newest first)")
    _json_flag(p)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("status", help="identity, federation, members online, rounds, load")
    _data_dir(p)
    _json_flag(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("token", help="print the local API token for Home Assistant")
    _data_dir(p)
    p.set_defaults(func=cmd_token)


def main(argv: Sequence[str] | None = None) -> int:
    from mpc_backend.api.client import ClientError  # noqa: PLC0415
    from mpc_backend.crypto import CryptoError  # noqa: PLC0415
    from mpc_backend.node.config import ConfigError  # noqa: PLC0415

    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CliError, ClientError, ConfigError, CryptoError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
