"""The relay's byte form: one MQTT payload per peer request or answer, padded.

A frame is ``MAGIC`` + a 4-byte big-endian header length + the JSON header + the
body + zero padding. The header of a request carries the peer API path and the
same ``Hearth-*`` authentication headers a direct HTTP request carries; an
answer carries the HTTP status the peer API would have answered. The body is
the JSON a direct request would carry, HPKE-sealed to the recipient when the
header says ``sealed`` (``relay.sealed``); the signature covers the body as sent.

Padding: every frame is padded to a whole number of ``PAD_BLOCK`` bytes. A share
message's body has the same length for every reading of a task (sealed
fixed-length vectors, fixed-width ids and times), so padded share frames of one
task are all the same size; the broker learns that a share was sent, not what
it encodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAGIC = b"HRL1"
PAD_BLOCK = 1024
_HEADER_LIMIT = 16 * 1024
REQUEST = "request"
ANSWER = "answer"


class FrameError(ValueError):
    """A relay payload that is not a Hearth frame."""


@dataclass(frozen=True)
class Frame:
    kind: str  # REQUEST or ANSWER
    body: bytes
    path: str = ""  # requests only
    headers: dict[str, str] | None = None  # requests only
    status: int = 0  # answers only
    sealed: bool = False  # the body is HPKE-sealed to the recipient (``sealed``)


def padded_length(length: int) -> int:
    return -(-length // PAD_BLOCK) * PAD_BLOCK


def _frame(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps({**header, "length": len(body)}, separators=(",", ":")).encode()
    raw = MAGIC + len(head).to_bytes(4, "big") + head + body
    return raw + bytes(padded_length(len(raw)) - len(raw))


def encode_request(path: str, headers: dict[str, str], body: bytes, *,
                   sealed: bool = False) -> bytes:
    return _frame({"kind": REQUEST, "path": path, "headers": headers, "sealed": sealed}, body)


def encode_answer(status: int, body: bytes, *, sealed: bool = False) -> bytes:
    return _frame({"kind": ANSWER, "status": status, "sealed": sealed}, body)


def decode_frame(payload: bytes) -> Frame:
    """Parse a frame; FrameError says what is wrong (never echoing the body)."""
    if payload[:4] != MAGIC or len(payload) < 8:
        raise FrameError("not a Hearth relay frame")
    size = int.from_bytes(payload[4:8], "big")
    if size > _HEADER_LIMIT or 8 + size > len(payload):
        raise FrameError("frame header length is out of range")
    try:
        header = json.loads(payload[8:8 + size])
    except (ValueError, RecursionError):
        raise FrameError("frame header is not JSON") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    length = header.get("length")
    start = 8 + size
    if isinstance(length, bool) or not isinstance(length, int) or not (
            0 <= length <= len(payload) - start):
        raise FrameError("frame body length is out of range")
    body = payload[start:start + length]
    kind = header.get("kind")
    sealed = header.get("sealed", False)
    if not isinstance(sealed, bool):
        raise FrameError("frame 'sealed' must be true or false")
    if kind == REQUEST:
        path, headers = header.get("path"), header.get("headers")
        if not isinstance(path, str) or not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise FrameError("request frame needs a path and string headers")
        return Frame(REQUEST, body, path=path, headers=headers, sealed=sealed)
    if kind == ANSWER:
        status = header.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status < 600:
            raise FrameError("answer frame needs an HTTP status")
        return Frame(ANSWER, body, status=status, sealed=sealed)
    raise FrameError(f"unknown frame kind {kind!r}")
