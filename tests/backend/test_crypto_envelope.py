"""Signed envelopes and the canonical JSON they are signed over."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpc_backend.crypto import (
    AuthError,
    BadSignatureError,
    MalformedEnvelopeError,
    NodeKeys,
    StaleMessageError,
    UnknownSenderError,
    WrongContextError,
    b64url_decode,
    b64url_encode,
    canonical_json,
    encoding,
    sign_envelope,
    verify_envelope,
    verify_signature,
)
from mpc_backend.crypto import envelope as envelope_module

NOW = 1_800_000_000.0
FED = "fed-1"
BODY = {"task": {"low": -20.5, "high": 45.0, "resolution": 0.1}, "round": 12, "label": "Küche"}


@pytest.fixture(scope="module")
def alice() -> NodeKeys:
    return NodeKeys.generate()


@pytest.fixture(scope="module")
def bob() -> NodeKeys:
    return NodeKeys.generate()


@pytest.fixture(scope="module")
def roster(alice: NodeKeys, bob: NodeKeys) -> Callable[[str], bytes | None]:
    return {k.node_id: k.signing_public for k in (alice, bob)}.get


def _verify(envelope: Any, roster: Callable[[str], bytes | None], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"expected_type": "report", "federation_id": FED, "now": NOW}
    args.update(kw)
    return verify_envelope(envelope, roster, **args)


def test_round_trip_over_the_wire(alice: NodeKeys, roster: Callable[[str], bytes | None]) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW)
    assert set(envelope) == {"type", "federation", "sender", "ts", "nonce", "body", "sig"}
    assert envelope["sender"] == alice.node_id
    assert envelope["ts"] == int(NOW)
    assert len(b64url_decode(envelope["sig"])) == 64
    received = json.loads(json.dumps(envelope))
    assert _verify(received, roster) == BODY


def test_signature_is_over_the_domain_string_and_canonical_json(alice: NodeKeys) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW)
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    sig = b64url_decode(envelope["sig"])
    verify_signature(alice.signing_public, b"hearth/msg/v1\x00" + canonical_json(unsigned), sig)
    with pytest.raises(BadSignatureError):  # the same bytes without the domain string
        verify_signature(alice.signing_public, canonical_json(unsigned), sig)


def test_nonces_are_fresh_128_bit_hex(alice: NodeKeys) -> None:
    nonces = {sign_envelope(alice, "report", FED, {}, now=NOW)["nonce"] for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)


def test_caller_editing_the_body_later_does_not_break_the_envelope(
    alice: NodeKeys, roster: Callable[[str], bytes | None]
) -> None:
    body = {"values": [1, 2], "range": (0.5, 1.5)}
    envelope = sign_envelope(alice, "report", FED, body, now=NOW)
    body["values"].append(3)
    assert _verify(envelope, roster) == {"values": [1, 2], "range": [0.5, 1.5]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", {**BODY, "round": 13}),
        ("body", {**BODY, "task": {"low": -20.4, "high": 45.0, "resolution": 0.1}}),
        ("ts", int(NOW) + 1),
        ("nonce", "0" * 32),
    ],
)
def test_tampered_fields_fail_the_signature(
    alice: NodeKeys, roster: Callable[[str], bytes | None], field: str, value: Any
) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW)
    envelope[field] = value
    with pytest.raises(BadSignatureError, match=alice.node_id):
        _verify(envelope, roster)


def test_tampered_type_or_federation_is_caught_either_way(
    alice: NodeKeys, roster: Callable[[str], bytes | None]
) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW)
    for field, value, context in (
        ("type", "result", "expected_type"),
        ("federation", "fed-2", "federation_id"),
    ):
        tampered = {**envelope, field: value}
        with pytest.raises(WrongContextError):
            _verify(tampered, roster)  # receiver expects the original context
        with pytest.raises(BadSignatureError):
            _verify(tampered, roster, **{context: value})  # receiver fooled into the new one


def test_authentic_message_for_another_context_is_refused(
    alice: NodeKeys, roster: Callable[[str], bytes | None]
) -> None:
    with pytest.raises(WrongContextError, match="expected a 'report' message, got 'result'"):
        _verify(sign_envelope(alice, "result", FED, BODY, now=NOW), roster)
    with pytest.raises(WrongContextError, match="federation 'fed-2'"):
        _verify(sign_envelope(alice, "report", "fed-2", BODY, now=NOW), roster)


def test_sender_claiming_to_be_another_member_fails(
    alice: NodeKeys, bob: NodeKeys, roster: Callable[[str], bytes | None]
) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW)
    envelope["sender"] = bob.node_id
    with pytest.raises(BadSignatureError):
        _verify(envelope, roster)


def test_unknown_sender(roster: Callable[[str], bytes | None]) -> None:
    stranger = NodeKeys.generate()
    with pytest.raises(UnknownSenderError, match=f"{stranger.node_id} is not a member of"):
        _verify(sign_envelope(stranger, "report", FED, BODY, now=NOW), roster)


@pytest.mark.parametrize(
    ("signed_at", "fresh"),
    [(NOW - 299, True), (NOW + 299, True), (NOW - 301, False), (NOW + 301, False), (0, False)],
)
def test_age_window(
    alice: NodeKeys, roster: Callable[[str], bytes | None], signed_at: float, fresh: bool
) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=signed_at)
    if fresh:
        assert _verify(envelope, roster) == BODY
    else:
        with pytest.raises(StaleMessageError, match="limit 300 s"):
            _verify(envelope, roster)


def test_max_age_is_configurable(alice: NodeKeys, roster: Callable[[str], bytes | None]) -> None:
    envelope = sign_envelope(alice, "report", FED, BODY, now=NOW - 60)
    assert _verify(envelope, roster, max_age_s=120) == BODY
    with pytest.raises(StaleMessageError, match="60 s old"):
        _verify(envelope, roster, max_age_s=30)


def _deeply_nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _mutations() -> list[Callable[[dict[str, Any]], Any]]:
    def drop_sig(e: dict[str, Any]) -> Any:
        del e["sig"]
        return e

    def extra(e: dict[str, Any]) -> Any:
        e["extra"] = 1
        return e

    def setter(field: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        def apply(e: dict[str, Any]) -> Any:
            e[field] = value
            return e

        return apply

    return [
        drop_sig,
        extra,
        setter("ts", "1800000000"),
        setter("ts", True),
        setter("ts", 1.8e9),
        setter("body", [1]),
        setter("nonce", "XYZ"),
        setter("nonce", "A" * 32),
        setter("sig", "!!not base64!!"),
        setter("body", {"x": math.nan}),
        setter("body", {"x": _deeply_nested(5000)}),
        lambda e: [e],
        lambda e: None,
    ]


@pytest.mark.parametrize("mutate", _mutations())
def test_malformed_envelopes_are_auth_errors(
    alice: NodeKeys, roster: Callable[[str], bytes | None], mutate: Callable[[dict[str, Any]], Any]
) -> None:
    envelope = copy.deepcopy(sign_envelope(alice, "report", FED, BODY, now=NOW))
    with pytest.raises(AuthError) as err:
        _verify(mutate(envelope), roster)
    assert isinstance(err.value, (MalformedEnvelopeError, BadSignatureError))


def test_error_hierarchy() -> None:
    for error in (
        UnknownSenderError,
        BadSignatureError,
        StaleMessageError,
        WrongContextError,
        MalformedEnvelopeError,
    ):
        assert issubclass(error, AuthError)


def test_verify_signature_rejects_a_bad_public_key(alice: NodeKeys) -> None:
    with pytest.raises(BadSignatureError, match="expected 32 bytes, got 31"):
        verify_signature(alice.signing_public[:31], b"m", alice.sign(b"m"))


def test_canonical_json_bytes() -> None:
    value = {"b": 1, "a": [1.5, "é", None, True], "c": {"y": -0.1, "x": 10**20}}
    assert canonical_json(value) == (
        '{"a":[1.5,"é",null,true],"b":1,"c":{"x":100000000000000000000,"y":-0.1}}'.encode()
    )


@pytest.mark.parametrize(
    "number", [0.1, -20.5, 1e-300, 1.7976931348623157e308, 2.0**-1074, 1 / 3, -0.0, 2**61 - 1]
)
def test_canonical_json_numbers_round_trip_exactly(number: float) -> None:
    encoded = canonical_json({"v": number})
    decoded = json.loads(encoded)["v"]
    assert decoded == number
    assert math.copysign(1, decoded) == math.copysign(1, number)
    assert canonical_json({"v": decoded}) == encoded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": math.nan}, r"\$\.x is nan"),
        ({"x": [math.inf]}, r"\$\.x\[0\] is inf"),
        ({"x": {1: "a"}}, "keys must be strings"),
        ({"x": b"raw"}, "b64url_encode"),
        ({"x": np.uint64(5)}, "uint64"),
        ({"x": {1, 2}}, "set"),
    ],
)
def test_canonical_json_rejects_ambiguous_values(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(value)


def test_base64url() -> None:
    for data in (b"", b"\x00", b"\xfb\xff", bytes(range(256))):
        text = b64url_encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url_decode(text) == data
    assert b64url_encode(b"\xfb\xff\xfe") == "-__-"
    for bad in ("a", "ab$d", "é"):
        with pytest.raises(ValueError, match="base64url"):
            b64url_decode(bad)


_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                    st.floats(allow_nan=True, allow_infinity=True), st.binary(max_size=3))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=4)),
    max_leaves=20)


@given(_VALUES)
def test_the_fast_walk_accepts_exactly_what_the_checked_walk_accepts(value: Any) -> None:
    """canonical_json's quick walk (no recursion, no paths) decides like ``_check``: what it
    passes ``_check`` passes, and what ``_check`` refuses it sends to ``_check``."""
    try:
        encoding._check(value, "$")
        checked = True
    except ValueError:
        checked = False
    assert encoding._plain(value) == checked
    if checked:
        assert canonical_json(value) == json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        with pytest.raises(ValueError, match=r"^\$"):
            canonical_json(value)


def test_sign_envelope_signs_exactly_the_canonical_envelope() -> None:
    """The body's canonical bytes are spliced in rather than encoded twice: the result must
    be the canonical JSON of the whole envelope, byte for byte."""
    keys = NodeKeys.generate()
    body = {"a": [1, 2.5, "é"], "z": {"b": None, "a": True}, "items": list(range(50))}
    envelope = sign_envelope(keys, "shares", "f" * 32, body, now=1_800_000_000)
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    verify_signature(keys.signing_public, envelope_module.MESSAGE_CONTEXT
                     + canonical_json(unsigned), b64url_decode(envelope["sig"]))
