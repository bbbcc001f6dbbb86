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

# Issue 16 §7: a request in one of these states has ended; any other is open, and a
# researcher has at most one open request per dataset (services.access_requests).
ENDED = (S.REJECTED, S.WITHDRAWN, S.LAPSED, S.REFUNDED, S.REVOKED, S.EXPIRED)
# The open states that can still lead to access, held unique per researcher and dataset by
# a partial unique index (AccessRequest.Meta). Refunding is open but left out: a payment
# that reaches a withdrawn, rejected or lapsed request moves it to refunding from the
# indexer, which must never be refused by the index while a newer request is open.
LEADS_TO_ACCESS = (
    S.SUBMITTED,
    S.RETURNED,
    S.APPROVED,
    S.PAYABLE,
    S.PAID,
    S.DELIVERING,
    *LIVE,
)

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


# How every message names a request's state, after "This request is …" (issue 16 §10): the
# one place that puts states into sentences, so no message reads "A awaiting payment
# request" or names a stored code ("payable").
STATE_IN_WORDS: dict[str, str] = {
    S.SUBMITTED: "waiting for the committee's review",
    S.RETURNED: "returned to the researcher for changes",
    S.APPROVED: "approved, its voucher not yet signed",
    S.REJECTED: "rejected",
    S.WITHDRAWN: "withdrawn",
    S.PAYABLE: "awaiting payment",
    S.LAPSED: "lapsed (its payment window closed unpaid)",
    S.PAID: "paid, and its files are about to be delivered",
    S.DELIVERING: "paid, and its files are being delivered",
    S.GRANTED: "granted",
    S.REFUNDING: "being refunded",
    S.REFUNDED: "refunded",
    S.SETTLED: "granted, and its payment released to the donor",
    S.EXPIRED: "expired (its access period ended)",
    S.REVOKED: "revoked",
}


def state_in_words(state: str) -> str:
    """'awaiting payment' for "payable": the state as the end of "This request is …"."""
    return STATE_IN_WORDS.get(state, str(state))


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
