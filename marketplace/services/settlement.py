"""The access-request transitions that involve the chain and the vault (worker side).

approved --voucher signed--> payable --Paid event--> paid --deliver mined--> delivering
--grant made--> granted --Released event--> settled; paid --cannot grant--> refunding
--Refunded event--> refunded. The legal moves are declared in `marketplace.models.lifecycle`.

Settlement trusts the chain, not the shared database (DESIGN "What the chain must
guarantee"): before it serves anything the worker checks its own MAC over the voucher it
signed, reads the escrow at the market address pinned in its own configuration, and
records the delivery on chain (`deliver`), which ends the buyer's unilateral refund.
Before delivery every payment can be refunded; after it nothing is refunded on chain.

Vouchers are signed with the operator key and grants made with the archive key, so these
functions run in the worker only (core.worker_secrets refuses elsewhere). Chain events
arrive through the ledger's indexer signals, inside its transaction; Celery work is
enqueued on commit.

Requests are locked with `select_for_update(of=("self",))`: without `of`, the joined
dataset row is locked too, and a request being submitted for the same dataset (whose
deferred foreign-key check takes a share lock on that row at commit, after it has taken
the audit head) deadlocks against it (found by bench/pipeline.py).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from web3 import Web3

from core.errors import Conflict, NotFound, PermissionDenied
from core.failpoints import failpoint
from core.queue import enqueue
from genomics.models import Grant
from genomics.services.grants import grant_create
from ledger import pinned, vouchers
from ledger.integrity import row_mac, row_mac_valid
from ledger.models import ChainEvent, OperatorTransaction
from ledger.operator import operator_account
from ledger.pinned import EscrowStatus
from ledger.selectors.wallets import wallet_address_of
from ledger.services.sender import operator_transaction_send
from marketplace.consent import purpose_fits
from marketplace.consent.codes import ConsentCode
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.models.lifecycle import CLOSED_UNPAID, LIVE, Move
from marketplace.selectors.scope import files_of_requests, request_files, request_scope
from marketplace.services.audit import audit_append
from marketplace.services.notifications import notify_admins_of_flag, notify_request_change
from marketplace.services.visas import visa_issue

logger = logging.getLogger(__name__)
State = AccessRequest.State


def chain_request_id(request_id: UUID) -> str:
    return Web3.to_hex(Web3.keccak(request_id.bytes))


def _record(request: AccessRequest, action: str, data: dict[str, object] | None = None) -> None:
    audit_append(
        action=f"request.{action}",
        actor=None,
        object_type="access_request",
        object_id=request.pk,
        data={"state": request.state, **(data or {})},
    )
    if action == "flag":  # for admins; the state has not changed
        notify_admins_of_flag(request=request, reason=str((data or {}).get("reason", "")))
    else:
        notify_request_change(request=request)


def voucher_for(request: AccessRequest) -> vouchers.Voucher:
    assert request.voucher_valid_until is not None and request.voucher_refund_after is not None
    return vouchers.Voucher(
        requestId=request.chain_request_id,
        buyer=request.buyer,
        payee=request.payee,
        amount=int(request.amount),
        validUntil=request.voucher_valid_until,
        refundAfter=request.voucher_refund_after,
        terms=request.voucher_terms or vouchers.ZERO_TERMS,
    )


def request_terms(request: AccessRequest) -> str:
    """keccak256 (0x-hex) of what the researcher buys: the dataset, the listing record it
    was approved against, its scope ("whole", or the region tier: its id, name, regions'
    SHA-256 and the gene table they were resolved with) and the data access agreement
    accepted with the request ({"version", "sha256"} of its exact text, or null). Signed
    into the voucher; echoed by `Paid`, so the acceptance is provable on chain (issue 19
    §3)."""
    agreement = request.agreement
    terms = {
        "dataset": str(request.dataset_id),
        "record_sha256": request.dataset.record_hash,
        "scope": request_scope(request),
        "agreement": (
            {"version": agreement.version, "sha256": agreement.sha256} if agreement else None
        ),
        "request": str(request.pk),
    }
    return Web3.to_hex(Web3.keccak(text=json.dumps(terms, sort_keys=True, separators=(",", ":"))))


def _voucher_mac_fields(request: AccessRequest) -> dict[str, object]:
    return {
        "request": str(request.pk),
        "chain_request_id": request.chain_request_id,
        "buyer": request.buyer.lower(),
        "payee": request.payee.lower(),
        "amount": str(int(request.amount)),
        "valid_until": request.voucher_valid_until,
        "refund_after": request.voucher_refund_after,
        "terms": request.voucher_terms,
        "chain_id": request.voucher_chain_id,
        "market": request.voucher_market.lower(),
    }


def voucher_mac_valid(request: AccessRequest) -> bool:
    """Whether the voucher fields in the row are the ones this worker signed."""
    return row_mac_valid("voucher", _voucher_mac_fields(request), request.voucher_mac)


def request_sign_voucher(*, request_id: UUID | str) -> AccessRequest:
    """approved -> payable: the operator signs the EIP-712 voucher the researcher pays."""
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("dataset", "researcher")
            .get(pk=request_id)
        )
        if request.state != State.APPROVED:
            return request  # already signed, or no longer wanted
        # The approval is a web-tier fact (ledger/contracts/SECURITY.md); the consent fit is
        # not: the worker recomputes it before it signs anything.
        consent = [ConsentCode(c["code"], c["value"]) for c in request.dataset.duo_codes]
        purpose = [ConsentCode(c["code"], c["value"]) for c in request.purpose_codes]
        if (
            request.dataset.state != Dataset.State.LISTED
            or not purpose_fits(consent, purpose, access_days=request.dataset.access_days).allowed
        ):
            request.flagged = "The worker found that the purpose does not fit the consent."
            request.save(update_fields=["flagged", "updated_at"])
            _record(request, "flag", {"reason": request.flagged})
            return request
        buyer = wallet_address_of(user=request.researcher)
        payee = wallet_address_of(user=request.dataset.donor)
        missing = [
            who
            for who, address in (("the researcher", buyer), ("the donor", payee))
            if address is None
        ]
        if missing:
            request.voucher_error = f"Waiting for {' and '.join(missing)} to link a wallet."
            request.save(update_fields=["voucher_error", "updated_at"])
            return request
        chain_id, market = pinned.pinned_chain_id(), pinned.market_address()
        now = int(time.time())
        request.chain_request_id = chain_request_id(request.pk)
        request.buyer, request.payee = str(buyer), str(payee)
        request.voucher_valid_until = now + settings.VOUCHER_VALID_S
        request.voucher_refund_after = request.voucher_valid_until + settings.REFUND_GRACE_S
        request.voucher_chain_id, request.voucher_market = chain_id, market
        request.voucher_terms = request_terms(request)
        request.voucher_signature = vouchers.sign(
            operator_account(), chain_id=chain_id, market=market, voucher=voucher_for(request)
        )
        request.voucher_mac = row_mac("voucher", _voucher_mac_fields(request))
        request.voucher_error = ""
        request.advance(Move.VOUCHER)
        request.save()
        _record(
            request,
            "voucher",
            {
                "valid_until": request.voucher_valid_until,
                "terms": request.voucher_terms,
                "scope": request_scope(request),
            },
        )
    return request


def request_apply_payment(*, event: ChainEvent) -> AccessRequest | None:
    """A confirmed `Paid` event: payable -> paid, if it matches the voucher exactly. A
    payment on a request that is no longer payable (closed while the buyer paid, or a race
    with the voucher's cancel) is refunded at once: every payment ends released, refunded
    or flagged."""
    request = (
        AccessRequest.objects.select_for_update().filter(chain_request_id=event.request_id).first()
    )
    if request is None:
        logger.warning("Paid event %s for an unknown request", event)
        return None
    if request.state not in (State.PAYABLE, *CLOSED_UNPAID):
        return request  # already applied (a chain pays a request id once)
    amount, buyer = int(event.args["amount"]), str(event.args["buyer"])
    terms = str(event.args.get("terms", vouchers.ZERO_TERMS))
    expected_terms = request.voucher_terms or vouchers.ZERO_TERMS
    if (
        amount != int(request.amount)
        or buyer.lower() != request.buyer.lower()
        or terms.lower() != expected_terms.lower()
    ):
        request.flagged = (
            f"Paid {amount} from {buyer} for terms {terms[:10]}…; the voucher says "
            f"{int(request.amount)} from {request.buyer} for {expected_terms[:10]}…."
        )[:300]
        request.save(update_fields=["flagged", "updated_at"])
        _record(request, "flag", {"reason": request.flagged, "tx": event.tx_hash})
        return request
    request.paid_tx = event.tx_hash
    if request.state == State.PAYABLE:
        request.advance(Move.PAY)
        request.save(update_fields=["state", "paid_tx", "updated_at"])
        _record(request, "paid", {"tx": event.tx_hash})
        if request.dataset.consent_stands:
            transaction.on_commit(lambda: _enqueue("grant_access", request.pk))
            return request
        reason = "the donor withdrew consent before the grant"
    else:
        reason = f"paid after the request was {request.state}"
    request.advance(Move.REFUNDING)
    request.save(update_fields=["state", "paid_tx", "updated_at"])
    _record(request, "refunding", {"reason": reason, "tx": event.tx_hash})
    transaction.on_commit(lambda: _enqueue("refund_access", request.pk))
    return request


def request_grant(*, request_id: UUID | str) -> AccessRequest:
    """paid -> delivering -> granted, then release. Each step is idempotent: run again (a
    retry, a redelivery, the deliver transaction's receipt) it goes on from where the
    request stands.

    1. paid: the worker checks its MAC over the voucher, reads the escrow at its pinned
       market (status Paid; buyer, payee, amount as signed), that the market is not paused
       and that more than GRANT_REFUND_MARGIN_S is left before the buyer could reclaim;
       then asks the chain to record the delivery (`deliver`).
    2. delivering: once the chain shows the escrow Delivered, grant headers are made.
    3. granted: the release is asked for.
    """
    request = _prepare_delivery(request_id)
    if request.state == State.DELIVERING:
        # Granted now if the chain already shows the delivery (an instant-mining node);
        # otherwise the `deliver` receipt, recorded by the sender's poll, brings the task
        # back. The worker never sleeps on a block: it serves other requests meanwhile.
        request = _grant(request_id)
        if request.state == State.DELIVERING:
            # Not delivered yet: the live `deliver` attempt stands, or, after one that
            # reverted, a new attempt goes out once its backoff has passed.
            _ask_market(request, "deliver")
    if request.state == State.GRANTED:
        return request_release(request_id=request.pk)
    return request


def _grant_problem(request: AccessRequest) -> str | None:
    if not request.dataset.consent_stands:
        return "the donor withdrew consent before the grant"
    if not request.researcher.crypt4gh_public_key:
        return "the researcher has no Crypt4GH public key"
    return None


def _escrow_problem(request: AccessRequest, escrow: pinned.Escrow) -> str | None:
    """Why the escrow on chain is not the payment of this voucher (None: it is)."""
    if escrow.buyer.lower() != request.buyer.lower() or escrow.payee.lower() != (
        request.payee.lower()
    ):
        return f"the escrow on chain is from {escrow.buyer} to {escrow.payee}"
    if escrow.amount != int(request.amount):
        return f"the escrow on chain holds {escrow.amount}, the voucher says {int(request.amount)}"
    return None


def _flag(request: AccessRequest, reason: str) -> AccessRequest:
    if request.flagged != reason[:300]:
        request.flagged = reason[:300]
        request.save(update_fields=["flagged", "updated_at"])
        _record(request, "flag", {"reason": request.flagged})
    return request


def _prepare_delivery(request_id: UUID | str) -> AccessRequest:
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("dataset", "researcher")
            .get(pk=request_id)
        )
        if request.state != State.PAID:
            return request
        problem = _grant_problem(request)
        if problem is not None:
            return _start_refund(request, problem)
        if not voucher_mac_valid(request):
            return _flag(request, "The voucher in the database is not the one the worker signed.")
        if (request.voucher_market or "").lower() != pinned.market_address().lower():
            return _flag(request, "The voucher names another market than the worker's.")
        rid = vouchers.request_id_bytes(request.chain_request_id)
        escrow = pinned.escrow_of(rid)
        if escrow.status != EscrowStatus.PAID:
            if escrow.status == EscrowStatus.REFUNDED:
                return request  # the buyer reclaimed it; the indexer applies the Refunded
            return _flag(
                request, f"No paid escrow on chain for this request ({escrow.status.name})."
            )
        if (problem := _escrow_problem(request, escrow)) is not None:
            return _flag(request, problem.capitalize() + ".")
        if escrow.refund_after - int(time.time()) < settings.GRANT_REFUND_MARGIN_S:
            return _start_refund(request, "too little time was left before the buyer's reclaim")
        if pinned.market_paused():
            logger.info("market paused: %s waits for its delivery", request)
            return request  # the reconciler asks again; refunds stay open while paused
        request.advance(Move.DELIVER)
        request.save(update_fields=["state", "updated_at"])
        _record(request, "deliver", {})
    tx = _ask_market(request, "deliver")
    if tx is not None and tx.tx_hash:
        AccessRequest.objects.filter(pk=request.pk).update(deliver_tx=tx.tx_hash)
        # Look again about one block later: the grant then follows the delivery's block
        # without waiting for the sender's poll (which brings the task back too).
        _enqueue("grant_access", request.pk, countdown=settings.DELIVERY_CHECK_AFTER_S)
    return request


def _start_refund(request: AccessRequest, reason: str) -> AccessRequest:
    request.advance(Move.REFUNDING)
    request.save(update_fields=["state", "updated_at"])
    _record(request, "refunding", {"reason": reason})
    transaction.on_commit(partial(_enqueue, "refund_access", request.pk))
    return request


def grant_ends_at(request: AccessRequest, *, granted_at: datetime) -> datetime:
    """When a grant made at `granted_at` ends: the dataset's access period after it, or,
    for a renewal of a grant still running, after that grant's end (issue 19 §4: a
    renewal extends the grant; paying early loses no day)."""
    start = granted_at
    renewed = request.renews
    if renewed is not None and renewed.state in LIVE and renewed.expires_at is not None:
        start = max(start, renewed.expires_at)
    return start + timedelta(days=request.dataset.access_days)


def request_grant_headers(*, request: AccessRequest) -> list[Grant]:
    """A grant header for the researcher's key on every file the request covers (its
    tier's region objects, checked against the worker's MAC over them, or the dataset's
    files: marketplace.selectors.scope); worker only. Raises Conflict when a file cannot
    be granted or a tier's objects are not the ones the worker made."""
    key = bytes(request.researcher.crypt4gh_public_key or b"")
    if request.tier is not None:
        # Imported here: tiers imports datasets, which imports this module.
        from marketplace.services.tiers import tier_objects_verified

        files = tier_objects_verified(request.tier)
    else:
        files = list(request_files(request))
    if not files:
        raise Conflict("The request covers no file.")
    return [grant_create(file=stored, recipient_public_key=key) for stored in files]


