"""Federation membership: create, invite, join, task proposals, roster distribution.

Bootstrap: ``federation create`` makes a random federation id and roster v1
holding only the founder, signed by the founder. ``invite`` stores a hash of the
invite key (``invite_key_id``) and an expiry and prints a token carrying the
founder's URL and key fingerprint. ``join TOKEN`` makes the joiner's node send a join
request signed with its own key (proof of possession) and its member record signed with
the invite key the secret seeds (the secret itself never leaves the hub) to the
founder's ``/peer/v1/join``; the founder checks the invite key's hash, expiry and
one-time use. A member that computes is added to the roster: the founder bumps
the version, signs, answers with the new roster and pushes it to every member. A
household that only contributes (``input_only``) is not: the founder signs one
admission for it (``admission.py``, seq from 1 with no gaps; a burst of joins is
stored in one transaction) and answers with the unchanged roster and that record,
so the founder's answer to a join does not grow with the households admitted.
The joiner accepts either only if the founder's keys match the fingerprint in the
token, and pins the founder key.

The members that compute check households' signatures, so they keep the admission
log: the founder pushes new records in pages (``/peer/v1/admissions``, to each member
on its own, from the seq it acknowledged; a member takes only the founder's records
that continue its log and answers where it stands, so a gap is resent; an answer
that goes back or brings it no nearer earns a backoff), and a member fetches what
it lacks (``/peer/v1/admissions/fetch``, served to members that compute only) at
start, on reconnecting, and when a sender it does not know calls
(``NodeContext.resolve``: one fetch at a time, at most one per
``directory.CATCH_UP_EVERY_S``).

The founder is the only authority in this version: it alone publishes rosters
(members, their capacities, tasks) and signs admissions, and a member cannot
forge either (each record is checked under the pinned founder key and names its
federation); any member may propose a task, which the founder validates and
publishes. Roster changes arriving together (a burst of joins) are coalesced into
one new version. Limit: the join of a member that computes still publishes a new
roster version, pushed whole to every member and to every household with an
address (O(members that compute) bytes each).

Membership policy at join (issue #9, a member may run a modified node): the
declared capacity must lie in ``MIN_CAPACITY``..``JOIN_MAX_CAPACITY`` so no joiner
buys committee seats with it (only the founder may raise it, up to
``MAX_CAPACITY``, and its roster shows the change to everyone), the URL must be
a plain ``http(s)://HOST[:PORT]``, and the HPKE suite must satisfy the roster's
``hpke_policy``. Refused joins do not use up the invite, so the joiner can fix
its setup and try again. Tasks are capped per federation and per proposer:
they cannot be removed yet, and every one costs every member work each round.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from mpc_backend.batching import Coalescer
from mpc_backend.crypto import (
    InvalidInviteError,
    Invite,
    InviteExpiredError,
    b64url_decode,
    b64url_encode,
    check_join_proof,
    invite_key_id,
    invite_mailbox,
    invite_public_key,
    join_proof,
    make_invite,
    new_invite_secret,
    node_id_of,
    parse_invite,
    sign_envelope,
)
from mpc_backend.crypto.sealing import SUITE_HYBRID
from mpc_backend.protocol import TaskSpec
from mpc_backend.protocol.committee import default_committee
from mpc_backend.relay.endpoint import BrokerAccount, RelayConfigError, RelayEndpoint
from mpc_backend.relay.provision import DynsecAdmin, ProvisionError, configured_admin
from mpc_backend.relay.settings import (
    RelaySettings,
    forget_relay_settings,
    save_relay_settings,
)
from mpc_backend.relay.transport import RelayError
from mpc_backend.storage import InviteStatus

from .admission import AdmissionError, SignedAdmission, sign_admission, verify_admission
from .config import MAX_CAPACITY, ConfigError, capacity_problem
from .context import DELIVERY_MAX_AGE_S, NodeContext
from .directory import PAGE
from .errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    NodeError,
    NotFound,
    TooManyRequests,
    Unprocessable,
)
from .peers import Address, PeerError, PeerRejected
from .roster import (
    HPKE_POLICY_ANY,
    HPKE_POLICY_HYBRID,
    CapacityError,
    MemberInfo,
    Roster,
    RosterError,
    RosterTask,
    sign_roster,
    verify_roster,
)

log = logging.getLogger("mpc_backend.federation")

FOUNDER_KEY_META = "founder_signing_public"
ADMISSION_META = "admission"  # a household's own admission (wire JSON)
MAX_INVITE_TTL_S = 30 * 24 * 3600
RELAY_CONNECT_S = 15.0  # creating or joining waits this long for the broker
# Every task costs every member work each round and tasks cannot be removed yet.
MAX_TASKS = 64
MAX_TASKS_PER_PROPOSER = 16
_COALESCE_S = 0.05
# A member that computes may fetch admissions it was already sent once per this long.
REWIND_EVERY_S = 60.0
# Declared by the joiner itself: at most an equal share of seats. A higher weight is
# the founder's decision alone, visible to every member in the signed roster.
JOIN_MAX_CAPACITY = 1.0
_UPGRADE_HPKE = ("upgrade to cryptography >= 47 built with ML-KEM and re-initialise the node "
                 "(mpc-backend init in a new data dir)")


@dataclass(frozen=True)
class Changes:
    """What one roster mutation adds or replaces."""

    members: tuple[MemberInfo, ...] = ()
    tasks: tuple[RosterTask, ...] = ()
    updated: tuple[MemberInfo, ...] = ()  # existing members, by node id


Mutation = Callable[[Roster], Changes]


class FederationService:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        # Founder: roster changes arriving together are published in one signed version.
        self._mutations: Coalescer[Mutation, Roster] = Coalescer(self._publish, _COALESCE_S)
        self._push_wakeup = asyncio.Event()
        self._pushed: dict[str, int] = {}  # member -> roster version it acknowledged
        self._push_failures: dict[str, int] = {}
        self._adopt_lock = asyncio.Lock()
        self._passwords_set: dict[str, bytes] = {}  # mailbox -> hash of the password set
        # Founder: joins of households waiting for their admission, signed and stored together.
        self._admitting: Coalescer[MemberInfo, SignedAdmission] = Coalescer(
            self._issue_admissions)
        self._admissions_wakeup = asyncio.Event()
        self._admissions_acked: dict[str, int] = {}  # member -> last seq it acknowledged
        # Member -> (end of the last page of admissions it fetched, when it last went back).
        self._fetched: dict[str, tuple[int, float]] = {}
        # Joins in progress, per node id (a lock and how many hold or wait for it).
        self._joins: dict[str, tuple[asyncio.Lock, int]] = {}
        # What the node does when its relay connection (re)opens: catch up on what was
        # pushed while it was away (set by Node; the roster by default).
        self.on_relay_connected: Callable[[], Awaitable[None]] = self.refresh_from_founder

    # -- start-up -------------------------------------------------------------
    async def load(self) -> None:
        wire = await self.ctx.storage.get_roster()
        pinned = await self.ctx.storage.get_meta(FOUNDER_KEY_META)
        if wire is None or pinned is None:
            return
        self.ctx.founder_public = b64url_decode(pinned)
        try:
            self.ctx.signed_roster = verify_roster(wire, self.ctx.founder_public)
            own = await self.ctx.storage.get_meta(ADMISSION_META)
            if own is not None:
                self.ctx.directory.add(verify_admission(
                    json.loads(own), self.ctx.founder_public, self.ctx.federation_id).member)
        except (RosterError, AdmissionError) as err:
            # e.g. a federation from an earlier version whose tasks or members this
            # version refuses (min_contributors below 3, capacity out of range).
            raise ConfigError(
                f"the federation roster stored in {self.ctx.data_dir} is not acceptable to "
                f"this version ({err}); the federation has to be created anew: move the "
                "data dir aside, then init, create or join again"
            ) from None
        await self.ctx.directory.follow()
        self._keep_admission_log()

    def _keep_admission_log(self) -> None:
        """A member that computes checks households' signatures: it keeps the founder's
        admission log and, for a sender it does not know, catches up from the founder."""
        if not self.ctx.is_founder and not self.ctx.config.input_only:
            self.ctx.admissions_catch_up = self.fetch_admissions

    async def refresh_from_founder(self) -> None:
        """Catch up on roster versions pushed while this node was down."""
        if self.ctx.signed_roster is None or self.ctx.is_founder:
            return
        founder = self.ctx.roster.founder_member
        if not self.ctx.peers.reachable(founder):
            return

        def fetch() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "roster-fetch", self.ctx.federation_id, {},
                                 now=self.ctx.clock())

        try:
            answer = await self.ctx.peers.post(founder, "/peer/v1/roster/fetch", fetch)
            await self.adopt(answer.get("roster"))
        except (PeerError, RosterError, NodeError) as err:
            log.warning("could not refresh the roster from the founder: %s", err)
        if self.ctx.admissions_catch_up is not None:
            await self.fetch_admissions()

    async def fetch_admissions(self) -> None:
        """Fetch the admissions this node lacks from the founder, page by page."""
        if self.ctx.signed_roster is None or self.ctx.founder_public is None:
            return
        founder = self.ctx.roster.founder_member
        if not self.ctx.peers.reachable(founder):
            return
        directory = self.ctx.directory
        while True:
            since = directory.last_seq

            def fetch(since: int = since) -> dict[str, Any]:
                return sign_envelope(self.ctx.keys, "admissions-fetch", self.ctx.federation_id,
                                     {"since": since}, now=self.ctx.clock())

            try:
                answer = await self.ctx.peers.post(founder, "/peer/v1/admissions/fetch", fetch)
                last = await directory.adopt(answer.get("admissions"), self.ctx.founder_public,
                                             self.ctx.federation_id)
            except (PeerError, AdmissionError, NodeError) as err:
                log.warning("could not fetch admissions from the founder: %s", err)
                return
            if last == since:  # nothing new (or the founder skipped ahead: a gap)
                return
            log.info("caught up on admissions %d..%d from the founder", since + 1, last)

    # -- founder: create / invite -----------------------------------------------
    async def create(
        self, name: str, allow_classical_hpke: bool = False, relay: Any = None
    ) -> Roster:
        """Found a federation; by default every member must use the post-quantum HPKE suite.

        With ``relay`` ({"url", "ca"?, "admin": {"username", "password"}}) members talk
        through that MQTT broker: the founder provisions its own account with the
        broker's admin account now, and each invitee's at ``invite``. Without ``admin``
        the account configured beside the node (relay-admin.json) is used.
        """
        if self.ctx.signed_roster is not None:
            raise Conflict(
                f"this node is already in federation {self.ctx.roster.name!r}",
                code="already_member",
            )
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise BadRequest("name must be 1-100 characters", field="name")
        if not isinstance(allow_classical_hpke, bool):
            raise BadRequest("allow_classical_hpke must be true or false",
                             field="allow_classical_hpke")
        suite = self.ctx.keys.hpke_suite
        if not allow_classical_hpke and suite != SUITE_HYBRID:
            raise Unprocessable(
                f"this node's HPKE suite is {suite}, not the post-quantum "
                f"{SUITE_HYBRID} a federation requires by default; {_UPGRADE_HPKE}, or create "
                "the federation with --allow-classical-hpke",
                field="allow_classical_hpke", code="weak_hpke_suite",
            )
        if relay is None:
            self._require_reachable_url("found a neighbourhood without a relay")
        federation_id = secrets.token_hex(16)
        endpoint = None
        if relay is not None:
            endpoint = await self._found_on_relay(relay, federation_id)
        me = self.ctx.me()
        now = self.ctx.clock()
        roster = Roster(
            federation_id=federation_id,
            name=name.strip(),
            version=1,
            issued_at=now,
            founder=me.node_id,
            members=(replace(me, joined_at=now),),
            hpke_policy=HPKE_POLICY_ANY if allow_classical_hpke else HPKE_POLICY_HYBRID,
            relay=endpoint,
        )
        signed = sign_roster(self.ctx.keys, roster)
        if self.ctx.relay is not None:  # before the roster: a node in it must find its account
            save_relay_settings(self.ctx.data_dir, self.ctx.relay)
        self.ctx.founder_public = self.ctx.keys.signing_public
        await self.ctx.storage.set_meta(FOUNDER_KEY_META, b64url_encode(self.ctx.founder_public))
        await self._store(signed.wire(), roster.version)
        self.ctx.signed_roster = signed
        log.info("created federation %s (%s), HPKE policy %s", roster.name,
                 roster.federation_id, roster.hpke_policy)
        return roster

    # -- the relay -------------------------------------------------------------
    async def connect_relay(self, federation_id: str, wait_s: float | None = None) -> None:
        """Keep this node's one outbound connection to the federation's broker."""
        assert self.ctx.relay is not None
        await self.ctx.peers.use_relay(
            self.ctx.relay.endpoint, self.ctx.relay.account, federation_id,
            self.ctx.relay_handler, on_connected=self.on_relay_connected, wait_s=wait_s,
            fallback=self.ctx.relay.fallback)

    async def _found_on_relay(self, relay: Any, federation_id: str) -> RelayEndpoint:
        try:
            if not isinstance(relay, dict):
                raise RelayConfigError("relay must be {'url', 'ca'?, 'admin': {...}}")
            if "admin" in relay:
                endpoint = RelayEndpoint.from_dict(relay)
                admin = BrokerAccount.from_dict(relay.get("admin"))
            else:
                endpoint, admin = await self._configured_relay_admin(relay)
        except RelayConfigError as err:
            raise Unprocessable(str(err), field="relay", code="bad_relay") from None
        try:
            async with DynsecAdmin(endpoint, admin) as broker:
                account = await broker.create_member(federation_id, invite_mailbox(
                    invite_public_key(new_invite_secret())))
        except ProvisionError as err:
            raise BadGateway(f"could not set up this hub's account on the relay: {err}",
                             code="relay_unavailable") from None
        self.ctx.relay = RelaySettings(endpoint, account, admin)
        try:
            await self.connect_relay(federation_id, wait_s=RELAY_CONNECT_S)
        except RelayError as err:
            self.ctx.relay = None
            raise BadGateway(str(err), code="relay_unavailable") from None
        return endpoint

    async def _configured_relay_admin(
        self, relay: dict[str, Any]
    ) -> tuple[RelayEndpoint, BrokerAccount]:
        """A relay given without ``admin``: the broker account configured beside the node
        (relay-admin.json, which the app writes from its options) provisions the members."""
        configured = await asyncio.to_thread(configured_admin, self.ctx.data_dir)
        if configured is None:
            raise Unprocessable(
                "give the relay broker's admin username and password (or set them in the "
                "Hearth node app's options): no broker admin account is configured on this hub",
                field="relay", code="no_relay_admin")
        endpoint, admin = configured
        url = relay.get("url")
        if url not in (None, "", endpoint.url):
            raise RelayConfigError(
                f"the relay URL {url!r} is not the broker configured on this hub "
                f"({endpoint.url}); give that broker's admin username and password too")
        if relay.get("ca") not in (None, "", endpoint.ca_pem):
            # The admin password goes to whoever that CA vouches for: only the configured one.
            raise RelayConfigError(
                "a CA certificate was given for the broker configured on this hub, whose "
                "relay-admin.json names its own; leave the CA out, or give that broker's "
                "admin username and password too")
        return endpoint, admin

    async def _current_admin(self) -> BrokerAccount | None:
        """The broker admin account: the one configured beside the node when it names this
        federation's broker (the app's options: a rotated password takes effect at once),
        else the copy kept from founding."""
        relay = self.ctx.relay
        if relay is None:
            return None
        try:
            configured = await asyncio.to_thread(configured_admin, self.ctx.data_dir)
        except RelayConfigError as err:
            log.warning("ignoring the broker admin file beside the node: %s", err)
            configured = None
        if configured is not None and configured[0].url == relay.endpoint.url:
            return configured[1]
        return relay.admin

    async def _provision_invitee(self, secret: str) -> dict[str, str]:
        """The invite's relay block: a fresh broker account whose mailbox the secret names."""
        relay = self.ctx.relay
        assert relay is not None
        admin = await self._current_admin()
        if admin is None:
            raise Unprocessable("this node has no broker admin account to provision the "
                                "newcomer with", code="no_relay_admin")
        try:
            async with DynsecAdmin(relay.endpoint, admin) as broker:
                account = await broker.create_member(
                    self.ctx.federation_id, invite_mailbox(invite_public_key(secret)))
        except ProvisionError as err:
            raise BadGateway(f"could not create the newcomer's account on the relay: {err}",
                             code="relay_unavailable") from None
        block = {"url": relay.endpoint.url, "username": account.username,
                 "password": account.password, "founder": relay.account.username}
        if relay.endpoint.ca_pem is not None:
            block["ca"] = relay.endpoint.ca_pem
        return block

    async def retire_lapsed_invites(self) -> None:
        """Founder: delete the broker accounts of invites that expired unused, so a token
        nobody used stops opening the relay."""
        relay = self.ctx.relay
        if relay is None or not self.ctx.is_founder:
            return
        admin = await self._current_admin()
        if admin is None:
            return
        lapsed = await self.ctx.storage.lapsed_invite_mailboxes(self.ctx.clock())
        if not lapsed:
            return
        try:
            async with DynsecAdmin(relay.endpoint, admin) as broker:
                for key_id, mailbox in lapsed:
                    await broker.delete_member(mailbox)
                    await self.ctx.storage.forget_invite_mailbox(key_id)
        except ProvisionError as err:
            log.warning("could not remove the broker accounts of expired invites (will try "
                        "again): %s", err)
            return
        log.info("removed the broker accounts of %d expired, unused invite(s)", len(lapsed))

    async def _connect_as_invitee(self, block: dict[str, str], federation_id: str) -> None:
        try:
            endpoint = RelayEndpoint(block["url"], block.get("ca"))
            account = BrokerAccount(block["username"], block["password"])
        except RelayConfigError as err:
            raise Unprocessable(f"the invite's relay settings are unusable: {err}",
                                field="token", code="invalid_invite") from None
        self.ctx.relay = RelaySettings(endpoint, account)
        try:
            await self.connect_relay(federation_id, wait_s=RELAY_CONNECT_S)
        except RelayError as err:
            self.ctx.relay = None
            raise BadGateway(f"{err}; check that this hub can reach it, and ask the founder "
                             "for a new invite if the account was removed",
                             code="relay_unavailable") from None

    def _require_reachable_url(self, what: str) -> None:
        """Without a relay, members call each other at their URLs: a node that listens on
        every address (the app, a container) and gave no --public-url has none to offer."""
        config = self.ctx.config
        with contextlib.suppress(ValueError):
            if config.public_url is None and ipaddress.ip_address(
                    config.listen_host).is_unspecified:
                raise Unprocessable(
                    f"this hub cannot {what}: it listens on every interface and has no "
                    "public URL (as the Hearth node app does), so neighbours have no address "
                    "to call it at; use a relay broker, or init the node with --public-url",
                    code="no_public_url")

    def _require_founder(self, what: str) -> None:
        if not self.ctx.is_founder:
            founder = self.ctx.roster.founder_member
            raise Forbidden(
                f"only the founder ({founder.name}) can {what} in this version",
                code="not_founder",
            )

    async def invite(self, ttl_s: int) -> dict[str, Any]:
        self._require_founder("issue invites")
        valid = isinstance(ttl_s, int) and not isinstance(ttl_s, bool)
        if not valid or not 0 < ttl_s <= MAX_INVITE_TTL_S:
            raise BadRequest(
                f"expires_s must be a whole number of seconds in 1..{MAX_INVITE_TTL_S}",
                field="expires_s",
            )
        secret = new_invite_secret()
        relay = None
        if self.ctx.relay is not None:
            relay = await self._provision_invitee(secret)
        token, key_id, expires_at = make_invite(
            None if relay else self.ctx.config.peer_url, self.ctx.keys.fingerprint,
            self.ctx.federation_id, ttl_s, now=self.ctx.clock(), secret=secret, relay=relay,
        )
        await self.ctx.storage.add_invite(key_id, expires_at,
                                          relay["username"] if relay else None)
        log.info("issued an invite valid for %d s", ttl_s)
        return {"token": token, "expires_at": expires_at}

    # -- joiner ----------------------------------------------------------------
    async def join(self, token: str) -> Roster:
        if self.ctx.signed_roster is not None:
            raise Conflict(
                f"this node is already in federation {self.ctx.roster.name!r}",
                code="already_member",
            )
        if not isinstance(token, str):
            raise BadRequest("token must be a string", field="token")
        try:
            invite = parse_invite(token, now=self.ctx.clock())
        except InviteExpiredError as err:
            # The expiry is written in the token: saying so tells its holder nothing new.
            raise Unprocessable(str(err), field="token", code="invite_expired") from None
        except InvalidInviteError as err:
            raise Unprocessable(str(err), field="token", code="invalid_invite") from None
        founder = Address("the founder", invite.founder_url)
        if invite.relay is None:
            self._require_reachable_url("join a neighbourhood that has no relay")
        else:
            founder = Address("the founder", mailbox=invite.relay["founder"])
            await self._connect_as_invitee(invite.relay, invite.federation_id)
        try:
            if self.ctx.relay is not None:  # before the roster, as at create
                save_relay_settings(self.ctx.data_dir, self.ctx.relay)
            roster = await self._join(invite, founder)
        except BaseException:
            if invite.relay is not None:
                self.ctx.relay = None
                await self.ctx.peers.stop_relay()
                forget_relay_settings(self.ctx.data_dir)
            raise
        if self.ctx.relay is not None:
            await self._replace_invite_password()
        log.info("joined federation %s (roster v%d)", roster.name, roster.version)
        return roster

    async def _replace_invite_password(self) -> None:
        """Swap the broker password the invite carried for one only this hub knows, so a
        token seen later (a chat history) is no key to this member's inbox and session.

        The founder sets it through the broker's admin interface, and the broker drops
        this connection as it does; until the answer is in, either password may be in
        force, and the relay tries both (both are kept until then, across a restart too).
        """
        relay = self.ctx.relay
        assert relay is not None
        fresh = BrokerAccount(relay.account.username, secrets.token_urlsafe(24))
        self.ctx.relay = replace(relay, account=fresh, fallback=relay.account)
        save_relay_settings(self.ctx.data_dir, self.ctx.relay)
        transport = self.ctx.peers.relay
        if transport is not None:
            transport.account, transport.fallback = fresh, relay.account
        await self.confirm_relay_password()

    async def confirm_relay_password(self) -> None:
        """While the invite's password may still be in force, have the founder set this
        hub's own (the same one on every try); at join, then at every (re)connect."""
        relay = self.ctx.relay
        if relay is None or relay.fallback is None or self.ctx.signed_roster is None:
            return

        def request() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "relay-password", self.ctx.federation_id,
                                 {"password": relay.account.password}, now=self.ctx.clock())

        try:
            # One attempt, waiting long enough for the answer to come after the reconnect
            # that the change itself forces.
            await self.ctx.peers.post(self.ctx.roster.founder_member,
                                      "/peer/v1/relay/password", request, attempts=1,
                                      timeout_s=RELAY_CONNECT_S)
        except PeerError as err:
            log.warning("the invite's broker password is still in force (%s); this hub "
                        "keeps trying both and asks again when it reconnects", err)
            return
        self.ctx.relay = replace(relay, fallback=None)
        save_relay_settings(self.ctx.data_dir, self.ctx.relay)
        transport = self.ctx.peers.relay
        if transport is not None:
            transport.account, transport.fallback = relay.account, None
        log.info("replaced the invite's broker password")

    async def handle_relay_password(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        """Founder: set a member's own broker password (sealed to the founder on the way)."""
        body = self.ctx.verify(envelope, "relay-password", remote=remote)
        self._require_founder("change broker passwords")
        relay, member = self.ctx.relay, self.ctx.member(envelope["sender"])
        admin = await self._current_admin()
        if relay is None or admin is None or member is None or member.mailbox is None:
            raise Unprocessable("this federation has no relay account for that member",
                                code="no_relay_account")
        password = body.get("password")
        if not isinstance(password, str) or not 24 <= len(password) <= 128:
            raise BadRequest("password must be 24-128 characters", field="body.password")
        digest = hashlib.sha256(password.encode()).digest()
        if self._passwords_set.get(member.mailbox) == digest:
            return {"rotated": True}  # a retry: setting it again would drop its connection
        try:
            async with DynsecAdmin(relay.endpoint, admin) as broker:
                await broker.command("setClientPassword", username=member.mailbox,
                                     password=password)
        except ProvisionError as err:
            raise BadGateway(f"could not change the broker password: {err}",
                             code="relay_unavailable") from None
        self._passwords_set[member.mailbox] = digest
        log.info("set a new broker password for %s", member.name)
        return {"rotated": True}

    async def _join(self, invite: Invite, founder: Address) -> Roster:
        me = self.ctx.me()

        member = me.to_dict()
        proof = join_proof(invite.secret, invite.federation_id, member)

        def request() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "join", invite.federation_id,
                                 {**proof, "member": member}, now=self.ctx.clock())

        try:
            answer = await self.ctx.peers.post(founder, "/peer/v1/join", request)
        except PeerRejected as err:
            # Keep the founder's status and code (bad_capacity, weak_hpke_suite, ...).
            error = NodeError(f"the founder refused the join: {err.peer_message}")
            error.status, error.code = err.status, err.code
            raise error from None
        except PeerError as err:
            raise BadGateway(f"could not reach the founder: {err}") from None
        try:
            signed = verify_roster(answer.get("roster"))
        except RosterError as err:
            raise BadGateway(f"the founder sent an invalid roster: {err}") from None
        roster = signed.roster
        if roster.founder_member.fingerprint != invite.founder_fingerprint:
            raise BadGateway(
                "the node at the invite's URL does not hold the founder key named in the "
                "invite (fingerprint mismatch); do not join, and check the URL with the founder",
                code="fingerprint_mismatch",
            )
        founder_key = roster.founder_member.signing_public
        admission = None
        if roster.federation_id != invite.federation_id:
            raise BadGateway("the founder's roster is for another federation than the invite's")
        if roster.member(me.node_id) is None:
            # A household that only contributes is admitted by a signed record, not the roster.
            try:
                admission = verify_admission(answer.get("admission"), founder_key,
                                             roster.federation_id)
            except AdmissionError as err:
                raise BadGateway(f"the founder's answer does not admit this node: {err}") from None
            if admission.member.to_dict() != {**member, "joined_at": admission.member.joined_at}:
                raise BadGateway("the founder's admission is for another member record")
            await self.ctx.storage.set_meta(ADMISSION_META, json.dumps(admission.wire()))
        await self.ctx.storage.set_meta(FOUNDER_KEY_META, b64url_encode(founder_key))
        self.ctx.founder_public = founder_key
        await self._store(signed.wire(), roster.version)
        if admission is not None:
            self.ctx.directory.add(admission.member)
        self.ctx.signed_roster = signed
        self._keep_admission_log()
        return roster

    # -- founder: handling peers -------------------------------------------------
    async def handle_join(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        claimed = envelope.get("body") if isinstance(envelope, dict) else None
        member_data = claimed.get("member") if isinstance(claimed, dict) else None
        try:
            candidate = MemberInfo.from_dict(member_data)
        except CapacityError as err:
            log.warning("refused a join from %s: %s", _claimed(member_data), err)
            raise Unprocessable(str(err), field="body.member.capacity",
                                code="bad_capacity") from None
        except RosterError as err:
            log.warning("refused a join from %s: %s", _claimed(member_data), err)
            raise BadRequest(str(err), field="body.member") from None

        def lookup(sender: str) -> bytes | None:
            key = candidate.signing_public
            return key if node_id_of(key) == sender else None

        if self.ctx.signed_roster is None or envelope.get("federation") != self.ctx.federation_id:
            # An invite of another federation (or one whose founder's address now reaches
            # another hub): say so, without naming this hub's federation to the stranger.
            log.warning("refused a join from %s: its invite is for another federation",
                        candidate.node_id)
            raise Forbidden("the hub at the invite's address is not the founder of the "
                            "invite's neighbourhood; ask the founder for a new invite",
                            code="wrong_federation")
        body = self.ctx.verify(envelope, "join", lookup, remote=remote, remember=False)
        self._require_founder("admit members")
        try:
            invite_public = check_join_proof(body, self.ctx.federation_id, member_data)
        except InvalidInviteError as err:
            log.warning("refused a join from %s: %s", candidate.node_id, err)
            raise Forbidden(str(err), code="invite_unknown") from None
        if candidate.capacity > JOIN_MAX_CAPACITY:
            log.warning("refused a join from %r (%s): declared capacity %g", candidate.name,
                        candidate.node_id, candidate.capacity)
            raise Unprocessable(
                f"a joining hub may declare a capacity of at most {JOIN_MAX_CAPACITY:g} (it "
                f"declared {candidate.capacity:g}); re-run init with a lower --capacity, and "
                f"ask the founder to raise it (up to {MAX_CAPACITY:g}) once you have joined",
                field="body.member.capacity", code="bad_capacity",
            )
        if not self.ctx.roster.admits_suite(candidate.hpke_suite):
            log.warning("refused a join from %r (%s): HPKE suite %s, the federation requires %s",
                        candidate.name, candidate.node_id, candidate.hpke_suite, SUITE_HYBRID)
            raise Unprocessable(
                f"this federation requires the post-quantum HPKE suite {SUITE_HYBRID}, and "
                f"this node uses {candidate.hpke_suite}; {_UPGRADE_HPKE}, or ask the founder "
                "for a federation that allows classical HPKE (federation create "
                "--allow-classical-hpke)",
                field="body.member.hpke_suite", code="weak_hpke_suite",
            )
        relay = self.ctx.roster.relay
        if (relay is not None or candidate.mailbox is not None) and (
                relay is None or candidate.mailbox != invite_mailbox(invite_public)):
            log.warning("refused a join from %s: relay mailbox %r is not its invite's",
                        candidate.node_id, candidate.mailbox)
            raise Forbidden("the join claims a relay mailbox other than the one its invite "
                            "provisioned", code="wrong_mailbox")
        # One join per node id at a time: a household join and a computing one sent
        # together with the same keys would otherwise both pass the checks below.
        async with self._one_join(candidate.node_id):
            return await self._admit_joiner(candidate, envelope, invite_public)

    @contextlib.asynccontextmanager
    async def _one_join(self, node_id: str) -> AsyncIterator[None]:
        lock, users = self._joins.get(node_id) or (asyncio.Lock(), 0)
        self._joins[node_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._joins[node_id]
            if users == 1:
                del self._joins[node_id]
            else:
                self._joins[node_id] = (lock, users - 1)

    async def _admit_joiner(self, candidate: MemberInfo, envelope: dict[str, Any],
                            invite_public: bytes) -> dict[str, Any]:
        in_roster = self.ctx.roster.member(candidate.node_id)
        known = in_roster or self.ctx.directory.get(candidate.node_id)
        if known is not None and known.input_only != candidate.input_only:
            # A household now joining as a member that computes, or the other way round:
            # one node, one membership (a retry of the same join gets its admission or the
            # roster again, below).
            log.warning("refused a join from %s: already a member", candidate.node_id)
            raise Conflict("this node is already a member of the federation",
                           code="already_member")
        status = await self.ctx.storage.consume_invite(
            invite_key_id(invite_public), self.ctx.clock(), candidate.node_id
        )
        if status is not InviteStatus.OK:
            log.warning("refused a join from %s: invite %s", candidate.node_id, status.value)
            raise Forbidden(
                {
                    InviteStatus.UNKNOWN: "invite not recognised by this founder",
                    InviteStatus.EXPIRED: "invite expired; ask the founder for a new one",
                    InviteStatus.USED: "invite already used; ask the founder for a new one",
                }[status],
                code=f"invite_{status.value}",
            )
        self.ctx.replay.check_and_add(envelope["sender"], envelope["nonce"], self.ctx.clock())
        if candidate.input_only and in_roster is None:
            # O(1): one signed record, no roster version, nothing pushed to households.
            admission = await self._admit(candidate)
            log.info("admitted %s (%s) as household %d", candidate.name, candidate.node_id,
                     admission.seq)
            assert self.ctx.signed_roster is not None
            return {"roster": self.ctx.signed_roster.wire(), "version": self.ctx.roster.version,
                    "admission": admission.wire()}

        def admit(roster: Roster) -> Changes:
            if roster.member(candidate.node_id) is not None:
                return Changes()
            return Changes(members=(replace(candidate, joined_at=self.ctx.clock()),))

        roster = await self._mutate(admit)
        log.info("admitted %s (%s) as member", candidate.name, candidate.node_id)
        return {"roster": self.ctx.signed_roster.wire() if self.ctx.signed_roster else None,
                "version": roster.version}

    # -- founder: capacities ------------------------------------------------------
    async def set_capacity(self, member_ref: str, capacity: Any) -> dict[str, Any]:
        """Change a member's capacity (by node id or unique name) from now on.

        Rounds that started before keep the capacity they started with.
        """
        self._require_founder("change capacities")
        if isinstance(capacity, bool) or not isinstance(capacity, int | float):
            raise BadRequest("capacity must be a number", field="capacity")
        problem = capacity_problem(float(capacity))
        if problem is not None:
            raise Unprocessable(problem, field="capacity", code="bad_capacity")
        node_id = self._resolve_member(member_ref).node_id

        def change(roster: Roster) -> Changes:
            member = roster.by_id[node_id]
            if member.capacity == capacity:
                return Changes()
            return Changes(updated=(member.with_capacity(float(capacity), self.ctx.clock()),))

        roster = await self._mutate(change)
        member = roster.by_id[node_id]
        log.info("capacity of %s (%s) is now %g (roster v%d)", member.name, node_id,
                 member.capacity, roster.version)
        return {"node_id": node_id, "name": member.name, "capacity": member.capacity,
                "roster_version": roster.version}

    def _name(self, node_id: str) -> str:
        member = self.ctx.member(node_id)
        return member.name if member else node_id

    def _resolve_member(self, ref: str) -> MemberInfo:
        roster = self.ctx.roster
        member = roster.member(ref)
        if member is not None:
            return member
        named = [m for m in roster.members if m.name == ref]
        if len(named) > 1:
            raise BadRequest(f"{len(named)} members are named {ref!r}; give the node id",
                             field="member", code="ambiguous_member")
        if not named:
            raise NotFound(f"no member with node id or name {ref!r}", field="member",
                           code="unknown_member")
        return named[0]

    async def handle_roster_push(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        founder = self.ctx.roster.founder
        body = self.ctx.verify(
            envelope, "roster",
            lambda s: self.ctx.founder_public if s == founder else None, remote=remote,
            max_age_s=DELIVERY_MAX_AGE_S,  # founder-signed and versioned: an old push is harmless
        )
        return {"version": await self.adopt(body.get("roster"))}

    async def handle_roster_fetch(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        self.ctx.verify(envelope, "roster-fetch", remote=remote)
        assert self.ctx.signed_roster is not None
        return {"roster": self.ctx.signed_roster.wire()}

    async def adopt(self, wire: Any) -> int:
        """Accept a pushed roster if it is newer and signed by the pinned founder."""
        async with self._adopt_lock:
            return await self._adopt(wire)

    async def _adopt(self, wire: Any) -> int:
        try:
            signed = verify_roster(wire, self.ctx.founder_public)
        except RosterError as err:
            log.warning("rejected a roster: %s", err)
            raise Forbidden(str(err), code="bad_roster") from None
        current = self.ctx.roster
        if signed.roster.federation_id != current.federation_id:
            raise Forbidden("roster is for another federation", code="bad_roster")
        if signed.roster.version < current.version:
            raise Conflict(
                f"stale roster v{signed.roster.version}; this node has v{current.version}",
                code="stale_roster",
            )
        if signed.roster.version > current.version:
            await self._store(signed.wire(), signed.roster.version)
            self.ctx.signed_roster = signed
            log.info("roster updated to v%d (%d members, %d tasks)", signed.roster.version,
                     len(signed.roster.members), len(signed.roster.tasks))
        return self.ctx.roster.version

    # -- tasks -------------------------------------------------------------------
    async def propose_task(self, spec_data: Any) -> dict[str, Any]:
        if isinstance(spec_data, dict) and "k" not in spec_data and "t" not in spec_data:
            eligible = sum(1 for m in self.ctx.roster.members if not m.input_only)
            k, t = default_committee(eligible)
            spec_data = {**spec_data, "k": k, "t": t}
        spec = _parse_spec(spec_data)
        if self.ctx.is_founder:
            return await self._publish_task(spec, self.ctx.node_id)
        founder = self.ctx.roster.founder_member
        if not self.ctx.peers.reachable(founder):
            raise BadGateway("the founder has no public URL, and this node is not connected "
                             "to the federation's relay")

        def proposal() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "task-proposal", self.ctx.federation_id,
                                 {"spec": spec.to_dict()}, now=self.ctx.clock())

        try:
            answer = await self.ctx.peers.post(founder, "/peer/v1/tasks", proposal)
        except PeerRejected as err:
            error = NodeError(f"the founder refused the task: {err.peer_message}")
            error.status, error.code = err.status, err.code
            raise error from None
        except PeerError as err:
            raise BadGateway(f"could not reach the founder: {err}") from None
        await self.adopt(answer.get("roster"))
        return {k: v for k, v in answer.items() if k != "roster"}

    async def handle_task_proposal(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body = self.ctx.verify(envelope, "task-proposal", remote=remote)
        self._require_founder("publish tasks")
        spec = _parse_spec(body.get("spec"))
        answer = await self._publish_task(spec, envelope["sender"])
        assert self.ctx.signed_roster is not None
        return {**answer, "roster": self.ctx.signed_roster.wire()}

    async def _publish_task(self, spec: TaskSpec, proposer: str) -> dict[str, Any]:
        added: list[RosterTask] = []

        def add(roster: Roster) -> Changes:
            existing = roster.task(spec.task_id)
            if existing is not None:
                if existing.spec == spec:
                    added.append(existing)
                    return Changes()
                raise Conflict(
                    f"task {spec.task_id!r} already exists with different settings; "
                    "pick another metric name or task id",
                    field="task_id", code="task_exists",
                )
            _check_task_caps(roster, proposer, self._name(proposer))
            eligible = [m for m in roster.members if not m.input_only]
            if len(eligible) < spec.k:
                raise Unprocessable(
                    f"task needs a committee of {spec.k} but only {len(eligible)} member(s) "
                    "accept compute work; invite more hubs first",
                    field="k", code="too_few_members",
                )
            task = RosterTask(spec, self.ctx.clock(), proposer)
            added.append(task)
            return Changes(tasks=(task,))

        roster = await self._mutate(add)
        task = added[0]
        log.info("published task %s (roster v%d)", spec.task_id, roster.version)
        return {
            "task": task_view(task),
            "roster_version": roster.version,
        }

    # -- roster publication (founder) ----------------------------------------------
    async def _mutate(self, mutation: Mutation) -> Roster:
        return await self._mutations.submit(mutation)

    async def _publish(self, batch: list[Mutation]) -> list[Roster | NodeError]:
        """One roster version for the mutations of ``batch`` that apply (the coalescer
        waits ``_COALESCE_S`` first, so a burst of joins lands in one version)."""
        current = self.ctx.roster
        new_members: list[MemberInfo] = []
        new_tasks: list[RosterTask] = []
        updated: dict[str, MemberInfo] = {}
        refused: dict[int, NodeError] = {}
        draft = current
        for index, mutation in enumerate(batch):
            try:
                changes = mutation(draft)
            except NodeError as err:
                refused[index] = err
                continue
            new_members += changes.members
            new_tasks += changes.tasks
            updated.update((m.node_id, m) for m in changes.updated)
            draft = current.with_changes(members=new_members, tasks=new_tasks,
                                         updated=updated.values(), issued_at=self.ctx.clock())
        if new_members or new_tasks or updated:
            for member in new_members:  # joiners get this version in their answer
                self._pushed[member.node_id] = draft.version
            if any(not m.input_only for m in new_members):
                self._admissions_wakeup.set()  # it needs the admission log
            signed = sign_roster(self.ctx.keys, draft)
            await self._store(signed.wire(), draft.version)
            self.ctx.signed_roster = signed
            self._push_wakeup.set()
        return [refused.get(index, self.ctx.roster) for index in range(len(batch))]

    async def _store(self, wire: dict[str, Any], version: int) -> None:
        await self.ctx.storage.put_roster(version, wire)

    async def push_loop(self) -> None:
        """Founder: keep every member with a URL on the latest roster version."""
        timing = self.ctx.config.timing
        retry_in: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._push_wakeup.wait(), retry_in)
            self._push_wakeup.clear()
            retry_in = None
            if not self.ctx.is_founder or self.ctx.signed_roster is None:
                continue
            version = self.ctx.roster.version
            # Households that only contribute and have no URL fetch the roster when they
            # start or reconnect, as over direct HTTP: pushing every version to each of them
            # through the relay costs the founder members x roster size per join.
            targets = [
                m for m in (*self.ctx.roster.members, *self.ctx.directory.members())
                if self.ctx.peers.reachable(m) and m.node_id != self.ctx.node_id
                and not (m.input_only and m.url is None)
                and self._pushed.get(m.node_id, 0) < version
            ]
            if not targets:
                continue
            wire = self.ctx.signed_roster.wire()

            def push(wire: dict[str, Any] = wire) -> dict[str, Any]:
                return sign_envelope(self.ctx.keys, "roster", self.ctx.federation_id,
                                     {"roster": wire}, now=self.ctx.clock())

            results = await asyncio.gather(
                *(self._push_one(m, push, version) for m in targets), return_exceptions=True
            )
            if any(r is not True for r in results):
                # Retry laggards later with backoff; they also fetch the roster at start-up.
                failures = max(self._push_failures.values(), default=1)
                retry_in = timing.backoff(failures)

    async def _push_one(
        self, member: MemberInfo, push: Callable[[], dict[str, Any]], version: int
    ) -> bool:
        try:
            # None: the relay holds it for a member that is away, and delivers it on return.
            answer = await self.ctx.peers.push(member, "/peer/v1/roster", push) or {}
            acked = answer.get("version", version)
            if isinstance(acked, bool) or not isinstance(acked, int):
                acked = version
            # Never beyond what was pushed: a forged "v10^12" answer would stop later pushes.
            self._pushed[member.node_id] = min(max(acked, version), self.ctx.roster.version)
            self._push_failures.pop(member.node_id, None)
            return True
        except PeerError as err:
            self._push_failures[member.node_id] = self._push_failures.get(member.node_id, 0) + 1
            log.info("roster v%d not yet delivered to %s: %s", version, member.name, err)
            return False

    # -- admissions (founder issues, members that compute keep the log) -------------
    async def _admit(self, member: MemberInfo) -> SignedAdmission:
        """Founder: the admission of household ``member``, signed and stored (or the one
        it already has, for a retried join)."""
        return await self._admitting.submit(member)

    async def _issue_admissions(self, batch: list[MemberInfo]) -> list[SignedAdmission]:
        """Joins that arrive while a batch is being stored go into the next batch: one
        transaction each, and seqs handed out in order only once stored (no gaps)."""
        directory = self.ctx.directory
        issued: dict[str, SignedAdmission] = {}
        fresh: list[SignedAdmission] = []
        for member in batch:
            if member.node_id in issued:
                continue
            # The founder's directory holds every admission: storage is read only for the
            # record of a retried join.
            known = directory.get(member.node_id) is not None
            stored = await self.ctx.storage.get_admission(member.node_id) if known else None
            if stored is not None:
                assert self.ctx.founder_public is not None
                issued[member.node_id] = verify_admission(
                    stored.wire, self.ctx.founder_public, self.ctx.federation_id)
                continue
            admission = sign_admission(
                self.ctx.keys, self.ctx.federation_id, directory.last_seq + len(fresh) + 1,
                replace(member, joined_at=self.ctx.clock()), self.ctx.clock())
            fresh.append(admission)
            issued[member.node_id] = admission
        await self.ctx.storage.put_admissions([a.record() for a in fresh])
        await self._check_stored(fresh)
        directory.stored(fresh)
        if fresh:
            self._admissions_wakeup.set()
        return [issued[member.node_id] for member in batch]

    async def _check_stored(self, fresh: list[SignedAdmission]) -> None:
        """Raise unless storage now holds exactly ``fresh`` after the log's last seq: a record
        storage left out (put_admissions keeps a seq or node id it already has) would
        leave a gap in the log no member could continue past."""
        if not fresh:
            return
        last = self.ctx.directory.last_seq
        back = await self.ctx.storage.admissions_since(last, len(fresh) + 1)
        if [(r.seq, r.node_id) for r in back] != [(a.seq, a.member.node_id) for a in fresh]:
            raise RuntimeError(
                f"admission log out of step with storage: issued seqs {fresh[0].seq}.."
                f"{fresh[-1].seq} after {last}, storage holds {[r.seq for r in back]}")

    async def admissions_push_loop(self) -> None:
        """Founder: bring every member that computes up to the latest admission. Each member
        has its own pusher (``_keep_admitted``), so one that is slow, away or answers
        nonsense holds up no other."""
        pushers: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                await self._admissions_wakeup.wait()
                self._admissions_wakeup.clear()
                if not self.ctx.is_founder:
                    continue
                last = self.ctx.directory.last_seq
                for member in self.ctx.roster.members:
                    if (member.input_only or member.node_id == self.ctx.node_id
                            or not self.ctx.peers.reachable(member)
                            or self._admissions_acked.get(member.node_id, 0) >= last):
                        continue
                    running = pushers.get(member.node_id)
                    if running is None or running.done():
                        pushers[member.node_id] = asyncio.create_task(
                            self._keep_admitted(member.node_id))
        finally:
            for task in pushers.values():
                task.cancel()

    async def _keep_admitted(self, node_id: str) -> None:
        """Founder: push admissions to one member until it holds the latest; after a round
        that brought it no nearer, wait (doubling up to a minute) before the next."""
        timing = self.ctx.config.timing
        failures = 0
        while (member := self.ctx.roster.member(node_id)) is not None:
            last = self.ctx.directory.last_seq
            if self._admissions_acked.get(node_id, 0) >= last:
                return
            if await self._push_admissions(member, last) and (
                    self._admissions_acked.get(node_id, 0) >= last):
                failures = 0
                continue  # more may have been admitted meanwhile
            failures += 1
            wait_s = timing.backoff(failures)
            log.info("admissions: next push to %s in %.1f s (%d failed in a row)",
                     member.name, wait_s, failures)
            await asyncio.sleep(wait_s)

    async def _push_admissions(self, member: MemberInfo, last: int) -> bool:
        """Pages from the seq ``member`` acknowledged up to ``last``; True once it holds them.

        Its answer (``{"seq"}``, where its log ends) is taken only between what it already
        acknowledged and what was sent, so the acknowledged seq never goes back and every
        page must bring it nearer; at most as many pages as the gap needs, plus one.
        """
        known = self._admissions_acked.get(member.node_id)
        # Not knowing what it holds (founder restarted, new member), send the newest page:
        # its answer says where its log ends (lower is believed once), the next page
        # starts there.
        acked = known if known is not None else max(0, last - PAGE)
        floor = known or 0
        try:
            for _ in range(1 + math.ceil((last - floor) / PAGE)):
                if acked >= last:
                    return True
                records = await self.ctx.storage.admissions_since(acked, PAGE)
                if not records:
                    return False
                sent = records[-1].seq

                def push(wires: tuple[dict[str, Any], ...] = tuple(r.wire for r in records)
                         ) -> dict[str, Any]:
                    return sign_envelope(self.ctx.keys, "admissions", self.ctx.federation_id,
                                         {"admissions": list(wires)}, now=self.ctx.clock())

                # None: the relay holds it for a member that is away; it fetches what it
                # lacks when it reconnects.
                answer = await self.ctx.peers.push(member, "/peer/v1/admissions", push)
                held = sent if answer is None else answer.get("seq")
                if isinstance(held, bool) or not isinstance(held, int):
                    held = sent
                # Never beyond what was sent: a forged huge seq would stop later pushes.
                held = min(held, sent)
                if held < floor or (held == acked and known is not None):
                    log.warning("admissions: %s (%s) answered a push of %d..%d with seq %d, "
                                "having acknowledged %d", member.name, member.node_id,
                                acked + 1, sent, held, floor)
                    return False
                acked = floor = known = held
                self._admissions_acked[member.node_id] = held
        except PeerError as err:
            log.info("admissions up to %d not yet delivered to %s: %s", last, member.name, err)
            return False
        return acked >= last

    async def handle_admissions_push(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        """A member that computes: adopt the founder's admissions that continue its log."""
        founder = self.ctx.roster.founder
        body = self.ctx.verify(
            envelope, "admissions",
            lambda s: self.ctx.founder_public if s == founder else None, remote=remote,
            max_age_s=DELIVERY_MAX_AGE_S,  # founder-signed records: an old push is harmless
        )
        return {"seq": await self._adopt_admissions(body.get("admissions"))}

    async def _adopt_admissions(self, wires: Any) -> int:
        assert self.ctx.founder_public is not None
        try:
            return await self.ctx.directory.adopt(wires, self.ctx.founder_public,
                                                  self.ctx.federation_id)
        except AdmissionError as err:
            log.warning("rejected admissions: %s", err)
            raise Forbidden(str(err), code="bad_admission") from None

    async def handle_admissions_fetch(self, envelope: Any, remote: str | None
                                      ) -> dict[str, Any]:
        """A member that computes may fetch the log this node holds, a page at a time; a
        household may not (it keeps only its own admission). Fetching on from where the
        last page ended is free; going back over pages already sent (a member that lost
        its log) at most once per ``REWIND_EVERY_S``, so no member can make this node send
        the whole log over and over."""
        roster = self.ctx.roster

        def computing(sender: str) -> bytes | None:
            member = roster.member(sender)
            return member.signing_public if member and not member.input_only else None

        body = self.ctx.verify(envelope, "admissions-fetch", computing, remote=remote)
        since = body.get("since")
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise BadRequest("since must be a whole number from 0", field="body.since")
        sender = envelope["sender"]
        served, rewound = self._fetched.get(sender, (0, -math.inf))
        if since < served:
            if time.monotonic() - rewound < REWIND_EVERY_S:
                log.warning("refused %s's fetch of admissions from %d: it was sent up to %d "
                            "already", self._name(sender), since + 1, served)
                raise TooManyRequests(
                    f"admissions up to {served} were sent to this member already; fetch "
                    f"from {served}, or again from {since} in {REWIND_EVERY_S:g} s",
                    code="rewind_too_often")
            rewound = time.monotonic()
        records = await self.ctx.storage.admissions_since(since, PAGE)
        self._fetched[sender] = (records[-1].seq if records else since, rewound)
        return {"admissions": [r.wire for r in records], "last": self.ctx.directory.last_seq}


def _check_task_caps(roster: Roster, proposer: str, name: str) -> None:
    if len(roster.tasks) >= MAX_TASKS:
        raise Unprocessable(
            f"the federation already has {MAX_TASKS} tasks, the most it may hold; tasks "
            "cannot be removed yet",
            code="too_many_tasks",
        )
    if sum(t.proposed_by == proposer for t in roster.tasks) >= MAX_TASKS_PER_PROPOSER:
        raise Unprocessable(
            f"{name} has already proposed "
            f"{MAX_TASKS_PER_PROPOSER} tasks, the most one member may; tasks cannot be "
            "removed yet",
            code="too_many_tasks",
        )


def _claimed(member: Any) -> str:
    """Who a join request says it is (unverified: for the log only)."""
    if not isinstance(member, dict):
        return "a malformed member record"
    return f"{str(member.get('name'))[:100]!r} ({str(member.get('node_id'))[:64]})"


def _parse_spec(data: Any) -> TaskSpec:
    if not isinstance(data, dict):
        raise BadRequest("task must be a JSON object", field="task")
    try:
        return TaskSpec.from_dict(data)
    except ValueError as err:
        # TaskSpec's messages start with the offending field's name.
        first_word = str(err).split(" ", 1)[0]
        field = first_word if first_word in TaskSpec.__dataclass_fields__ else None
        raise BadRequest(str(err), field=field, code="invalid_task") from None


def task_view(task: RosterTask) -> dict[str, Any]:
    """The public JSON form of a task (API and CLI)."""
    spec = task.spec
    return {
        "task": spec.task_id,
        "spec": spec.to_dict(),
        "added_at": task.added_at,
        "proposed_by": task.proposed_by,
        "first_round": task.first_round(),
        "first_round_starts_at": task.first_round() * spec.period_s,
        "privacy": committee_in_words(spec),
    }


def committee_in_words(spec: TaskSpec) -> str:
    """What k and t mean for the households, in plain words."""
    offline = spec.k - spec.t - 1
    return (f"each reading is split among {spec.k} committee hubs: {spec.t + 1} of them "
            f"colluding could see it, {spec.t} or fewer learn nothing; {offline} may be "
            f"offline at the close")
