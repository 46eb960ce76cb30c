"""Errors the node reports to whoever called it, with the HTTP status they map to.

The node's services raise these; both APIs turn them into
``{"error": {"code", "message", "field"?}}`` with ``status``. Messages go to
clients, so they never carry share values or other households' data.
"""

from __future__ import annotations


class NodeError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class BadRequest(NodeError):
    status, code = 400, "bad_request"


class Unauthorized(NodeError):
    status, code = 401, "unauthorized"


class Forbidden(NodeError):
    status, code = 403, "forbidden"


class NotFound(NodeError):
    status, code = 404, "not_found"


class Conflict(NodeError):
    status, code = 409, "conflict"


class PayloadTooLarge(NodeError):
    status, code = 413, "payload_too_large"


class Unprocessable(NodeError):
    status, code = 422, "unprocessable"


class TooManyRequests(NodeError):
    status, code = 429, "too_many_requests"


class BadGateway(NodeError):
    """A peer this request depended on refused or failed."""

    status, code = 502, "peer_error"


class Unavailable(NodeError):
    status, code = 503, "unavailable"