def _grant(request_id: UUID | str) -> AccessRequest:
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("dataset", "researcher")
            .get(pk=request_id)
        )
        if request.state != State.DELIVERING:
            return request
        escrow = pinned.escrow_of(vouchers.request_id_bytes(request.chain_request_id))
        if escrow.status != EscrowStatus.DELIVERED or _escrow_problem(request, escrow):
            return request  # not yet mined; the receipt brings the task back
        if not request.dataset.consent_stands:
            # Consent withdrawn while the delivery was in flight: no header is made, and
            # the delivered escrow can no longer be refunded on chain: an admin decides.
            return _flag(request, "Consent was withdrawn while the delivery was on its way.")
        try:
            with transaction.atomic():  # all headers or none
                request_grant_headers(request=request)
        except Conflict as exc:
            # Delivered on chain, so the escrow can no longer be refunded: an admin decides.
            return _flag(request, f"Delivered on chain but no grant could be made: {exc.message}")
        failpoint("grant.headers_written")  # headers written, not yet committed
        request.advance(Move.GRANT)
        request.granted_at = timezone.now()
        request.expires_at = grant_ends_at(request, granted_at=request.granted_at)
        request.save(update_fields=["state", "granted_at", "expires_at", "updated_at"])
        _record(
            request,
            "grant",
            {
                "expires_at": request.expires_at.isoformat(),
                "renews": str(request.renews_id) if request.renews_id else None,
                "scope": request_scope(request),
            },
        )
        visa_issue(request=request)
    return request


