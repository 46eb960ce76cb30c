"""Relay frames: round trips, padding, refusal of what is not a frame, and sizes that say
nothing about a reading."""

from __future__ import annotations

import json

import pytest

from mpc_backend.arith.rng import FieldRNG
from mpc_backend.crypto import NodeKeys
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.node.household import seal_report, shares_envelope
from mpc_backend.node.peers import request_headers
from mpc_backend.node.roster import MemberInfo
from mpc_backend.relay.frames import (
    MAGIC,
    PAD_BLOCK,
    FrameError,
    decode_frame,
    encode_answer,
    encode_request,
)
from mpc_backend.relay.sealed import request_aad
from tests.backend.test_protocol_encoding import make_spec


def test_request_and_answer_round_trip() -> None:
    headers = {"Hearth-Sender": "abc", "Hearth-Time": "1700000000"}
    frame = decode_frame(encode_request("/peer/v1/shares", headers, b'{"x":1}'))
    assert (frame.kind, frame.path, frame.headers, frame.body) == (
        "request", "/peer/v1/shares", headers, b'{"x":1}')
    answer = decode_frame(encode_answer(409, b'{"error":{}}'))
    assert (answer.kind, answer.status, answer.body) == ("answer", 409, b'{"error":{}}')


@pytest.mark.parametrize("size", [0, 1, PAD_BLOCK - 60, PAD_BLOCK, 5 * PAD_BLOCK + 3])
def test_frames_are_padded_to_whole_blocks(size: int) -> None:
    payload = encode_request("/p", {}, b"a" * size)
    assert len(payload) % PAD_BLOCK == 0
    assert len(payload) - PAD_BLOCK < len(MAGIC) + 4 + 100 + size <= len(payload) + 100
    assert decode_frame(payload).body == b"a" * size  # the padding is not part of the body


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "not a Hearth relay frame"),
    (b"GET / HTTP/1.1\r\n", "not a Hearth relay frame"),
    (MAGIC + (10**6).to_bytes(4, "big"), "header length is out of range"),
    (MAGIC + (3).to_bytes(4, "big") + b"{x}", "header is not JSON"),
    (MAGIC + (2).to_bytes(4, "big") + b"[]", "not a JSON object"),
    (MAGIC + (13).to_bytes(4, "big") + b'{"length":99}', "body length is out of range"),
])
def test_what_is_not_a_frame_is_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        decode_frame(payload)


def test_bad_request_and_answer_headers_are_refused() -> None:
    def frame(header: dict[str, object]) -> bytes:
        head = json.dumps({**header, "length": 0}).encode()
        return MAGIC + len(head).to_bytes(4, "big") + head

    with pytest.raises(FrameError, match="path and string headers"):
        decode_frame(frame({"kind": "request", "path": "/p", "headers": {"a": 1}}))
    with pytest.raises(FrameError, match="HTTP status"):
        decode_frame(frame({"kind": "answer", "status": 99}))
    with pytest.raises(FrameError, match="unknown frame kind"):
        decode_frame(frame({"kind": "push"}))


def test_share_frames_of_one_task_have_one_size_whatever_the_reading() -> None:
    """What the broker sees of a share message is its size: the same for every reading,
    every household and every committee member of a task, sealed as the relay seals it."""
    spec = make_spec()
    members = [NodeKeys.generate() for _ in range(3)]
    committee = [MemberInfo.of_keys(k, f"m{i}", None, 1.0, False, f"h-member{i}")
                 for i, k in enumerate(members)]
    sizes = set()
    for reading in (spec.low, 17.5, 99.0, spec.high):
        household = NodeKeys.generate()
        sealed = seal_report(household, "f" * 32, spec, 123456, committee, reading, FieldRNG())
        for ciphertext in sealed:
            body = json.dumps(shares_envelope(household, "f" * 32, [(spec.task_id, 123456,
                                                                   ciphertext)]),
                              separators=(",", ":")).encode()
            member = committee[len(sizes) % 3]
            body = seal_share(member.hpke_public, member.hpke_suite, body, request_aad(
                "f" * 32, "/peer/v1/shares", household.node_id, member.node_id))
            headers = request_headers(household, "/peer/v1/shares", body, 1_800_000_000.0)
            sizes.add(len(encode_request("/peer/v1/shares", headers, body, sealed=True)))
    assert len(sizes) == 1, sizes
