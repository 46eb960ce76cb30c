"""Admissions: the founder's signed word that a household which only contributes is a member.

A household that never computes (``input_only``) is not written into the signed
roster: that would make every join publish, store and push a roster that grows
with the street. The founder signs one small record for it instead:

    {"admission": {"federation", "seq", "member": <MemberInfo.to_dict()>, "issued_at"},
     "sig": b64url}

Ed25519 by the founder over ``hearth/admission/v1\\0`` + canonical JSON of the
``admission`` object. ``seq`` numbers the federation's admissions from 1 with no
gaps, so a member that keeps the log knows from one number what it lacks. Only the
founder's key makes a valid record (a member cannot admit anyone), and a record
names its federation (it cannot be replayed into another).

Pure functions: signing, checking, and which records of a batch continue a log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mpc_backend.crypto import (
    BadSignatureError,
    b64url_decode,
    b64url_encode,
    canonical_json,
    verify_signature,
)
from mpc_backend.crypto.keys import NodeKeys
from mpc_backend.storage.base import Admission

from .roster import MemberInfo, RosterError

ADMISSION_CONTEXT = b"hearth/admission/v1\x00"


class AdmissionError(ValueError):
    """An admission record is malformed, not the founder's, or for another federation."""


@dataclass(frozen=True)
class SignedAdmission:
    federation_id: str
    seq: int
    member: MemberInfo
    issued_at: float
    sig: bytes
    # The exact JSON the signature covers, stored and forwarded as received.
    signed: dict[str, Any] = field(compare=False, repr=False)

    def wire(self) -> dict[str, Any]:
        return {"admission": self.signed, "sig": b64url_encode(self.sig)}

    def record(self) -> Admission:
        return Admission(self.seq, self.member.node_id, self.wire())


def sign_admission(keys: NodeKeys, federation_id: str, seq: int, member: MemberInfo,
                   issued_at: float) -> SignedAdmission:
    """The founder admits ``member`` (an input-only household) as admission ``seq``."""
    data = {"federation": federation_id, "seq": seq, "member": member.to_dict(),
            "issued_at": float(issued_at)}
    return SignedAdmission(federation_id, seq, member, float(issued_at),
                           keys.sign(ADMISSION_CONTEXT + canonical_json(data)), data)


def verify_admission(wire: Any, founder_public: bytes, federation_id: str) -> SignedAdmission:
    """Parse and check one record: signed by ``founder_public``, for ``federation_id``,
    admitting a household that only contributes; AdmissionError otherwise."""
    if not isinstance(wire, dict) or not isinstance(wire.get("admission"), dict):
        raise AdmissionError("expected {'admission': {...}, 'sig': ...}")
    data = wire["admission"]
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise AdmissionError("admission seq must be a whole number from 1")
    if data.get("federation") != federation_id:
        raise AdmissionError(f"admission {seq} is for another federation")
    try:
        sig = b64url_decode(wire.get("sig", ""))
        verify_signature(founder_public, ADMISSION_CONTEXT + canonical_json(data), sig)
    except (ValueError, TypeError, BadSignatureError) as err:
        raise AdmissionError(f"admission {seq} is not signed by the founder: {err}") from None
    try:
        member = MemberInfo.from_dict(data.get("member"))
        issued_at = float(data["issued_at"])
    except (RosterError, KeyError, TypeError, ValueError) as err:
        raise AdmissionError(f"admission {seq} is malformed: {err}") from None
    if not member.input_only:
        raise AdmissionError(f"admission {seq} admits a member that computes; those are in "
                             "the signed roster")
    return SignedAdmission(federation_id, seq, member, issued_at, sig, data)


def continuing(seqs: Iterable[int], last_seq: int) -> list[int]:
    """The seqs that extend a log ending at ``last_seq`` with no gap, ascending: those at or
    below it are dropped (already held), and everything from the first gap on too."""
    out: list[int] = []
    for seq in sorted(set(seqs)):
        if seq <= last_seq:
            continue
        if seq != last_seq + len(out) + 1:
            break
        out.append(seq)
    return out