def request_release(*, request_id: UUID | str) -> AccessRequest:
    """Ask the market to pay the donor for a granted request: one release transaction per
    attempt, whoever asks and however often (a worker killed between the grant and this
    call is caught up by the reconciler; a reverted release is tried again with backoff)."""
    request = AccessRequest.objects.get(pk=request_id)
    if request.state == State.GRANTED:
        tx = _ask_market(request, "release")
        if tx is not None and tx.tx_hash and request.release_tx != tx.tx_hash:
            AccessRequest.objects.filter(pk=request.pk).update(release_tx=tx.tx_hash)
    return request


def request_refund(*, request_id: UUID | str) -> AccessRequest:
    """Ask the market to return the escrow of a request that will not be delivered
    (idempotent per attempt). Refused by the worker for an escrow the chain does not show
    paid and undelivered."""
    with transaction.atomic():
        request = AccessRequest.objects.select_for_update().get(pk=request_id)
        if request.state in (State.PAID, *CLOSED_UNPAID) and request.paid_tx:
            _start_refund(request, "paid but not to be granted")
    if request.state != State.REFUNDING:
        return request
    escrow = pinned.escrow_of(vouchers.request_id_bytes(request.chain_request_id))
    if escrow.status == EscrowStatus.PAID:
        _ask_market(request, "refund")
    elif escrow.status == EscrowStatus.DELIVERED:
        _flag(request, "Asked to refund an escrow that is delivered on chain: an admin decides.")
    return request


