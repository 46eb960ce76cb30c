"""OpenAPI 3.1 description of the local API, served at ``/api/v1/openapi.json``.

Kept by hand next to the routes; a test checks that every route of the local
app is described here and nothing else is.
"""

from __future__ import annotations

from typing import Any

from mpc_backend import __version__
from mpc_backend.node.config import MAX_CAPACITY, MIN_CAPACITY
from mpc_backend.node.federation import MAX_TASKS, MAX_TASKS_PER_PROPOSER
from mpc_backend.protocol.task import MIN_CONTRIBUTORS

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed body or parameter; `field` names it",
        401: "Missing or wrong bearer token",
        403: "Not allowed (e.g. only the founder may do this)",
        404: "Unknown task, or this node is not in a federation",
        409: "Conflict (already a member, duplicate contribution, task exists)",
        413: "Request body too large",
        422: f"Well-formed but not acceptable (value out of range, round not open, capacity "
             f"outside {MIN_CAPACITY:g}-{MAX_CAPACITY:g}, HPKE suite not allowed, too many tasks)",
        502: "A peer (e.g. the founder) or the relay broker refused or failed",
        503: "Too few committee members reachable",
    }
    return {str(c): _json(_ERROR, text[c]) for c in codes}


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            }
        },
    },
    "TaskSpec": {
        "type": "object",
        "required": ["metric", "low", "high", "resolution", "stats", "period_s",
                     "min_contributors"],
        "properties": {
            "task_id": {"type": "string", "description": "default: slug of metric"},
            "metric": {"type": "string"},
            "unit": {"type": "string"},
            "low": {"type": "number"},
            "high": {"type": "number"},
            "resolution": {"type": "number"},
            "stats": {"type": "array", "items": {"enum": ["count", "sum", "mean", "variance",
                                                          "stddev", "histogram", "quantiles"]}},
            "buckets": {"type": "array", "items": {"type": "number"},
                        "description": "histogram bucket edges, increasing"},
            "period_s": {"type": "integer", "minimum": 10},
            "min_contributors": {"type": "integer", "minimum": MIN_CONTRIBUTORS,
                                 "description": "a mean over two contributors tells each the "
                                                "other's reading"},
            "dp_epsilon": {"type": ["number", "null"]},
            "k": {"type": "integer", "default": 3},
            "t": {"type": "integer", "default": 1},
        },
    },
    "Task": {
        "type": "object",
        "properties": {
            "task": {"type": "string"},
            "spec": {"$ref": "#/components/schemas/TaskSpec"},
            "added_at": {"type": "number"},
            "proposed_by": {"type": "string"},
            "first_round": {"type": "integer"},
            "first_round_starts_at": {"type": "number"},
            "privacy": {"type": "string",
                        "description": "what the committee size k and threshold t mean, "
                                       "in plain words"},
        },
    },
    "Result": {
        "type": "object",
        "required": ["task", "round", "status"],
        "properties": {
            "task": {"type": "string"},
            "metric": {"type": "string"},
            "unit": {"type": "string"},
            "round": {"type": "integer"},
            "round_start": {"type": "string", "format": "date-time"},
            "round_end": {"type": "string", "format": "date-time"},
            "status": {"enum": ["released", "insufficient", "failed"]},
            "reason": {"type": ["string", "null"]},
            "contributors": {"type": ["integer", "null"]},
            "statistics": {
                "type": ["object", "null"],
                "description": "count, sum, mean, variance, stddev, histogram "
                               "[{low, high, count}], quantiles {p10..p90}; only those the "
                               "task asks for, and only when status is released",
            },
            "dp_epsilon": {"type": ["number", "null"]},
            "committee": {"type": "array", "items": {"type": "string"}},
            "excluded": {
                "type": "array",
                "description": "reports the committee left out after checking their validity "
                               "proofs: invalid (the proof failed), inconsistent (the shares "
                               "disagreed: the household or a committee member misbehaved) or "
                               "unchecked (it failed, but too few members could cross-check "
                               "it to blame anyone); part of the co-signed result",
                "items": {"type": "object", "properties": {
                    "household": {"type": "string"},
                    "verdict": {"enum": ["invalid", "inconsistent", "unchecked"]}}},
            },
            "released_at": {"type": "string", "format": "date-time"},
            "signed_by": {"type": "array", "items": {"type": "string"},
                          "description": "committee members whose signatures the node "
                                         "checked: t + 1 or more for released and "
                                         "insufficient, one for failed (at the deadline)"},
            "seq": {"type": "integer", "description": "local sequence number, for since="},
        },
    },
}

