"""What a requester accepts as a relayed answer: only one sealed to it, for this request and
this status; anything else counts as no answer (it may come from the broker)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from mpc_backend.crypto import DecryptionError, NodeKeys
from mpc_backend.crypto import channel as ch
from mpc_backend.crypto.channel import CHANNEL_HEADER
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.node.config import Timing
from mpc_backend.node.peers import SIGNATURE_HEADER, Peers, UnverifiedAnswer
from mpc_backend.node.roster import MemberInfo
from mpc_backend.relay.sealed import answer_aad, request_aad
from mpc_backend.relay.transport import RelayAnswer

FED = "f" * 32
PATH = "/peer/v1/round/partial"


@dataclass
class _Relay:
    federation_id: str = FED


def _setup() -> tuple[Peers, MemberInfo, dict[str, str], NodeKeys]:
    me, them = NodeKeys.generate(), NodeKeys.generate()
    peers = Peers(Timing())
    peers.keys = me
    target = MemberInfo.of_keys(them, "them", None, 1.0, False, "h-them")
    return peers, target, {SIGNATURE_HEADER: "sig-of-the-request"}, me


def _sealed(me: NodeKeys, target: MemberInfo, status: int, doc: dict[str, object],
            signature: str = "sig-of-the-request") -> bytes:
    return seal_share(me.hpke_public, me.hpke_suite, json.dumps(doc).encode(),
                      answer_aad(FED, PATH, target.node_id, me.node_id, signature, status))


def test_a_sealed_answer_for_this_request_and_status_opens() -> None:
    peers, target, headers, me = _setup()
    answer = RelayAnswer(200, _sealed(me, target, 200, {"reply": 1}), sealed=True)
    assert peers.open_answer(_Relay(), target, PATH, headers, answer, True) == {"reply": 1}  # type: ignore[arg-type]


@pytest.mark.parametrize("forgery", ["unsealed_refusal", "unsealed_success", "status_changed",
                                     "other_request"])
def test_what_the_broker_could_forge_counts_as_no_answer(forgery: str) -> None:
    peers, target, headers, me = _setup()
    genuine_409 = _sealed(me, target, 409, {"error": {"code": "committed_elsewhere"}})
    answer = {
        # a refusal the broker made up, e.g. to abort a round close
        "unsealed_refusal": RelayAnswer(409, b'{"error":{"code":"committed_elsewhere"}}'),
        "unsealed_success": RelayAnswer(200, b'{"rotated":true}'),
        # a genuine sealed refusal relabelled as a success, and the reverse
        "status_changed": RelayAnswer(200, genuine_409, sealed=True),
        # a genuine answer to another request
        "other_request": RelayAnswer(200, _sealed(me, target, 200, {"reply": 1}, "other"),
                                     sealed=True),
    }[forgery]
    with pytest.raises(UnverifiedAnswer):
        peers.open_answer(_Relay(), target, PATH, headers, answer, True)  # type: ignore[arg-type]


def test_over_a_channel_request_and_answer_are_sealed_under_it() -> None:
    """A household's relayed shares go sealed under its channel with the member, not to the
    member's key; the answer opens under the channel for exactly this request and status
    (an answer under another channel does not), and a refusal the member made before it
    found the channel, HPKE-sealed to the household, still opens."""
    peers, target, _, me = _setup()
    path = "/peer/v1/shares"
    secret, cid = ch.new_secret(), ch.new_channel_id()
    channel = ch.derive(secret, FED, me.node_id, target.node_id, cid, 2_000_000_000)
    body, headers, sealed = peers._sealed_request(_Relay(), target, path,  # type: ignore[arg-type]
                                                  lambda: {"items": []}, channel)
    assert sealed and headers[CHANNEL_HEADER] == cid
    aad = request_aad(FED, path, me.node_id, target.node_id)
    assert json.loads(ch.aead_open(channel.relay_request_key, body, aad)) == {"items": []}
    with pytest.raises(DecryptionError):
        ch.aead_open(channel.relay_answer_key, body, aad)

    def answer_under(key: bytes, status: int = 200) -> RelayAnswer:
        sealed_answer = ch.aead_seal(key, b'{"ack":1}', answer_aad(
            FED, path, target.node_id, me.node_id, headers[SIGNATURE_HEADER], status))
        return RelayAnswer(200, sealed_answer, sealed=True)

    def opened(answer: RelayAnswer) -> dict[str, object]:
        return peers.open_answer(_Relay(), target, path, headers, answer,  # type: ignore[arg-type]
                                 True, channel)

    assert opened(answer_under(channel.relay_answer_key)) == {"ack": 1}
    other = ch.derive(ch.new_secret(), FED, me.node_id, target.node_id, cid, 2_000_000_000)
    for forged in (answer_under(other.relay_answer_key), answer_under(channel.relay_answer_key,
                                                                      409)):
        with pytest.raises(UnverifiedAnswer):
            opened(forged)
    refusal = seal_share(me.hpke_public, me.hpke_suite, b'{"error":{}}', answer_aad(
        FED, path, target.node_id, me.node_id, headers[SIGNATURE_HEADER], 403))
    assert opened(RelayAnswer(403, refusal, sealed=True)) == {"error": {}}
