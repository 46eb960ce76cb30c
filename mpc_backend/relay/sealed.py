"""End-to-end sealing of relayed bodies: the broker carries them and reads none.

A request to a roster member is HPKE-sealed to the member's key, bound to the
federation, the path, the sender and the recipient, and then signed (the
``Hearth-*`` digest covers the ciphertext, so a recipient authenticates a frame
before it decrypts anything). The answer (a refusal too) is sealed back to the
member the request names as its sender, bound to the same context, to the
request's signature and to its HTTP status, so the broker can neither move an
answer to another request nor turn a refusal into a success or back; a sealed
request whose answer comes unsealed is treated as unanswered. Only a join (the
joiner is no member yet, and its body is its public member record with an invite
proof) and health pings travel unsealed.

A household's shares over a channel (``mpc_backend.crypto.channel``) are sealed with
the channel's relay keys instead of HPKE, request and answer alike, under the same
AAD: the answer is then also authenticated to the household, which an HPKE seal to
its public key is not (anyone can seal to that). A refusal made before the member
found the channel comes HPKE-sealed as for any other request.
"""

from __future__ import annotations

from mpc_backend.crypto.encoding import canonical_json

_REQUEST = b"hearth/relay-request/v1\x00"
_ANSWER = b"hearth/relay-answer/v1\x00"


def request_aad(federation_id: str, path: str, sender: str, recipient: str) -> bytes:
    return _REQUEST + canonical_json({"federation": federation_id, "path": path,
                                      "sender": sender, "recipient": recipient})


def answer_aad(federation_id: str, path: str, responder: str, requester: str,
               request_signature: str, status: int) -> bytes:
    return _ANSWER + canonical_json({"federation": federation_id, "path": path,
                                     "responder": responder, "requester": requester,
                                     "request": request_signature, "status": status})
