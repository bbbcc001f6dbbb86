"""The access-request lifecycle as one declared table (DESIGN.md "Access request lifecycle").

Every legal move is a row here: a name, the states it may start from, and the state it
leads to. Services call `advance(request, Move.X)`; `AccessRequest.save()` refuses any
change of state that no row allows, so an illegal move cannot be made by construction,
whichever module tries it.

    submitted --approve--> approved --voucher--> payable --pay--> paid --deliver--> delivering
    delivering --grant--> granted --release--> settled
    paid/delivering(before delivery) --refunding--> refunding --refund--> refunded
    payable --withdraw/reject/lapse/close--> withdrawn/rejected/lapsed (the voucher is cancelled
    on chain); a payment that arrives on a closed request is refunded (--refunding-->).
    granted/settled --expire--> expired, --revoke--> revoked
    A Refunded event after delivery is an incident (--refund_incident--> refunded, flagged).
    Committees (issue 19 §2; REMS' `returned`): submitted --return--> returned --resubmit-->
    submitted; a returned request can also be withdrawn or closed. Member votes are audited
    records, not moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.db import models

from core.errors import Conflict


class State(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    PAYABLE = "payable", "Awaiting payment"
    LAPSED = "lapsed", "Lapsed"
    PAID = "paid", "Paid"
    # The operator's `deliver` is on its way to the chain: from the moment it is mined the
    # buyer can no longer reclaim the escrow, and only then are grant headers made.
    DELIVERING = "delivering", "Delivering"
    GRANTED = "granted", "Granted"
    REFUNDING = "refunding", "Refunding"
    REFUNDED = "refunded", "Refunded"
    SETTLED = "settled", "Settled"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    # Sent back to the researcher for changes by the committee (issue 19 §2).
    RETURNED = "returned", "Returned for changes"


class Move(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    VOUCHER = "voucher"
    LAPSE = "lapse"
    CLOSE = "close"  # an admin closes a request that waits for what will not come
    PAY = "pay"
    DELIVER = "deliver"
    UNDELIVERABLE = "undeliverable"  # the deliver transaction failed: back to paid
    GRANT = "grant"
    RELEASE = "release"
    REFUNDING = "refunding"
    REFUND = "refund"
    REFUND_INCIDENT = "refund_incident"
    EXPIRE = "expire"
    REVOKE = "revoke"
    # Reorgs take back an applied event.
    REVERT_PAID = "revert_paid"
    REVERT_RELEASED = "revert_released"
    REVERT_REFUNDED = "revert_refunded"
    # Committees (issue 19 §2).
    RETURN = "return"
    RESUBMIT = "resubmit"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


def _t(sources: tuple[str, ...], target: str) -> Transition:
    return Transition(frozenset(sources), target)


S = State
LIVE = (S.GRANTED, S.SETTLED)
# A voucher whose request closed may still be paid (a race with the cancel): such a
# payment is refunded, never kept.
CLOSED_UNPAID = (S.REJECTED, S.WITHDRAWN, S.LAPSED)

TRANSITIONS: dict[Move, Transition] = {
    Move.APPROVE: _t((S.SUBMITTED,), S.APPROVED),
    Move.REJECT: _t((S.SUBMITTED, S.RETURNED, S.APPROVED, S.PAYABLE), S.REJECTED),
    Move.WITHDRAW: _t((S.SUBMITTED, S.RETURNED, S.APPROVED, S.PAYABLE), S.WITHDRAWN),
    Move.VOUCHER: _t((S.APPROVED,), S.PAYABLE),
    Move.LAPSE: _t((S.PAYABLE,), S.LAPSED),
    Move.CLOSE: _t((S.SUBMITTED, S.RETURNED, S.APPROVED, S.PAYABLE), S.WITHDRAWN),
    Move.PAY: _t((S.PAYABLE,), S.PAID),
    Move.DELIVER: _t((S.PAID,), S.DELIVERING),
    Move.UNDELIVERABLE: _t((S.DELIVERING,), S.PAID),
    Move.GRANT: _t((S.DELIVERING,), S.GRANTED),
    Move.RELEASE: _t((S.GRANTED,), S.SETTLED),
    Move.REFUNDING: _t((S.PAID, S.DELIVERING, *CLOSED_UNPAID), S.REFUNDING),
    Move.REFUND: _t((S.PAYABLE, S.PAID, S.DELIVERING, S.REFUNDING, *CLOSED_UNPAID), S.REFUNDED),
    Move.REFUND_INCIDENT: _t((*LIVE, S.EXPIRED, S.REVOKED), S.REFUNDED),
    Move.EXPIRE: _t(LIVE, S.EXPIRED),
    Move.REVOKE: _t(LIVE, S.REVOKED),
    Move.REVERT_PAID: _t((S.PAID, S.DELIVERING, S.REFUNDING, *LIVE), S.PAYABLE),
    Move.REVERT_RELEASED: _t((S.SETTLED,), S.GRANTED),
    Move.REVERT_REFUNDED: _t((S.REFUNDED,), S.REFUNDING),
    Move.RETURN: _t((S.SUBMITTED,), S.RETURNED),
    Move.RESUBMIT: _t((S.RETURNED,), S.SUBMITTED),
}

ALLOWED_STEPS: frozenset[tuple[str, str]] = frozenset(
    (source, t.target) for t in TRANSITIONS.values() for source in t.sources
)


class IllegalTransition(Conflict):
    """A move the lifecycle does not allow from the request's current state (409)."""


def can(state: str, move: Move) -> bool:
    return state in TRANSITIONS[move].sources


def target_of(move: Move) -> str:
    return TRANSITIONS[move].target


def check_step(before: str, after: str) -> None:
    """Raise IllegalTransition unless the table allows `before` -> `after`."""
    if before != after and (before, after) not in ALLOWED_STEPS:
        raise IllegalTransition(f"An access request cannot go from {before} to {after}.")
