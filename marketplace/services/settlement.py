"""The access-request transitions that involve the chain and the vault (worker side).

approved --voucher signed--> payable --Paid event--> paid --grant made--> granted
--Released event--> settled; paid --cannot grant--> refunding --Refunded event--> refunded.

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

import logging
import time
from datetime import timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from web3 import Web3

from core.errors import Conflict, NotFound, PermissionDenied
from core.failpoints import failpoint
from core.queue import enqueue
from genomics.services.grants import grant_create
from ledger import vouchers
from ledger.models import ChainEvent
from ledger.operator import operator_account
from ledger.selectors.deployments import MARKET, deployment_get
from ledger.selectors.wallets import wallet_address_of
from ledger.services.sender import operator_transaction_send
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.services.audit import audit_append
from marketplace.services.notifications import notify_admins_of_flag, notify_request_change

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
    )


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
        market = deployment_get(name=MARKET)
        now = int(time.time())
        request.chain_request_id = chain_request_id(request.pk)
        request.buyer, request.payee = str(buyer), str(payee)
        request.voucher_valid_until = now + settings.VOUCHER_VALID_S
        request.voucher_refund_after = request.voucher_valid_until + settings.REFUND_GRACE_S
        request.voucher_chain_id, request.voucher_market = market.chain_id, market.address
        request.voucher_signature = vouchers.sign(
            operator_account(),
            chain_id=market.chain_id,
            market=market.address,
            voucher=voucher_for(request),
        )
        request.voucher_error = ""
        request.state = State.PAYABLE
        request.save()
        _record(request, "voucher", {"valid_until": request.voucher_valid_until})
    return request


def request_apply_payment(*, event: ChainEvent) -> AccessRequest | None:
    """A confirmed `Paid` event: payable -> paid, if it matches the voucher exactly."""
    request = (
        AccessRequest.objects.select_for_update().filter(chain_request_id=event.request_id).first()
    )
    if request is None:
        logger.warning("Paid event %s for an unknown request", event)
        return None
    if request.state not in (State.PAYABLE, State.LAPSED, State.WITHDRAWN):
        return request
    amount, buyer = int(event.args["amount"]), str(event.args["buyer"])
    if amount != int(request.amount) or buyer.lower() != request.buyer.lower():
        request.flagged = (
            f"Paid {amount} from {buyer}; the voucher says {int(request.amount)} "
            f"from {request.buyer}."
        )
        request.save(update_fields=["flagged", "updated_at"])
        _record(request, "flag", {"reason": request.flagged, "tx": event.tx_hash})
        return request
    wanted = request.state == State.PAYABLE
    request.state, request.paid_tx = State.PAID, event.tx_hash
    request.save(update_fields=["state", "paid_tx", "updated_at"])
    _record(request, "paid", {"tx": event.tx_hash})
    if wanted and request.dataset.state == Dataset.State.LISTED:
        transaction.on_commit(lambda: _enqueue("grant_access", request.pk))
    else:  # paid after withdrawing, lapsing or a consent withdrawal: give it back
        transaction.on_commit(lambda: _enqueue("refund_access", request.pk))
    return request


def request_grant(*, request_id: UUID | str) -> AccessRequest:
    """paid -> granted: a header per file for the researcher's key; then release. Run
    again (a retry, a redelivery) on a granted request, it only makes sure of the release."""
    request = _grant(request_id)
    if request.state == State.GRANTED:
        return request_release(request_id=request.pk)
    return request


def _grant(request_id: UUID | str) -> AccessRequest:
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("dataset", "researcher")
            .get(pk=request_id)
        )
        if request.state != State.PAID:
            return request
        key = request.researcher.crypt4gh_public_key
        problem = None
        if request.dataset.state != Dataset.State.LISTED:
            problem = "the donor withdrew consent before the grant"
        elif not key:
            problem = "the researcher has no Crypt4GH public key"
        if problem is None:
            try:
                for stored in request.dataset.files.all():
                    grant_create(file=stored, recipient_public_key=bytes(key or b""))
            except Conflict as exc:
                problem = exc.message
            failpoint("grant.headers_written")  # headers written, not yet committed
        if problem is not None:
            request.state = State.REFUNDING
            request.save(update_fields=["state", "updated_at"])
            _record(request, "refunding", {"reason": problem})
            transaction.on_commit(lambda: _enqueue("refund_access", request.pk))
            return request
        request.state = State.GRANTED
        request.granted_at = timezone.now()
        request.expires_at = request.granted_at + timedelta(days=request.dataset.access_days)
        request.save(update_fields=["state", "granted_at", "expires_at", "updated_at"])
        _record(request, "grant", {"expires_at": request.expires_at.isoformat()})
    return request


def request_release(*, request_id: UUID | str) -> AccessRequest:
    """Ask the market to pay the donor for a granted request: one release transaction per
    request, whoever asks and however often (a worker killed between the grant and this
    call is caught up by the reconciler)."""
    request = AccessRequest.objects.get(pk=request_id)
    if request.state == State.GRANTED:
        _ask_market(request, "release")
    return request


def request_refund(*, request_id: UUID | str) -> AccessRequest:
    """Ask the market to return the escrow (idempotent: one refund transaction)."""
    request = AccessRequest.objects.get(pk=request_id)
    if request.state in (State.PAID, State.WITHDRAWN, State.LAPSED):
        with transaction.atomic():
            AccessRequest.objects.filter(pk=request.pk).update(state=State.REFUNDING)
            request.state = State.REFUNDING
            _record(request, "refunding", {"reason": "paid but not to be granted"})
    if request.state == State.REFUNDING:
        _ask_market(request, "refund")
    return request


def _ask_market(request: AccessRequest, function: str) -> None:
    """`AccessMarket.release` or `.refund` of the request's escrow, sent once per request."""
    operator_transaction_send(
        action=function,
        key=str(request.pk),
        function=function,
        args=[vouchers.request_id_bytes(request.chain_request_id)],
    )