_PATHS: dict[str, Any] = {
    "/api/v1/health": {"get": {
        "summary": "Liveness (no auth)", "security": [],
        "responses": {"200": _json({"type": "object"})},
    }},
    "/api/v1/openapi.json": {"get": {
        "summary": "This document (no auth)", "security": [],
        "responses": {"200": _json({"type": "object"})},
    }},
    "/api/v1/status": {"get": {
        "summary": "Identity, federation, members online, tasks and rounds, load",
        "description": "identity.relay_admin is {url} when a broker admin account is "
                       "configured beside the node (never its password), else null. "
                       "members lists the signed roster's members, then this node if the "
                       "founder admitted it as a household by a signed admission; with "
                       "households=1, every admitted household this node knows instead (all "
                       "of them on the founder and on members that compute, only itself on a "
                       "household). federation.members counts the former, "
                       "federation.households the households this node knows; "
                       "load.admission_catch_ups counts this node's fetches of admissions for "
                       "senders it did not know",
        "parameters": [
            {"name": "households", "in": "query", "schema": {"enum": ["0", "1"], "default": "0"},
             "description": "1: list every admitted household this node knows in members"},
        ],
        "responses": {"200": _json({"type": "object"}), **_errors(400, 401)},
    }},
    "/api/v1/tasks": {
        "get": {
            "summary": "Tasks in the signed roster",
            "responses": {"200": _json({"type": "object", "properties": {
                "roster_version": {"type": "integer"},
                "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}}}),
                **_errors(401, 404)},
        },
        "post": {
            "summary": "Propose a task (the founder publishes it in the roster)",
            "description": f"At most {MAX_TASKS} tasks per federation and "
                           f"{MAX_TASKS_PER_PROPOSER} per proposing member (422 too_many_tasks); "
                           "tasks cannot be removed yet.",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/TaskSpec"}}}},
            "responses": {"201": _json({"type": "object"}, "Published"),
                          **_errors(400, 401, 403, 404, 409, 413, 422, 502)},
        },
    },
    "/api/v1/readings": {"post": {
        "summary": "This household's value for the current round of a task",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["task", "value"],
            "properties": {"task": {"type": "string"}, "value": {"type": "number"}}}}}},
        "responses": {"200": _json({"type": "object", "properties": {
            "task": {"type": "string"}, "round": {"type": "integer"},
            "status": {"const": "accepted"}, "duplicate": {"type": "boolean"},
            "acknowledged_by": {"type": "integer"}, "committee_size": {"type": "integer"},
            "round_ends_at": {"type": "number"}}}),
            **_errors(400, 401, 404, 409, 413, 422, 503)},
    }},
    "/api/v1/results": {"get": {
        "summary": "Round outcomes, newest first",
        "parameters": [
            {"name": "task", "in": "query", "schema": {"type": "string"}},
            {"name": "since", "in": "query", "schema": {"type": "integer"},
             "description": "only results with seq greater than this"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}},
        ],
        "responses": {"200": _json({"type": "object", "properties": {"results": {
            "type": "array", "items": {"$ref": "#/components/schemas/Result"}}}}),
            **_errors(400, 401, 404)},
    }},
    "/api/v1/results/stream": {"get": {
        "summary": "Server-sent events: `event: result`, `id: seq`, data = Result JSON",
        "parameters": [
            {"name": "task", "in": "query", "schema": {"type": "string"}},
            {"name": "since", "in": "query", "schema": {"type": "integer"},
             "description": "replay results after this seq first"},
        ],
        "responses": {"200": {"description": "event stream",
                              "content": {"text/event-stream": {}}}, **_errors(401, 404)},
    }},
    "/api/v1/federation": {"post": {
        "summary": "Create a federation with this node as founder",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "allow_classical_hpke": {
                    "type": "boolean", "default": False,
                    "description": "admit members whose HPKE suite is classical X25519 (shown "
                                   "as not post-quantum); by default every member needs "
                                   "MLKEM768-X25519 (422 weak_hpke_suite otherwise)"},
                "relay": {
                    "type": "object",
                    "description": "members talk through this MQTT broker (relay-admin.json "
                                   "from mpc-backend relay init); the node provisions its own "
                                   "broker account with the admin account now, and each "
                                   "invitee's at invite (422 bad_relay for a malformed one, "
                                   "502 relay_unavailable if the broker cannot be used). "
                                   "Without admin, the account configured beside the node "
                                   "(the data dir's relay-admin.json, which the app writes "
                                   "from its options; status identity.relay_admin) is used, "
                                   "and a url, if given, must be its (422 no_relay_admin when "
                                   "there is none). Without relay, a node that listens on "
                                   "every interface with no public URL is refused (422 "
                                   "no_public_url)",
                    "properties": {
                        "url": {"type": "string", "example": "mqtts://relay.example:8883"},
                        "ca": {"type": "string", "description": "PEM CA certificate"},
                        "admin": {"type": "object", "required": ["username", "password"],
                                  "properties": {"username": {"type": "string"},
                                                 "password": {"type": "string"}}}}}}}}}},
        "responses": {"201": _json({"type": "object", "properties": {
            "federation": {"type": "string"}, "name": {"type": "string"},
            "roster_version": {"type": "integer"},
            "hpke_policy": {"enum": ["hybrid", "any"]},
            "relay": {"type": ["string", "null"], "description": "the relay URL, if any"}}},
            "Created"),
            **_errors(400, 401, 409, 413, 422, 502)},
    }},
    "/api/v1/invites": {"post": {
        "summary": "Issue a one-time invite token (founder only)",
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"expires_s": {"type": "integer"}}}}}},
        "responses": {"201": _json({"type": "object", "properties": {
            "token": {"type": "string"}, "expires_at": {"type": "number"}}}, "Created"),
            **_errors(400, 401, 403, 404, 413, 422, 502)},
    }},
    "/api/v1/join": {"post": {
        "summary": "Join a federation with an invite token (contacts the founder)",
        "description": "Error codes: invalid_invite (malformed token), invite_expired, "
                       "invite_used, invite_unknown (the founder never issued it), "
                       "wrong_federation (the invite's address reaches a hub that is not its "
                       "federation's founder), fingerprint_mismatch (do not join), "
                       "already_member, relay_unavailable, peer_error (founder unreachable), "
                       "no_public_url (an invite without a relay, and this node listens on "
                       "every interface with no public URL). household: true when this node "
                       "(input-only) was admitted by a signed admission rather than listed "
                       "in the roster.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["token"],
            "properties": {"token": {"type": "string"}}}}}},
        "responses": {"200": _json({"type": "object"}),
                      **_errors(400, 401, 403, 409, 413, 422, 502)},
    }},
    "/api/v1/members/{member}/capacity": {"post": {
        "summary": "Change a member's capacity (founder only); later rounds use it",
        "description": f"Capacity weighs a member's chance of a committee seat: "
                       f"{MIN_CAPACITY:g} to {MAX_CAPACITY:g}, 1 for an ordinary hub. Rounds "
                       "that started before the change keep the capacity they started with.",
        "parameters": [{"name": "member", "in": "path", "required": True,
                        "schema": {"type": "string"},
                        "description": "node id, or a member name used by one member only"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["capacity"], "properties": {"capacity": {
                "type": "number", "minimum": MIN_CAPACITY, "maximum": MAX_CAPACITY}}}}}},
        "responses": {"200": _json({"type": "object", "properties": {
            "node_id": {"type": "string"}, "name": {"type": "string"},
            "capacity": {"type": "number"}, "roster_version": {"type": "integer"}}}),
            **_errors(400, 401, 403, 404, 413, 422)},
    }},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hearth household node: local API",
            "version": __version__,
            "description": "Loopback API of the Hearth backend for Home Assistant and the "
                           "mpc-backend CLI. Errors are {\"error\": {code, message, field?}}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
        "paths": _PATHS,
    }