def request_cancel_voucher(*, request_id: UUID | str) -> AccessRequest:
    """A payable request closed (withdrawn, rejected, closed by an admin): cancel its
    voucher on chain so it can no longer be paid. If the payment wins the race, the
    cancel reverts and the `Paid` event is refunded."""
    request = AccessRequest.objects.get(pk=request_id)
    if request.state not in CLOSED_UNPAID or not request.voucher_signature:
        return request
    if request.voucher_valid_until is not None and request.voucher_valid_until < time.time():
        return request  # expired: the contract refuses it anyway
    escrow = pinned.escrow_of(vouchers.request_id_bytes(request.chain_request_id))
    if escrow.status == EscrowStatus.NONE:
        _ask_market(request, "cancel")
    return request


MARKET_FUNCTIONS = ("deliver", "release", "refund", "cancel")


def _attempt_key(request: AccessRequest, attempt: int) -> str:
    return str(request.pk) if attempt == 1 else f"{request.pk}#{attempt}"


def _attempts(request: AccessRequest, function: str) -> list[OperatorTransaction]:
    rows = OperatorTransaction.objects.filter(action=function, key__startswith=str(request.pk))
    return sorted(rows, key=lambda tx: tx.created_at)


def _ask_market(request: AccessRequest, function: str) -> OperatorTransaction | None:
    """`AccessMarket.function(requestId)`, one transaction per attempt. A new attempt is
    made only after the last one reverted and its backoff passed; after
    SETTLEMENT_MAX_ATTEMPTS the request is flagged and admins are told."""
    attempts = _attempts(request, function)
    if attempts:
        last = attempts[-1]
        if last.status != OperatorTransaction.Status.FAILED:
            return last
        if len(attempts) >= settings.SETTLEMENT_MAX_ATTEMPTS:
            _flag(
                request,
                f"The {function} transaction failed {len(attempts)} times "
                f"(last: {last.tx_hash}); an admin must look.",
            )
            return last
        wait_s = settings.SETTLEMENT_RETRY_BASE_S * 2 ** (len(attempts) - 1)
        if (timezone.now() - last.updated_at).total_seconds() < wait_s:
            return last
    return operator_transaction_send(
        action=function,
        key=_attempt_key(request, len(attempts) + 1),
        function=function,
        args=[vouchers.request_id_bytes(request.chain_request_id)],
    )