def request_apply_settlement(*, event: ChainEvent) -> AccessRequest | None:
    """Released -> settled, Refunded -> refunded."""
    request = (
        AccessRequest.objects.select_for_update().filter(chain_request_id=event.request_id).first()
    )
    if request is None:
        return None
    if event.name == "Released" and request.state == State.GRANTED:
        request.state = State.SETTLED
    elif event.name == "Refunded" and request.state not in (State.REFUNDED, State.SETTLED):
        request.state = State.REFUNDED
    else:
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
    if event.name == "Paid" and before in (State.PAID, State.REFUNDING, *LIVE):
        if before in LIVE:
            _drop_grants(request)
        request.state, request.paid_tx = State.PAYABLE, ""
        request.granted_at = request.expires_at = None
    elif event.name == "Released" and before == State.SETTLED:
        request.state = State.GRANTED
    elif event.name == "Refunded" and before == State.REFUNDED:
        request.state = State.REFUNDING
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


def _enqueue(task: str, request_id: UUID) -> None:
    from marketplace import tasks

    enqueue(getattr(tasks, task), str(request_id))


LIVE = (State.GRANTED, State.SETTLED)


def _drop_grants(request: AccessRequest) -> int:
    """Delete the headers made for this request, unless another live request of the same
    researcher still needs the same file."""
    from genomics.models import Grant

    key = request.researcher.crypt4gh_public_key
    if not key:
        return 0
    still_needed = set(
        AccessRequest.objects.filter(researcher=request.researcher, state__in=LIVE)
        .exclude(pk=request.pk)
        .values_list("dataset__files", flat=True)
    )
    files = [f for f in request.dataset.files.values_list("pk", flat=True) if f not in still_needed]
    deleted, _ = Grant.objects.filter(file_id__in=files, recipient_public_key=bytes(key)).delete()
    return deleted


def request_revoke(*, actor: User, request_id: UUID | str, reason: str) -> AccessRequest:
    """granted/settled -> revoked (the donor or an admin): downloads stop and the
    request's grant headers are deleted."""
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
        if request.state not in LIVE:
            raise Conflict("Only granted access can be revoked.")
        request.state = State.REVOKED
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
    """Consent withdrawn: open requests end; paid ones are refunded on chain, granted ones
    revoked. Called inside the withdrawal's transaction."""
    for request in AccessRequest.objects.select_for_update().filter(dataset=dataset):
        if request.state in (State.SUBMITTED, State.APPROVED, State.PAYABLE):
            request.state, request.decision_reason = State.REJECTED, "The donor withdrew consent."
            request.save(update_fields=["state", "decision_reason", "updated_at"])
            _record(request, "reject", {"reason": "consent withdrawn"})
        elif request.state == State.PAID:
            request.state = State.REFUNDING
            request.save(update_fields=["state", "updated_at"])
            _record(request, "refunding", {"reason": "consent withdrawn before the grant"})
            transaction.on_commit(partial(_enqueue, "refund_access", request.pk))
        elif request.state in LIVE:
            request_revoke(actor=actor, request_id=request.pk, reason="The donor withdrew consent.")


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
            if request.state == State.PAYABLE:
                request.state = State.LAPSED
                request.save(update_fields=["state", "updated_at"])
                _record(request, "lapse")
                lapsed += 1
    for request_id in AccessRequest.objects.filter(
        state__in=LIVE, expires_at__lte=moment
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = AccessRequest.objects.select_for_update().get(pk=request_id)
            if request.state in LIVE:
                request.state = State.EXPIRED
                request.save(update_fields=["state", "updated_at"])
                _record(request, "expire")
                expired += 1
    return lapsed, expired
