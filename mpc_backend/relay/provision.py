"""Member accounts on the relay broker, through its dynamic-security plugin.

The founder holds the broker's admin account (``relay-admin.json`` from
``mpc-backend relay init``) and gives every member its own account: a fresh
mailbox name and password, and a role that lets it read only its own inbox and
write only to the federation's inboxes. Commands go to
``$CONTROL/dynamic-security/v1`` as JSON; the plugin publishes every reply to
``…/response`` for all admin connections, so each command carries random
``correlationData`` to find its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import ssl
import stat
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomqtt

from .endpoint import BrokerAccount, RelayConfigError, RelayEndpoint, inbox_filter, inbox_topic

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
_FEDERATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MAX_ADMIN_FILE_BYTES = 64 * 1024


class ProvisionError(Exception):
    """The broker refused or did not answer an account change; the message says which."""


class AdminFileError(RelayConfigError):
    """``relay-admin.json`` is missing or malformed."""


class InsecureAdminFileError(AdminFileError):
    """The admin file is readable or writable by other users."""


def member_role(username: str) -> str:
    return f"member-{username}"


def member_acls(federation_id: str, username: str) -> list[dict[str, Any]]:
    """Read its own inbox, write to the federation's inboxes, and nothing else.

    The denials are explicit instead of the default deny: dynsec *defers* when it
    has no matching rule, and a broker with a second auth plugin that allows
    everything (Home Assistant's go-auth does) would then let the member through.
    """
    if not _FEDERATION_ID.fullmatch(federation_id):
        raise RelayConfigError(f"federation id {federation_id!r} cannot be part of a topic")
    inbox = inbox_topic(federation_id, username)
    allow = [("subscribeLiteral", inbox), ("unsubscribeLiteral", inbox),
             ("publishClientSend", inbox_filter(federation_id))]
    deny = [(acltype, topic) for topic in ("#", "$CONTROL/#", "$SYS/#")
            for acltype in ("subscribePattern", "publishClientSend")]
    return ([{"acltype": t, "topic": topic, "allow": True, "priority": 10} for t, topic in allow]
            + [{"acltype": t, "topic": topic, "allow": False, "priority": 0}
               for t, topic in deny])


class DynsecAdmin:
    """An admin connection to the broker's dynamic-security plugin.

    ``async with DynsecAdmin(endpoint, admin) as broker: await broker.create_member(fed)``.
    Each connection has its own client id, so several may be open at once.
    """

    def __init__(self, endpoint: RelayEndpoint, admin: BrokerAccount, *,
                 timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.admin = admin
        self.timeout = timeout
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> DynsecAdmin:
        tls = None
        if self.endpoint.tls:
            tls = ssl.create_default_context(cadata=self.endpoint.ca_pem)
        client = aiomqtt.Client(
            self.endpoint.host, self.endpoint.port,
            username=self.admin.username, password=self.admin.password,
            identifier=f"{self.admin.username}-{secrets.token_hex(4)}",
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=True, tls_context=tls,
            timeout=self.timeout)
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as err:
            raise ProvisionError(f"cannot reach the relay {self.endpoint.url} as "
                                 f"{self.admin.username}: {err}") from None
        self._client = client
        try:
            granted = await client.subscribe(RESPONSE_TOPIC, qos=1)
        except aiomqtt.MqttError as err:
            await self._close()
            raise ProvisionError(f"relay {self.endpoint.url}: {err}") from None
        if int(getattr(granted[0], "value", granted[0])) >= 0x80:
            await self._close()
            raise ProvisionError(
                f"{self.admin.username} is not the relay's dynamic-security admin "
                f"(subscription refused: {granted[0]})")
        self._reader = asyncio.create_task(self._read(client))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                try:
                    replies = json.loads(bytes(message.payload))["responses"]  # type: ignore[arg-type]
                except (ValueError, KeyError, TypeError):
                    continue
                for reply in replies if isinstance(replies, list) else ():
                    future = self._pending.get(str(reply.get("correlationData")))
                    if future is not None and not future.done():
                        future.set_result(reply)
        except aiomqtt.MqttError as err:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProvisionError(
                        f"lost the connection to the relay {self.endpoint.url}: {err}"))

    async def commands(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Send commands in one message; their replies, in order. ProvisionError if
        any failed (the others may have taken effect) or the broker did not answer."""
        if self._client is None:
            raise ProvisionError("DynsecAdmin is not connected (use it with `async with`)")
        loop = asyncio.get_running_loop()
        ids = [secrets.token_hex(8) for _ in commands]
        futures = [loop.create_future() for _ in commands]
        self._pending.update(zip(ids, futures, strict=True))
        payload = {"commands": [{**c, "correlationData": i}
                                for c, i in zip(commands, ids, strict=True)]}
        try:
            await self._client.publish(CONTROL_TOPIC, json.dumps(payload), qos=1)
            async with asyncio.timeout(self.timeout):
                replies = await asyncio.gather(*futures)
        except TimeoutError:
            raise ProvisionError(
                f"the relay {self.endpoint.url} did not answer "
                f"{', '.join(c['command'] for c in commands)} within {self.timeout:g} s; "
                f"is its dynamic-security plugin loaded?") from None
        except aiomqtt.MqttError as err:
            raise ProvisionError(f"relay {self.endpoint.url}: {err}") from None
        finally:
            for i in ids:
                self._pending.pop(i, None)
        failed = [r for r in replies if r.get("error")]
        if failed:
            raise ProvisionError("; ".join(
                f"the relay refused {r.get('command')}: {r['error']}" for r in failed))
        return replies

    async def command(self, command: str, **fields: Any) -> dict[str, Any]:
        return (await self.commands({"command": command, **fields}))[0]

    async def create_member(self, federation_id: str, mailbox: str | None = None) -> BrokerAccount:
        """A new account whose username is its mailbox in ``federation_id`` (``mailbox``,
        or a fresh one), with a fresh password.

        The account is bound to client id = username: a member connecting under
        another member's client id would otherwise take over that member's session,
        its subscription and queued messages included (mosquitto does not check
        that a resumed session belongs to the same user).
        """
        username = mailbox if mailbox is not None else f"h-{secrets.token_hex(8)}"
        try:
            account = BrokerAccount(username, secrets.token_urlsafe(24))
            acls = member_acls(federation_id, username)
        except RelayConfigError as err:
            raise ProvisionError(str(err)) from None
        role = member_role(username)
        # One at a time, so a name that exists already is refused before anything
        # is made, and nothing half-made stays behind.
        await self.command("createRole", rolename=role, acls=acls)
        try:
            await self.command("createClient", username=username, clientid=username,
                               password=account.password, textname=f"Hearth {federation_id}",
                               roles=[{"rolename": role}])
        except ProvisionError:
            with contextlib.suppress(ProvisionError):
                await self.command("deleteRole", rolename=role)
            raise
        return account

    async def delete_member(self, username: str) -> None:
        """Remove the account and its role; the broker drops its connection at once.
        Removing an account that is already gone is not an error."""
        for command in ({"command": "deleteClient", "username": username},
                        {"command": "deleteRole", "rolename": member_role(username)}):
            try:
                await self.commands(command)
            except ProvisionError as err:
                if "not found" not in str(err):
                    raise


def load_admin_file(path: Path) -> tuple[RelayEndpoint, BrokerAccount]:
    """Read ``relay-admin.json``: refuse a missing, foreign-accessible or malformed file."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO at that path must not hang the CLI before it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise AdminFileError(
            f"no relay admin file at {path}; the relay's operator creates it with "
            f"mpc-backend relay init") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AdminFileError(f"relay admin file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            what = "readable" if mode & 0o044 else "writable"
            raise InsecureAdminFileError(
                f"relay admin file {path} is {what} by other users (mode {mode:04o}); "
                f"run: chmod 600 {path}")
        raw = handle.read(_MAX_ADMIN_FILE_BYTES + 1)
    try:
        if len(raw) > _MAX_ADMIN_FILE_BYTES:
            raise ValueError("file is too large")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return RelayEndpoint.from_dict(data), BrokerAccount.from_dict(data.get("admin"))
    except ValueError as err:  # RelayConfigError too
        raise AdminFileError(
            f"relay admin file {path} is not usable ({err}); it should be the "
            f"relay-admin.json that mpc-backend relay init wrote") from None


def configured_admin(data_dir: Path) -> tuple[RelayEndpoint, BrokerAccount] | None:
    """The broker admin account configured beside the node (the app writes it from its
    options), or None when there is none; a broken file raises AdminFileError."""
    from .broker import ADMIN_FILE_NAME  # noqa: PLC0415 (broker imports node config)

    path = Path(data_dir) / ADMIN_FILE_NAME
    if not path.exists():
        return None
    return load_admin_file(path)