def request_after_operator_transaction(*, tx: OperatorTransaction) -> None:
    """The sender saw a receipt for a settlement transaction: go on, or try again later.

    A mined `deliver` lets the grant go on; a reverted one sends the request back to paid
    (the grant task checks the chain again); a reverted release or refund is asked again
    after its backoff (SETTLEMENT_RETRY_BASE_S, doubling)."""
    if tx.action not in MARKET_FUNCTIONS:
        return
    request_id = tx.key.split("#", 1)[0]
    request = AccessRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        return
    failed = tx.status == OperatorTransaction.Status.FAILED
    if tx.action == "deliver":
        if failed and request.state == State.DELIVERING:
            request.advance(Move.UNDELIVERABLE)
            request.save(update_fields=["state", "updated_at"])
            _record(request, "undelivered", {"tx": tx.tx_hash})
        if request.state in (State.PAID, State.DELIVERING):
            countdown = settings.SETTLEMENT_RETRY_BASE_S if failed else 0
            transaction.on_commit(
                partial(_enqueue, "grant_access", request.pk, countdown=countdown)
            )
        return
    if not failed:
        return
    logger.warning("%s reverted for %s: asking again after a backoff", tx.action, request)
    attempts = len(_attempts(request, tx.action))
    countdown = settings.SETTLEMENT_RETRY_BASE_S * 2 ** (attempts - 1)
    task = {"release": "release_access", "refund": "refund_access", "cancel": "cancel_voucher"}
    transaction.on_commit(partial(_enqueue, task[tx.action], request.pk, countdown=countdown + 1))


