"""The misbehaviours: each function patches one piece of an otherwise honest node.

Every patch logs ``EVIL <name>`` when it acts, so a test can tell the attack was
really attempted (a defence that is never exercised proves nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from mpc_backend.api import server
from mpc_backend.crypto import NodeKeys
from mpc_backend.crypto.sealing import SEED_BYTES, SUITE_X25519
from mpc_backend.node import federation

log = logging.getLogger("mpc_backend.evil")


def declare_member(**fields: Any) -> None:
    """The member record in this node's join request declares ``fields`` (capacity, url...),
    and the node proves its invite for that record, as a modified node would."""
    honest = federation.join_proof

    def prove(secret: str, federation_id: str, member: dict[str, Any]) -> dict[str, str]:
        log.warning("EVIL declare_member: the join declares %s", fields)
        member.update(fields)  # the very record the join request carries
        return honest(secret, federation_id, member)

    federation.join_proof = prove


def classical_hpke() -> None:
    """The node presents a classical X25519 HPKE key, as a build without ML-KEM would."""
    honest = server.load_keys

    def load(data_dir: Path) -> NodeKeys:
        keys = honest(data_dir)
        log.warning("EVIL classical_hpke: presenting an X25519 HPKE key")
        return NodeKeys(keys._signing.private_bytes_raw(), SUITE_X25519,
                        secrets.token_bytes(SEED_BYTES))

    server.load_keys = load


def claim_node_id(node_id: str) -> None:
    """The node's status claims another node's id, as an impostor that wants a Home Assistant
    entry made for that node to follow it (and send it the home's readings) would."""
    from mpc_backend.node.node import Node  # noqa: PLC0415

    honest = Node.status

    async def status(self: Any, households: bool = False) -> dict[str, Any]:
        answer = await honest(self, households)
        log.warning("EVIL claim_node_id: status claims node id %s", node_id)
        answer["identity"]["node_id"] = node_id
        return answer

    Node.status = status  # type: ignore[method-assign]


# -- round-close attacks (a committee member) -------------------------------------------------
# These reach the node's RoundService through a patched constructor, then act from a loop
# spawned by the patched scheduler: the rest of the node stays the honest code.

def _attach(act: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``act(round_service)`` beside the honest scheduler loop."""
    from mpc_backend.node import rounds  # noqa: PLC0415

    honest_loop = rounds.RoundService.scheduler_loop

    async def scheduler_loop(self: Any) -> None:
        await asyncio.gather(honest_loop(self), act(self))

    rounds.RoundService.scheduler_loop = scheduler_loop  # type: ignore[method-assign]


async def _each_round_end(service: Any, lead_s: float) -> AsyncIterator[tuple[Any, int]]:
    """Yield (task spec, round) ``lead_s`` after each round of every task ends."""
    seen: set[tuple[str, int]] = set()
    while True:
        await asyncio.sleep(0.05)
        if service.ctx.signed_roster is None:
            continue
        now = service.ctx.clock()
        for rtask in service.ctx.roster.tasks:
            spec = rtask.spec
            round_id = int((now - lead_s) // spec.period_s) - 1
            key = (spec.task_id, round_id)
            if round_id >= rtask.first_round() and key not in seen:
                seen.add(key)
                try:
                    seats = [m.node_id for m in service.ctx.roster.committee(*key)]
                except ValueError:
                    continue
                if service.ctx.node_id in seats:
                    yield spec, round_id


async def _attack_each_round(service: Any, lead_s: float, name: str,
                             attack: Callable[[Any, Any, int], Awaitable[None]]) -> None:
    """Run ``attack(service, spec, round)`` ``lead_s`` after each round ends, every task's
    round in its own asyncio task: one after another, a later task's attack could start
    after the honest close had already settled its round (a race no test must run)."""
    running: set[asyncio.Task[None]] = set()

    def done(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("EVIL %s: %s: the attack failed: %r", name, task.get_name(),
                        task.exception())

    try:
        async for spec, round_id in _each_round_end(service, lead_s):
            task = asyncio.create_task(attack(service, spec, round_id),
                                       name=f"{spec.task_id} round {round_id}")
            running.add(task)
            task.add_done_callback(done)
    finally:
        for task in list(running):
            task.cancel()


def capture_set() -> None:
    """Choose the contributor set: sign a held statement naming only min_contributors - 1
    victims and itself, forward it with t honest statements (so the rule yields exactly that
    set), and ask the committee for partial sums right at the round's end."""
    from mpc_backend.node import rounds  # noqa: PLC0415
    from mpc_backend.node.statements import seed_commitment, sign_held  # noqa: PLC0415

    async def own_statement(self: Any, spec: Any, round_id: int) -> dict[str, Any]:
        stored = await self.ctx.storage.get_held_statement(spec.task_id, round_id)
        if stored is None:
            held = await self.ctx.storage.held_senders(spec.task_id, round_id)
            victims = sorted(s for s in held if s != self.ctx.node_id)
            lie = sorted([*victims[: spec.min_contributors - 1], self.ctx.node_id])
            seed = await self._verify_seed(spec, round_id)
            wire = sign_held(self.ctx.keys, self.ctx.federation_id, spec.task_id,
                             round_id, lie, seed_commitment(seed))
            stored = await self.ctx.storage.put_held_statement(spec.task_id, round_id, wire,
                                                               self.ctx.clock())
            log.warning("EVIL capture_set: signed a held statement naming %d senders", len(lie))
        return stored

    honest_collect = rounds.RoundService._collect_statements

    async def collect(self: Any, spec: Any, round_id: int, committee: Any,
                      answers: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        wires, held = await honest_collect(self, spec, round_id, committee, answers)
        me = self.ctx.node_id
        keep = [me, *[m for m in sorted(held) if m != me][: spec.t]]
        log.warning("EVIL capture_set: %s round %d: forwarding %d of %d statements",
                    spec.task_id, round_id, len(keep), len(held))
        return {m: wires[m] for m in keep if m in wires}, {m: held[m] for m in keep if m in held}

    async def close_early(service: Any, spec: Any, round_id: int) -> None:
        await service.close_round(spec.task_id, round_id)

    rounds.RoundService._own_statement = own_statement  # type: ignore[method-assign]
    rounds.RoundService._collect_statements = collect  # type: ignore[method-assign]
    _attach(lambda service: _attack_each_round(service, 0.2, "capture_set", close_early))


def stall() -> None:
    """Keep every round undecided: from the round's end, ask each committee member for its
    held statement every half second (refreshing a coordinator's claim) and never go on."""
    from mpc_backend.crypto import sign_envelope  # noqa: PLC0415

    async def nag(service: Any, spec: Any, round_id: int) -> None:
        committee = service.ctx.roster.committee(spec.task_id, round_id)
        body = {"task": spec.task_id, "round": round_id}
        for _ in range(int(60 / 0.5)):
            for member in committee:
                if (member.node_id == service.ctx.node_id
                        or not service.ctx.peers.reachable(member)):
                    continue

                def envelope() -> dict[str, Any]:
                    return sign_envelope(service.ctx.keys, "round-held",
                                         service.ctx.federation_id, body,
                                         now=service.ctx.clock())
                with contextlib.suppress(Exception):
                    await service.ctx.peers.post(member, "/peer/v1/round/held", envelope,
                                                 attempts=1)
            log.warning("EVIL stall: refreshed claims on %s round %d", spec.task_id, round_id)
            await asyncio.sleep(0.5)

    async def no_close(self: Any, task_id: str, round_id: int) -> None:
        return None  # the staller never closes a round itself

    from mpc_backend.node import rounds  # noqa: PLC0415

    rounds.RoundService.close_round = no_close  # type: ignore[method-assign]
    _attach(lambda service: _attack_each_round(service, 0.05, "stall", nag))


def forge_results(contributors: int = 40, mean: float = 35.0) -> None:
    """Push a result signed by itself alone ("40 contributors, mean 35.0") for the round that
    just ended, for the round now open and for one three rounds ahead; and ask the honest
    members to co-sign a doctored document for the ended round."""
    from mpc_backend.crypto import sign_envelope  # noqa: PLC0415
    from mpc_backend.node import results as results_mod  # noqa: PLC0415

    async def forge(service: Any, spec: Any, round_id: int) -> None:
        for target in (round_id, round_id + 1, round_id + 4):
            doc = service._doc(spec, target, "released", contributors=contributors,
                               statistics={"count": contributors, "mean": mean},
                               senders=[f"{i:032x}" for i in range(contributors)])
            wire = {"result": doc,
                    "sigs": {service.ctx.node_id: results_mod.sign_result(service.ctx, doc)}}
            for member in service.ctx.roster.members:
                if (not service.ctx.peers.reachable(member)
                        or member.node_id == service.ctx.node_id):
                    continue

                def push(w: dict[str, Any] = wire) -> dict[str, Any]:
                    return sign_envelope(service.ctx.keys, "result",
                                         service.ctx.federation_id, {"result": w},
                                         now=service.ctx.clock())
                try:
                    await service.ctx.peers.post(member, "/peer/v1/results", push,
                                                 attempts=1)
                except Exception as err:
                    log.warning("EVIL forge_results: %s refused round %d: %s",
                                member.name, target, err)
        committee = service.ctx.roster.committee(spec.task_id, round_id)
        doc = service._doc(spec, round_id, "released", contributors=contributors,
                           statistics={"count": contributors, "mean": mean},
                           senders=[f"{i:032x}" for i in range(contributors)])
        answers = await service._ask_all(
            [m for m in committee if m.node_id != service.ctx.node_id], "sign",
            {"task": spec.task_id, "round": round_id, "doc": doc, "partials": {}})
        log.warning("EVIL forge_results: %s round %d: %d member(s) co-signed the doctored "
                    "result", spec.task_id, round_id, len(answers))

    _attach(lambda service: _attack_each_round(service, 0.1, "forge_results", forge))


def two_randomness() -> None:
    """Try to read every report: at the round's end, before the honest close, ask each other
    committee member to reveal its seed for a set of two statements (its own and mallory's)
    and to verify under it, a different set (hence randomness) per member. Two verifier
    messages of one report, with mallory's own verifier shares, would tell its reading."""
    async def split_round(service: Any, spec: Any, round_id: int) -> None:
        me = service.ctx.node_id
        committee = service.ctx.roster.committee(spec.task_id, round_id)
        base = {"task": spec.task_id, "round": round_id}
        mine = await service._own_statement(spec, round_id)
        seed = (await service._verify_seed(spec, round_id)).hex()
        got = 0
        others = [(seat, m) for seat, m in enumerate(committee) if m.node_id != me]
        for seat, member in others:
            held = await service._ask_all([member], "held", base, seats=[seat])
            if seat not in held:
                continue
            statements = [mine, held[seat].body["statement"]]
            reveal = await service._ask_all([member], "reveal",
                                            {**base, "statements": statements}, seats=[seat])
            if seat not in reveal:
                continue
            seeds = {me: seed, member.node_id: reveal[seat].body["seed"]}
            verified = await service._ask_all(
                [member], "verify", {**base, "statements": statements, "seeds": seeds},
                seats=[seat])
            got += seat in verified
        log.warning("EVIL two_randomness: %s round %d: verifier shares from %d of %d members, "
                    "each under its own randomness", spec.task_id, round_id, got, len(others))

    async def no_close(self: Any, task_id: str, round_id: int) -> None:
        return None  # its own (quick) honest close must not beat the attack to the round

    from mpc_backend.node import rounds  # noqa: PLC0415

    rounds.RoundService.close_round = no_close  # type: ignore[method-assign]
    _attach(lambda service: _attack_each_round(service, 0.2, "two_randomness", split_round))


def lying_verifier() -> None:
    """Misreport this member's verifier shares for every report but the first sender's and
    its own, so that they look inconsistent and leave the set: shrinking it to a victim."""
    import numpy as np  # noqa: PLC0415

    from mpc_backend.arith import P  # noqa: PLC0415
    from mpc_backend.node import round_steps  # noqa: PLC0415

    honest = round_steps.CommitteeMember._my_verifier

    async def my_verifier(self: Any, spec: Any, round_id: int, senders: list[str],
                          joint: bytes) -> Any:
        shares = honest(self, spec, round_id, senders, joint)
        shares = np.array(await shares)
        lied = [i for i, s in enumerate(senders) if i > 0 and s != self.ctx.node_id]
        for i in lied:
            shares[i, 3] = (int(shares[i, 3]) + 1) % P
        log.warning("EVIL lying_verifier: misreported %d of %d reports", len(lied), len(senders))
        return shares

    round_steps.CommitteeMember._my_verifier = my_verifier  # type: ignore[method-assign]


# -- household attacks: a report the household's own node should never have produced ---------

def lying_household() -> None:
    """Replace the encoded report before it is proved and shared, per task (the task id names
    the lie), and prove the altered report as well as a prover can: the circuit's witness
    is taken from q's low bits whatever q is, so the proof is honest about a dishonest input.
    ``*_shares`` tasks keep the report but hand one seat a share off the polynomial."""
    import numpy as np  # noqa: PLC0415

    from mpc_backend.arith import P  # noqa: PLC0415
    from mpc_backend.node import household  # noqa: PLC0415
    from mpc_backend.protocol import validity  # noqa: PLC0415

    honest_prove, honest_witness = validity.prove, validity._witness
    honest_share = household.shamir_share

    def any_witness(circ: Any, report: Any) -> Any:
        if circ.q is None:
            return np.zeros(0, np.uint64)
        q = int(report[circ.q])
        values = [q, q + circ.offset] if circ.offset else [q]
        return np.array([(v >> i) & 1 for v in values for i in range(circ.bits)], np.uint64)

    def lie(spec: Any, vector: Any) -> Any:
        layout = validity.circuit(spec)
        out = vector.copy()
        kind = spec.task_id.removeprefix("liar_")
        if kind in ("count", "dp"):
            out[layout.count] = 1000  # the reading as a thousand households
        elif kind in ("range", "negative"):
            q = 2 * spec.levels if kind == "range" else P - 800
            out[layout.q] = q
            out[layout.q2] = q * q % P
        elif kind == "squares":
            out[layout.q2] = (int(out[layout.q2]) + 12345) % P
        elif kind == "buckets":
            for index in layout.buckets:
                out[index] = 1
        if kind != "shares":
            log.warning("EVIL lying_household: %s report for %s", kind, spec.task_id)
        return out

    off_polynomial = {"next": False}  # seal_vector shares right after it proves

    def prove(spec: Any, vector: Any, rng: Any) -> Any:
        off_polynomial["next"] = spec.task_id == "liar_shares"
        validity._witness = any_witness
        try:
            return honest_prove(spec, lie(spec, vector), rng)
        finally:
            validity._witness = honest_witness

    def shamir_share(vector: Any, t: int, k: int, rng: Any) -> Any:
        shares = honest_share(vector, t, k, rng)
        if off_polynomial["next"]:
            shares[k - 1][0] = (int(shares[k - 1][0]) + 1) % P
            log.warning("EVIL lying_household: a share off the polynomial")
        return shares

    household.prove = prove
    household.shamir_share = shamir_share


# -- admissions ---------------------------------------------------------------------------

def forge_admissions() -> None:
    """Once in the federation, admit a made-up household by records this member signs itself
    (one for this federation, one naming another) and push them to every other member that
    computes, as the founder pushes admissions."""
    from mpc_backend.crypto import sign_envelope  # noqa: PLC0415
    from mpc_backend.node.admission import sign_admission  # noqa: PLC0415
    from mpc_backend.node.peers import PeerError  # noqa: PLC0415
    from mpc_backend.node.roster import MemberInfo  # noqa: PLC0415

    async def forge(service: Any) -> None:
        ctx = service.ctx  # restarted as a member: the roster is loaded before loops start
        fake = MemberInfo.of_keys(NodeKeys.generate(), "phantom", None, 1.0, True)
        wires = [sign_admission(ctx.keys, federation_id, 1, fake, ctx.clock()).wire()
                 for federation_id in (ctx.federation_id, "0" * 32)]
        for member in ctx.roster.members:
            if member.input_only or member.node_id == ctx.node_id:
                continue

            def push() -> dict[str, Any]:
                return sign_envelope(ctx.keys, "admissions", ctx.federation_id,
                                     {"admissions": wires}, now=ctx.clock())

            try:
                answer: Any = await ctx.peers.post(member, "/peer/v1/admissions", push,
                                                   attempts=1)
            except PeerError as err:  # the refusal is what the test looks for
                answer = repr(err)
            log.warning("EVIL forge_admissions: pushed phantom %s to %s: %s", fake.node_id,
                        member.name, answer)

    _attach(forge)


def lying_admission_acks() -> None:
    """Take the founder's admission pushes as an honest member does, but answer each with a
    seq that goes back and forth (1, 0, 1, ...), as a member that wants the founder to send
    the log over and over would."""
    honest = federation.FederationService.handle_admissions_push
    answers = itertools.cycle((1, 0))

    async def handle(self: Any, envelope: Any, remote: str | None) -> dict[str, Any]:
        await honest(self, envelope, remote)
        seq = next(answers)
        log.warning("EVIL lying_admission_acks: answered a push with seq %d", seq)
        return {"seq": seq}

    federation.FederationService.handle_admissions_push = handle  # type: ignore[method-assign]


def shares_as_stranger() -> None:
    """The household (admitted under its own id) signs its shares with a key the founder
    never admitted, as a node passing off contributions of made-up households would."""
    from mpc_backend.node import household  # noqa: PLC0415

    honest = household.shares_envelope
    stranger = NodeKeys.generate()

    def envelope(keys: NodeKeys, *args: Any, **kwargs: Any) -> dict[str, Any]:
        log.warning("EVIL shares_as_stranger: signing shares as %s", stranger.node_id)
        return honest(stranger, *args, **kwargs)

    household.shares_envelope = envelope


def impersonate_household(victim: str) -> None:
    """The household's shares go out in ``victim``'s name: each sealed to the share context
    naming the victim (so it would open at the committee), in an envelope naming the victim
    as its sender, carried by requests this node signs as itself, the only key it has."""
    from mpc_backend.node import household  # noqa: PLC0415

    honest_seal, honest_envelope = household.seal_vector, household.shares_envelope

    class Posing:
        """This node's keys, answering to the victim's id."""

        node_id = victim

        def __init__(self, keys: NodeKeys) -> None:
            self._keys = keys

        def __getattr__(self, name: str) -> Any:
            return getattr(self._keys, name)

    def seal_vector(keys: NodeKeys, *args: Any) -> Any:
        return honest_seal(Posing(keys), *args)

    def shares_envelope(keys: NodeKeys, *args: Any, **kwargs: Any) -> dict[str, Any]:
        envelope = honest_envelope(keys, *args, **kwargs)
        envelope["sender"] = victim
        log.warning("EVIL impersonate_household: shares in %s's name", victim)
        return envelope

    household.seal_vector = seal_vector
    household.shares_envelope = shares_envelope


# -- channel attacks (a member that is offered channels, and a household with its own) -------

async def _post_as(ctx: Any, member: Any, path: str, envelope: dict[str, Any], sender: str,
                   channel: Any = None) -> str:
    """POST ``envelope`` to ``member`` with ``sender`` in Hearth-Sender (and ``channel``'s MAC,
    if any, else this node's signature), over the node's transport; the outcome as text.
    Over the relay an answer sealed to another sender does not open here: "unreadable"."""
    from mpc_backend.node.peers import PeerClient, PeerRejected, Peers  # noqa: PLC0415

    class Posing:
        node_id = sender

        def __getattr__(self, name: str) -> Any:
            return getattr(ctx.keys, name)

    peers = Peers(ctx.peers.timing)
    peers.direct = PeerClient(ctx.peers.timing, Posing(), ctx.clock)  # type: ignore[arg-type]
    peers.relay = ctx.peers.relay
    await peers.direct.start()
    try:
        await peers.post(member, path, lambda: envelope, attempts=1, timeout_s=1.0,
                         channel=channel)
        return "200"
    except PeerRejected as err:
        return f"{err.status} {err.code}"
    except Exception as err:  # e.g. an answer sealed to the one posed as does not open
        return f"unreadable ({type(err).__name__})"
    finally:
        peers.relay = None
        await peers.direct.close()


async def _offer(ctx: Any, member: Any, channel: str, secret: bytes, expires: int) -> str:
    """This node's own signed offer of a new channel to ``member``; the outcome as text."""
    from mpc_backend.crypto import b64url_encode, sign_envelope  # noqa: PLC0415
    from mpc_backend.crypto.channel import offer_aad  # noqa: PLC0415
    from mpc_backend.crypto.sealing import seal_share  # noqa: PLC0415

    fed = ctx.federation_id
    ct = seal_share(member.hpke_public, member.hpke_suite, secret,
                    offer_aad(fed, ctx.node_id, member.node_id, channel, expires))
    envelope = sign_envelope(ctx.keys, "channel", fed,
                             {"member": member.node_id, "channel": channel, "expires": expires,
                              "ct": b64url_encode(ct)}, now=ctx.clock())
    return await _post_as(ctx, member, "/peer/v1/channel", envelope, ctx.node_id)


def _forged_shares(ctx: Any, task: str, victim: str, member: Any, channel: Any) -> dict[str, Any]:
    """An unsigned shares envelope in ``victim``'s name for ``member``: a report of 40 sealed
    under ``channel`` to the share context naming the victim, as the victim's node would."""
    from mpc_backend.crypto.envelope import request_envelope  # noqa: PLC0415
    from mpc_backend.node import household  # noqa: PLC0415

    class Posing:
        node_id = victim

    rtask = ctx.roster.task(task)
    spec = rtask.spec
    round_id = max(household.round_of(spec, ctx.clock()), rtask.first_round())
    committee = ctx.roster.committee(task, round_id)
    seats = [channel if m.node_id == member.node_id else None for m in committee]
    sealed = household.seal_report(Posing(), ctx.federation_id, spec, round_id, committee, 40.0,
                                   household.FieldRNG(), seats)
    ct = sealed[[m.node_id for m in committee].index(member.node_id)]
    body = {"items": [{"task": task, "round": round_id,
                       "ct": household.b64url_encode(ct)}]}
    return request_envelope(victim, "shares", ctx.federation_id, body, now=ctx.clock())


def channel_attacks(task: str = "chan") -> None:
    """Every channel attack of tests/adversarial/test_channel_attacks.py in one member:

    * offered a channel by a household H, it first (before H hears back, so before H sends
      any share) forwards H's offer to every other member, and sends each of them a report
      in H's name over H's channel with this node (its id, its secret, keys derived for that
      member);
    * at start, as a household: over its own channel to one member it sends shares naming
      ``victim`` as the sender (in Hearth-Sender; then, in the envelope only), and offers one
      member channel after channel, then another member many at once (the victim: the
      founder);
    * it answers every share delivered over a channel (stored honestly) with a wrong ack:
      a MAC'd ack of other items, a signed ack, a bad MAC, in turn.
    """
    from mpc_backend.crypto import b64url_decode, b64url_encode, sign_envelope  # noqa: PLC0415
    from mpc_backend.crypto import channel as channels  # noqa: PLC0415
    from mpc_backend.node import ingest  # noqa: PLC0415
    from mpc_backend.node.channels import ChannelService  # noqa: PLC0415

    honest_offer = ChannelService.handle_offer
    attacked: set[str] = set()

    async def handle_offer(self: Any, envelope: Any, remote: str | None) -> dict[str, Any]:
        answer = await honest_offer(self, envelope, remote)
        ctx, sender, cid = self.ctx, envelope["sender"], answer["channel"]
        if sender in attacked:
            return answer
        attacked.add(sender)
        stolen = await ctx.storage.get_channel("in", sender, cid)
        for member in ctx.roster.members:
            if member.node_id in (sender, ctx.node_id) or member.input_only:
                continue
            forwarded = await _post_as(ctx, member, "/peer/v1/channel", envelope, ctx.node_id)
            log.warning("EVIL channel_attacks: forwarded %s's offer of channel %s to %s: %s",
                        sender, cid, member.name, forwarded)
            keys = channels.derive(stolen.secret, ctx.federation_id, sender, member.node_id,
                                   cid, int(stolen.expires))
            shares = _forged_shares(ctx, task, sender, member, keys)
            outcome = await _post_as(ctx, member, "/peer/v1/shares", shares, sender, keys)
            log.warning("EVIL channel_attacks: shares in %s's name to %s over its channel %s: %s",
                        sender, member.name, cid, outcome)
        return answer

    honest_shares = ingest.IngestService.handle_shares
    modes = itertools.cycle(("other_items", "signed", "bad_mac"))

    async def handle_shares(self: Any, envelope: Any, remote: str | None,
                            preauth: Any = None) -> dict[str, Any]:
        answer = await honest_shares(self, envelope, remote, preauth)
        channel = preauth.channel if preauth else None
        if channel is None:
            return answer
        acked, mode = dict(answer["ack"]), next(modes)
        if mode == "other_items":
            acked["items"] = [[t, r + 1, d] for t, r, d in acked["items"]]
            answer = {"ack": acked, "mac": b64url_encode(channels.ack_mac(channel, acked))}
        elif mode == "signed":
            answer = {"ack": sign_envelope(self.ctx.keys, "shares-ack", self.ctx.federation_id,
                                           acked, now=self.ctx.clock())}
        else:
            mac = bytearray(b64url_decode(answer["mac"]))
            mac[0] ^= 1
            answer = {"ack": acked, "mac": b64url_encode(bytes(mac))}
        log.warning("EVIL channel_attacks: answered %s's channel delivery with a %s ack",
                    envelope["sender"], mode)
        return answer

    async def as_household(service: Any) -> None:
        ctx = service.ctx
        while True:  # joined, and the task added
            await asyncio.sleep(0.2)
            if ctx.signed_roster is not None and ctx.roster.task(task) is not None:
                break
        victim = ctx.roster.founder
        others = [m for m in ctx.roster.members if m.node_id not in (ctx.node_id, victim)
                  and not m.input_only]
        target, flooded, burst = ctx.roster.member(victim), others[0], others[1]
        mine = ChannelService(ctx)
        own = None
        for _ in range(100):  # the first call offers one in the background
            own = await mine.outbound(target, ctx.clock() + 600)
            if own is not None:
                break
            await asyncio.sleep(0.1)
        assert own is not None, "no channel of its own"
        named = _forged_shares(ctx, task, ctx.node_id, target, own)
        named["sender"] = victim  # the victim's name in the envelope, this node's request
        log.warning("EVIL channel_attacks: own channel %s, %s in the envelope: %s", own.channel,
                    victim, await _post_as(ctx, target, "/peer/v1/shares", named, ctx.node_id,
                                           own))
        named = _forged_shares(ctx, task, victim, target, own)
        log.warning("EVIL channel_attacks: own channel %s, %s in Hearth-Sender: %s", own.channel,
                    victim, await _post_as(ctx, target, "/peer/v1/shares", named, victim, own))
        expires = int(ctx.clock()) + 3600
        for _ in range(11):
            outcome = await _offer(ctx, flooded, channels.new_channel_id(),
                                   channels.new_secret(), expires)
            log.warning("EVIL channel_attacks: flood offer to %s: %s", flooded.name, outcome)
        outcomes = await asyncio.gather(*(
            _offer(ctx, burst, channels.new_channel_id(), channels.new_secret(), expires)
            for _ in range(24)))
        log.warning("EVIL channel_attacks: burst of %d offers to %s: %d accepted",
                    len(outcomes), burst.name, outcomes.count("200"))
        log.warning("EVIL channel_attacks: household attacks done")

    ChannelService.handle_offer = handle_offer  # type: ignore[method-assign]
    ingest.IngestService.handle_shares = handle_shares  # type: ignore[method-assign]
    _attach(as_household)


def evil_forwarder(mode: str) -> None:
    """As a committee member, pass households' uploads on dishonestly (``mode``): ``drop``
    them, ``alter`` every request body by a byte, ``replay`` each (send it on twice),
    ``forge`` an ack for each in its member's name instead of sending it on, answer
    ``garbage`` in their place, or stay ``silent`` past the household's timeout."""
    from mpc_backend.crypto import b64url_decode, b64url_encode, sign_envelope  # noqa: PLC0415
    from mpc_backend.node import forwarding  # noqa: PLC0415

    honest = forwarding.Forwarder.forward

    def forged(self: Any, entry: Any) -> dict[str, Any]:
        envelope = json.loads(b64url_decode(entry.body))
        acked = {"household": envelope["sender"], "duplicate": False, "items": [
            [i["task"], i["round"], hashlib.sha256(b64url_decode(i["ct"])).hexdigest()]
            for i in envelope["body"]["items"]]}
        if envelope["sig"]:  # signed: the best it can sign with is its own key
            return {"ack": sign_envelope(self.ctx.keys, "shares-ack",
                                         self.ctx.federation_id, acked)}
        return {"ack": acked, "mac": b64url_encode(secrets.token_bytes(32))}

    async def forward(self: Any, entries: list[Any]) -> list[dict[str, Any]]:
        log.warning("EVIL evil_forwarder %s: %d request(s) to %s", mode, len(entries),
                    ", ".join(e.to for e in entries))
        if mode == "drop":
            return []
        if mode == "garbage":
            return [{"to": []}, {"to": entries[0].to, "status": 200, "answer": "ok"},
                    *({"to": e.to, "status": "200", "answer": {"ack": []}} for e in entries)]
        if mode == "silent":
            await asyncio.sleep(3 * self.ctx.config.timing.peer_timeout_s)
            return []
        if mode == "forge":
            return [{"to": e.to, "status": 200, "answer": forged(self, e)} for e in entries]
        if mode == "alter":
            return await honest(self, [forwarding.Forward(
                e.to, e.headers, b64url_encode(b64url_decode(e.body) + b" ")) for e in entries])
        first = await honest(self, entries)
        log.warning("EVIL evil_forwarder replay: %s", [a["status"] for a in
                                                       await honest(self, entries)])
        return first

    forwarding.Forwarder.forward = forward  # type: ignore[method-assign]
