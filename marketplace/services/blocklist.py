"""The per-dataset blocklist (issue 19 §4, as REMS' blacklist): a researcher whose access
is revoked for misuse may not request the dataset again; their other requests for it end
by the settlement rules."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, NotFound, PermissionDenied
from marketplace.models import AccessRequest, Dataset, DatasetBlock, Role, User
from marketplace.services.audit import audit_append
from marketplace.services.notifications import notify_user
from marketplace.services.settlement import request_revoke, requests_end


def _may_block(actor: User, dataset: Dataset) -> None:
    if actor.pk != dataset.donor_id and actor.role != Role.ADMIN:
        raise PermissionDenied("Only the dataset's donor or an admin can block a researcher.")


def request_revoke_for_misuse(*, actor: User, request_id: UUID | str, reason: str) -> AccessRequest:
    """granted/settled -> revoked, and the researcher is blocked from the dataset: their
    open requests for it are rejected (payable vouchers cancelled on chain), paid ones
    refunded, other live grants of it revoked; new requests are refused. One audit entry
    for the revocation, one for the block, one per request ended. Raises NotFound,
    PermissionDenied, Conflict (the request is not live)."""
    with transaction.atomic():
        revoked = request_revoke(actor=actor, request_id=request_id, reason=reason)
        researcher_block(
            actor=actor,
            dataset_id=revoked.dataset_id,
            researcher_id=revoked.researcher_id,
            reason=reason,
            request=revoked,
        )
    return revoked


def researcher_block(
    *,
    actor: User,
    dataset_id: UUID | str,
    researcher_id: UUID | str,
    reason: str,
    request: AccessRequest | None = None,
) -> DatasetBlock:
    """Block a researcher from a dataset (idempotent: an active block is returned as is)."""
    reason = reason.strip()
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
        if dataset is None:
            raise NotFound("No such dataset.")
        _may_block(actor, dataset)
        researcher = User.objects.filter(pk=researcher_id, role=Role.RESEARCHER).first()
        if researcher is None:
            raise NotFound("No such researcher.")
        active = DatasetBlock.objects.filter(
            dataset=dataset, researcher=researcher, lifted_at__isnull=True
        ).first()
        if active is not None:
            return active
        block = DatasetBlock.objects.create(
            dataset=dataset,
            researcher=researcher,
            reason=reason,
            request=request,
            created_by=actor,
        )
        audit_append(
            action="dataset.block",
            actor=actor,
            object_type="dataset",
            object_id=dataset.pk,
            data={
                "researcher": researcher.pk,
                "request": str(request.pk) if request else None,
                "reason": reason,
            },
        )
        requests_end(
            requests=AccessRequest.objects.filter(dataset=dataset, researcher=researcher),
            actor=actor,
            reason=f"You are blocked from this dataset: {reason}",
            cause="researcher blocked",
        )
        notify_user(
            user=researcher,
            message=(
                f"You may no longer request “{dataset.title}”: you were blocked from it. "
                f"Reason: {reason[:300]} If you believe this is a mistake, write to the "
                "platform's staff."
            ),
            link=f"/datasets/{dataset.pk}/",
        )
    return block


def researcher_unblock(*, actor: User, block_id: UUID | str) -> DatasetBlock:
    """Lift a block (the donor or an admin); the row stays with who lifted it and when."""
    with transaction.atomic():
        block = (
            DatasetBlock.objects.select_for_update()
            .select_related("dataset")
            .filter(pk=block_id)
            .first()
        )
        if block is None:
            raise NotFound("No such block.")
        _may_block(actor, block.dataset)
        if block.lifted_at is not None:
            raise Conflict("This block was already lifted.")
        block.lifted_at, block.lifted_by = timezone.now(), actor
        block.save(update_fields=["lifted_at", "lifted_by"])
        audit_append(
            action="dataset.unblock",
            actor=actor,
            object_type="dataset",
            object_id=block.dataset_id,
            data={"researcher": block.researcher_id, "block": str(block.pk)},
        )
    return block