def request_apply_settlement(*, event: ChainEvent) -> AccessRequest | None:
    """Released -> settled, Refunded -> refunded, Delivered and Cancelled recorded.

    A `Refunded` on a request whose data was delivered is an incident (the contract makes
    it impossible; a market that is not ours would not): the grants are dropped, the
    request flagged and admins told."""
    request = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("dataset", "researcher")
        .filter(chain_request_id=event.request_id)
        .first()
    )
    if request is None:
        return None
    if event.name == "Released" and request.can(Move.RELEASE):
        request.advance(Move.RELEASE)
    elif event.name == "Refunded" and request.can(Move.REFUND):
        request.advance(Move.REFUND)
    elif event.name == "Refunded" and request.can(Move.REFUND_INCIDENT):
        dropped = _drop_grants(request)
        request.advance(Move.REFUND_INCIDENT)
        request.flagged = (
            f"Refunded on chain ({event.tx_hash}) after the data was delivered; "
            f"{dropped} grant header(s) deleted."
        )[:300]
        request.save(update_fields=["state", "flagged", "updated_at"])
        _record(request, "refund", {"tx": event.tx_hash})
        _record(request, "flag", {"reason": request.flagged, "tx": event.tx_hash})
        return request
    else:
        if event.name in ("Delivered", "Cancelled", "Released", "Refunded"):
            audit_append(
                action=f"request.{event.name.lower()}",
                actor=None,
                object_type="access_request",
                object_id=request.pk,
                data={"state": request.state, "tx": event.tx_hash},
            )
        return request
    request.save(update_fields=["state", "updated_at"])
    _record(request, request.state, {"tx": event.tx_hash})
    return request


def request_revert_event(*, event: ChainEvent) -> AccessRequest | None:
    """A reorg took back a confirmed event: undo what it did, so nothing stands on a
    payment that is not in the canonical chain. If the same transaction is mined again,
    the indexer applies its event anew.

    Reverting a `Paid` after the grant means the reorg went deeper than CONFIRMATIONS:
    the grant's headers are deleted at once and admins are told.
    """
    request = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("dataset", "researcher")
        .filter(chain_request_id=event.request_id)
        .first()
    )
    if request is None:
        return None
    before = request.state
    if event.name == "Paid" and request.can(Move.REVERT_PAID):
        if before in LIVE:
            _drop_grants(request)
        request.advance(Move.REVERT_PAID)
        request.paid_tx = ""
        request.granted_at = request.expires_at = None
    elif event.name == "Released" and request.can(Move.REVERT_RELEASED):
        request.advance(Move.REVERT_RELEASED)
    elif event.name == "Refunded" and request.can(Move.REVERT_REFUNDED):
        request.advance(Move.REVERT_REFUNDED)
    else:
        return request
    request.save()
    _record(request, "reverted", {"event": event.name, "tx": event.tx_hash, "was": before})
    if event.name == "Paid" and before in LIVE:
        request.flagged = (
            f"The payment {event.tx_hash} left the canonical chain after the grant "
            "(a reorg deeper than the confirmations); the grant was withdrawn."
        )
        request.save(update_fields=["flagged", "updated_at"])
        _record(request, "flag", {"reason": request.flagged, "tx": event.tx_hash})
    return request


def _enqueue(task: str, request_id: UUID, countdown: float = 0) -> None:
    from marketplace import tasks

    enqueue(getattr(tasks, task), str(request_id), countdown=countdown)


