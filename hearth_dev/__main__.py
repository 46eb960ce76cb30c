"""Run a simulated neighbourhood: `python -m hearth_dev --help` (usually via scripts/develop)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .backends import add_tasks, federate_with_cli, start_nodes
from .contributors import contribute_forever
from .processes import Supervisor
from .relay import start_relay
from .sensors import REPO, HouseholdSensors

_LOGGER = logging.getLogger("hearth_dev")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/develop",
        description="Run a simulated neighbourhood on this machine: N backend nodes forming one "
        "federation, each household with emulated I2C and UART sensors, and (unless --no-ha) a "
        "real Home Assistant for household 1 at http://127.0.0.1:8123. Ctrl-C stops everything.",
    )
    parser.add_argument("--households", type=int, default=3, help="how many households (3-20)")
    parser.add_argument("--period", type=int, default=30, help="round length in seconds")
    parser.add_argument(
        "--no-ha",
        action="store_true",
        help="backends and simulated contributors only (no Python 3.14 needed)",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="hubs talk over direct HTTP instead of through a local Mosquitto relay (the "
        "default, as a neighbourhood behind home routers would)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO / ".dev",
        help="where node data, logs and the Home Assistant config live",
    )
    return parser


async def _run(args: argparse.Namespace, supervisor: Supervisor) -> None:
    """Start everything, then watch the children; Ctrl-C/SIGTERM cancel this at any point."""
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)
    households: list[HouseholdSensors] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        relay_admin = None
        if not args.direct:
            relay_admin = await asyncio.to_thread(start_relay, supervisor, args.dir)
        nodes = await asyncio.to_thread(start_nodes, supervisor, args.dir, args.households)
        first_contributor = 0 if args.no_ha else 1
        for node in nodes:
            households.append(sensors := HouseholdSensors(seed=node.index))
            await sensors.start(open_readers=node.index >= first_contributor)
        if not args.no_ha:
            from .home_assistant import start_home_assistant  # noqa: PLC0415

            # Household 1's Home Assistant founds the neighbourhood and invites the others.
            await start_home_assistant(
                supervisor, args.dir, nodes, households[0], relay_admin, args.period
            )
        else:
            await asyncio.to_thread(federate_with_cli, nodes, relay_admin)
            await asyncio.to_thread(add_tasks, nodes[0], args.period)
            _LOGGER.info(
                "%d nodes running (household 1 API: %s, token in %s/api_token)",
                len(nodes),
                nodes[0].url,
                nodes[0].data_dir,
            )
        tasks = [
            asyncio.create_task(contribute_forever(node, sensors, args.period))
            for node, sensors in zip(
                nodes[first_contributor:], households[first_contributor:], strict=True
            )
        ]
        _LOGGER.info("press Ctrl-C to stop every process this started")
        await _watch(supervisor)
    finally:
        _LOGGER.info("stopping")
        for task in tasks:
            task.cancel()
        for sensors in households:
            await sensors.stop()


async def _watch(supervisor: Supervisor) -> None:
    """Return only by raising: the demo is broken once a child has died."""
    while True:
        await asyncio.sleep(2)
        supervisor.check_alive()


def main() -> None:
    args = _parser().parse_args()
    if not 3 <= args.households <= 20:
        raise SystemExit("error: --households must be between 3 and 20 (a committee needs 3 hubs)")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    supervisor = Supervisor()
    try:
        asyncio.run(_run(args, supervisor))
    except asyncio.CancelledError:
        pass  # Ctrl-C or SIGTERM: the normal way to stop
    except RuntimeError as err:
        raise SystemExit(f"error: {err}") from None
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            supervisor.stop_all()


if __name__ == "__main__":
    main()
