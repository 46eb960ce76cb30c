"""Canonical JSON and base64url: the byte forms everything is signed over.

Signatures are computed over bytes, so sender and verifier must turn the same
value into the same bytes. Python's ``json`` with sorted keys, compact separators
and UTF-8 does that for the JSON types, and finite floats round-trip exactly
(``repr`` is the shortest string that parses back to the same double), so task
ranges like ``-20.5`` and resolutions like ``0.1`` are allowed. NaN and infinity
are rejected because JSON has no spelling for them, and non-string keys because
``json`` would silently turn ``{1: x}`` into ``{"1": x}`` and the receiver would
see a different object from the one the sender meant.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` deterministically as UTF-8 JSON.

    Raises ValueError for values that cannot be encoded unambiguously
    (NaN/Inf, non-string keys, bytes and other non-JSON types).
    """
    check_json(obj)
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def check_json(obj: Any) -> None:
    """ValueError, naming where, unless canonical JSON encodes ``obj`` unambiguously."""
    if not _plain(obj):
        _check(obj, "$")


_SCALARS = (str, int, bool, type(None))
_CONTAINERS = (dict, list, tuple)


def _plain(obj: Any) -> bool:
    """Whether ``obj`` holds only what canonical JSON encodes unambiguously: ``_check``'s
    rule, walked without recursion or building paths (the common case, on large lists)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            if not all(type(k) is str for k in value):
                return False
            items = value.values()
        elif kind is list or kind is tuple:
            items = value
        elif kind in _SCALARS:
            continue
        elif kind is float:
            if not math.isfinite(value):
                return False
            continue
        else:
            return False  # subclasses and other types: _check decides
        for item in items:
            kind = type(item)
            if kind is str or kind is int:
                continue
            if kind is float and math.isfinite(item):
                continue
            stack.append(item)
    return True


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is {value}; NaN and infinity cannot be encoded")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has key {key!r}; JSON object keys must be strings")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    hint = "; carry bytes as b64url_encode(...) strings" if isinstance(value, bytes) else ""
    raise ValueError(f"{path} is a {type(value).__name__}, which JSON cannot carry{hint}")


def b64url_encode(data: bytes) -> str:
    """URL-safe base64 without padding (safe in URLs, JSON and pasted tokens)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url_encode; raises ValueError on anything that is not base64url."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64url string, got {type(text).__name__}")
    try:
        raw = text.encode("ascii")
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error) as err:
        raise ValueError(f"not valid base64url: {err}") from None
