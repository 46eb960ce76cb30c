"""What every node service shares: settings, keys, storage, peers, the roster, the clock.

``verify`` is the single gate for inter-node messages: the envelope must be
signed by a member of this federation and fresh, and its nonce unseen. A member
is one of the signed roster (the founder, the members that compute, and input-only
members of rosters from before admissions) or a household admitted by the
founder's signed admission (``directory``, in memory); ``member``/``signing_key``
look in that order, and ``resolve`` also asks, on a member that keeps the admission
log, the founder (rate-limited) for a sender not known yet.
Rejections are logged with the sender and reason only, never the body.

The nonce memory lives in RAM for the envelope age window. After a restart an
old envelope could be replayed within that window, which is harmless because
every state change a message causes is idempotent (shares are keyed by
(task, round, sender) with a digest, results and rosters are first-wins or
versioned, and a member answers a round for one contributor set only).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpc_backend.crypto import AuthError, NodeKeys, verify_envelope
from mpc_backend.crypto.envelope import check_authenticated_envelope
from mpc_backend.relay.settings import RelaySettings
from mpc_backend.storage import Storage

from .config import NodeConfig
from .directory import AdmissionDirectory
from .errors import Conflict, Forbidden, NotFound
from .peers import Handler, Peers
from .roster import MemberInfo, Roster, SignedRoster

MAX_MESSAGE_AGE_S = 300.0
# How long a pushed, self-authenticating document (a co-signed result, a founder-signed
# roster) stays deliverable: the relay queues it for a member that is offline.
DELIVERY_MAX_AGE_S = 7 * 24 * 3600.0
log = logging.getLogger("mpc_backend.node")


class ReplayGuard:
    """Remembers (sender, nonce) pairs for the message age window."""

    def __init__(self, window_s: float = 2 * MAX_MESSAGE_AGE_S, limit: int = 1_000_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._window = window_s
        self._limit = limit

    def seen(self, sender: str, nonce: str) -> bool:
        return (sender, nonce) in self._seen

    def check_and_add(self, sender: str, nonce: str, now: float) -> bool:
        """False if this nonce was already seen from this sender."""
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if seen_at >= now - self._window and len(self._seen) < self._limit:
                break
            del self._seen[key]
        key = (sender, nonce)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


@dataclass
class NodeContext:
    data_dir: Path
    config: NodeConfig
    keys: NodeKeys
    storage: Storage
    peers: Peers
    clock: Callable[[], float] = time.time
    signed_roster: SignedRoster | None = None
    founder_public: bytes | None = None
    replay: ReplayGuard = field(default_factory=ReplayGuard)
    relay: RelaySettings | None = None  # this node's broker account, in a relay federation
    relay_handler: Handler | None = None  # answers peer requests that come by relay
    # Fetches admissions from the founder when a sender is unknown (set by the federation
    # service on a node that keeps the admission log; None elsewhere).
    admissions_catch_up: Callable[[], Awaitable[None]] | None = None
    directory: AdmissionDirectory = field(init=False)

    def __post_init__(self) -> None:
        # The peer client signs every request with this node's keys, dated by its clock.
        self.peers.keys = self.keys
        self.peers.clock = self.clock
        self.directory = AdmissionDirectory(self.storage)

    @property
    def node_id(self) -> str:
        return self.keys.node_id

    @property
    def roster(self) -> Roster:
        """The current roster; NotFound if this node has not joined a federation."""
        if self.signed_roster is None:
            raise NotFound(
                "this node is not in a federation yet; run mpc-backend federation create "
                "or mpc-backend join TOKEN",
                code="no_federation",
            )
        return self.signed_roster.roster

    @property
    def federation_id(self) -> str:
        return self.roster.federation_id

    @property
    def is_founder(self) -> bool:
        return self.signed_roster is not None and self.roster.founder == self.node_id

    def member(self, node_id: str) -> MemberInfo | None:
        """A member of the roster, else an admitted household this node knows (in memory)."""
        if self.signed_roster is not None:
            member = self.signed_roster.roster.member(node_id)
            if member is not None:
                return member
        return self.directory.get(node_id)

    def signing_key(self, node_id: str) -> bytes | None:
        member = self.member(node_id)
        return member.signing_public if member else None

    async def resolve(self, node_id: str) -> MemberInfo | None:
        """``member``, also asking the founder (single-flight, rate-limited) for admissions
        this node has not seen yet; None if still unknown. Not storage: this process holds
        every admission it stored (it loads them at start and alone writes them)."""
        if not node_id:
            return None
        member = self.member(node_id)
        if member is None and self.admissions_catch_up is not None:
            await self.directory.catch_up(self.admissions_catch_up)
            member = self.directory.get(node_id)
        return member

    def me(self) -> MemberInfo:
        """This node's member record: behind a relay it has a mailbox and no URL, so no
        member ever tries to connect to it."""
        if self.relay is not None:
            return MemberInfo.of_keys(self.keys, self.config.name, None, self.config.capacity,
                                      self.config.input_only, self.relay.account.username)
        return MemberInfo.of_keys(self.keys, self.config.name, self.config.peer_url,
                                  self.config.capacity, self.config.input_only)

    def verify(
        self,
        envelope: Any,
        msg_type: str,
        lookup: Callable[[str], bytes | None] | None = None,
        *,
        remote: str | None = None,
        remember: bool = True,
        max_age_s: float = MAX_MESSAGE_AGE_S,
        authenticated_by: str | None = None,
    ) -> dict[str, Any]:
        """Body of an authentic, fresh, first-seen envelope; Forbidden or Conflict otherwise.

        ``remember=False`` checks the nonce without recording it: for messages any
        key pair can sign (a join), the caller records it once the message is
        accepted, so strangers cannot fill the replay memory. ``authenticated_by``: the
        member whose verified request signature covers these exact bytes
        (``check_authenticated_envelope``); the envelope must name it as its sender.
        """
        federation = self.federation_id
        try:
            if authenticated_by is not None:
                body = check_authenticated_envelope(envelope, authenticated_by, msg_type,
                                                    federation, max_age_s, now=self.clock())
            else:
                body = verify_envelope(
                    envelope,
                    lookup or self.signing_key,
                    msg_type,
                    federation,
                    max_age_s,
                    now=self.clock(),
                )
        except AuthError as err:
            sender = envelope.get("sender") if isinstance(envelope, dict) else None
            log.warning(
                "rejected %s message from %s (%s): %s: %s",
                msg_type, sender if isinstance(sender, str) else "?", remote or "?",
                type(err).__name__, err,
            )
            raise Forbidden(str(err), code="auth_failed") from None
        sender, nonce = envelope["sender"], envelope["nonce"]
        if remember:
            fresh = self.replay.check_and_add(sender, nonce, self.clock())
        else:
            fresh = not self.replay.seen(sender, nonce)
        if not fresh:
            log.warning("rejected replayed %s message from %s", msg_type, sender)
            raise Conflict(
                f"replayed {msg_type} message (nonce already seen)", code="replay"
            )
        return body