def _drop_grants(request: AccessRequest) -> int:
    """Delete the headers made for this request, unless another live request of the same
    researcher still needs the same file."""
    key = request.researcher.crypt4gh_public_key
    if not key:
        return 0
    still_needed = files_of_requests(
        AccessRequest.objects.filter(researcher=request.researcher, state__in=LIVE).exclude(
            pk=request.pk
        )
    )
    files = [
        f for f in request_files(request).values_list("pk", flat=True) if f not in still_needed
    ]
    deleted, _ = Grant.objects.filter(file_id__in=files, recipient_public_key=bytes(key)).delete()
    return deleted


def request_revoke(*, actor: User, request_id: UUID | str, reason: str) -> AccessRequest:
    """granted/settled -> revoked (the donor or an admin): downloads stop and the
    request's grant headers are deleted. Nothing is refunded: the data has left."""
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("dataset", "researcher")
            .filter(pk=request_id)
            .first()
        )
        if request is None:
            raise NotFound("No such request.")
        if actor.pk != request.dataset.donor_id and actor.role != Role.ADMIN:
            raise PermissionDenied("Only the dataset's donor or an admin can revoke access.")
        if request.state == State.REVOKED:
            return request
        if not request.can(Move.REVOKE):
            raise Conflict("Only granted access can be revoked.")
        request.advance(Move.REVOKE)
        request.decision_reason = reason.strip() or request.decision_reason
        request.save(update_fields=["state", "decision_reason", "updated_at"])
        audit_append(
            action="request.revoke",
            actor=actor,
            object_type="access_request",
            object_id=request.pk,
            data={
                "state": request.state,
                "reason": reason,
                "grants_deleted": _drop_grants(request),
            },
        )
        notify_request_change(request=request)
    return request


def requests_close_for_withdrawn_consent(*, dataset: Dataset, actor: User) -> None:
    """Consent withdrawn: every request of the dataset ends (see `requests_end`). Called
    inside the withdrawal's transaction."""
    requests_end(
        requests=AccessRequest.objects.filter(dataset=dataset),
        actor=actor,
        reason="The donor withdrew consent.",
        cause="consent withdrawn",
    )


def requests_end(*, requests: QuerySet[AccessRequest], actor: User, reason: str, cause: str) -> int:
    """End every request of `requests` that can still go on, by the settlement rules: open
    ones are rejected (a payable voucher is cancelled on chain by the worker), paid ones
    not yet delivered are refunded, live grants revoked (nothing refunded: the data has
    left). `reason` is shown to the researcher, `cause` goes to the audit entries. Runs
    inside the caller's transaction; returns how many requests it ended."""
    ended = 0
    for request in requests.select_for_update(of=("self",)):
        if request.can(Move.REJECT):
            was_payable = request.state == State.PAYABLE
            request.advance(Move.REJECT)
            request.decision_reason = reason
            request.save(update_fields=["state", "decision_reason", "updated_at"])
            _record(request, "reject", {"reason": cause})
            if was_payable:
                transaction.on_commit(partial(_enqueue, "cancel_voucher", request.pk))
        elif request.state == State.PAID:
            _start_refund(request, f"{cause} before the grant")
        elif request.state in LIVE:
            request_revoke(actor=actor, request_id=request.pk, reason=reason)
        else:
            continue
        ended += 1
    return ended


def requests_lapse_and_expire(*, now: int | None = None) -> tuple[int, int]:
    """Periodic: unpaid vouchers past their validity lapse; grants past their access period
    expire (downloads stop). Returns (lapsed, expired)."""
    moment = timezone.now()
    seconds = now if now is not None else int(moment.timestamp())
    lapsed = expired = 0
    for request_id in AccessRequest.objects.filter(
        state=State.PAYABLE, voucher_valid_until__lt=seconds
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = AccessRequest.objects.select_for_update().get(pk=request_id)
            if request.can(Move.LAPSE):
                request.advance(Move.LAPSE)
                request.save(update_fields=["state", "updated_at"])
                _record(request, "lapse")
                lapsed += 1
    for request_id in AccessRequest.objects.filter(
        state__in=LIVE, expires_at__lte=moment
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = AccessRequest.objects.select_for_update().get(pk=request_id)
            if request.can(Move.EXPIRE):
                request.advance(Move.EXPIRE)
                request.save(update_fields=["state", "updated_at"])
                _record(request, "expire")
                expired += 1
    return lapsed, expired
