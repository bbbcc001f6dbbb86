"""Listing datasets, editing listings and withdrawing consent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from genomics.models import GenomicFile
from genomics.services.indexes import sliceable
from ledger.selectors.wallets import wallet_address_of
from marketplace.consent import parse_codes
from marketplace.consent.codes import ConsentCode
from marketplace.consent.terms import term
from marketplace.models import AccessRequest, DataAccessCommittee, Dataset, Role, User
from marketplace.models.lifecycle import Move, can
from marketplace.services.access_requests import request_close
from marketplace.services.audit import audit_append
from marketplace.services.notifications import notify_dataset_delisted
from marketplace.services.settlement import requests_close_for_withdrawn_consent

MAX_ACCESS_DAYS = 3650
# Paid and not yet settled: a delisting lets these go on to delivery and release.
PAID_STATES = (
    AccessRequest.State.PAID,
    AccessRequest.State.DELIVERING,
    AccessRequest.State.GRANTED,
)
# What AccessMarket's escrow can hold (`uint96 amount`): a higher price could be listed and
# approved but never paid.
MAX_PRICE = 2**96 - 1


def _price(raw: str | int) -> Decimal:
    text = str(raw).strip()
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValidationError(
            "The price must be a whole number of token base units.",
            fields={"price": ['Use digits only, e.g. "1000000000000000000".']},
        ) from exc
    if value != value.to_integral_value() or value <= 0 or not text.isdigit():
        raise ValidationError(
            "The price must be a positive whole number of token base units.",
            fields={"price": ["A positive integer, as a string."]},
        )
    if value > MAX_PRICE:
        raise ValidationError(
            f"The price is more than the escrow can hold ({MAX_PRICE} base units, about "
            f"{MAX_PRICE // 10**18:,} tokens of 18 decimals).",
            fields={"price": [f"At most {MAX_PRICE}."]},
        )
    return value


def public_metadata(files: Sequence[GenomicFile]) -> dict[str, object]:
    """What a listing shows of its files: ingest metadata, never sample ids."""
    return {
        "files": [
            {
                "id": str(f.pk),
                "format": f.format,
                "size": f.plaintext_size,
                "plaintext_sha256": f.plaintext_sha256,
                # Whether htsget serves regions of it (a plain or gzip VCF cannot be sliced).
                "sliceable": sliceable(f),
                **{
                    key: f.metadata.get(key)
                    for key in (
                        "format_version",
                        "compression",
                        "reference_build",
                        "samples",
                        "records",
                        "record_kind",
                        "contigs",
                    )
                },
            }
            for f in files
        ],
        "total_size": sum(f.plaintext_size or 0 for f in files),
    }


def record_hash(dataset: Dataset) -> str:
    record = {
        "id": str(dataset.pk),
        "donor": str(dataset.donor_id),
        "title": dataset.title,
        "description": dataset.description,
        "price": str(dataset.price),
        "access_days": dataset.access_days,
        "review": dataset.review,
        "duo_codes": dataset.duo_codes,
        "metadata": dataset.metadata,
    }
    if not dataset.whole_for_sale:  # only then, so records listed before tiers keep their hash
        record["whole_for_sale"] = False
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def datasets_file_changed(*, file: GenomicFile) -> list[Dataset]:
    """`file`'s stored bytes changed (stored bgzipped: genomics.services.recompress): every
    listing that shows it describes it again (checksum, size, compression, whether it is
    sliceable), so its record, and the record's hash, anchored again, name what researchers
    now get. The file's entry is replaced where it stands; the rest of the record is
    unchanged. Withdrawn and delisted datasets keep the record they ended with. Inside the
    caller's transaction; each change audited as `dataset.update`."""
    changed = []
    entry = public_metadata([file])["files"]
    assert isinstance(entry, list)
    listed = Dataset.objects.select_for_update().filter(files=file, state=Dataset.State.LISTED)
    for dataset in listed:
        metadata = dict(dataset.metadata or {})
        files = [
            entry[0] if str(item.get("id")) == str(file.pk) else item
            for item in metadata.get("files") or []
        ]
        metadata["files"] = files
        metadata["total_size"] = sum(int(item.get("size") or 0) for item in files)
        before = dataset.record_hash
        dataset.metadata = metadata
        dataset.record_hash = record_hash(dataset)
        if dataset.record_hash == before:
            continue
        dataset.anchor_tx, dataset.anchored_at = "", None
        dataset.save(update_fields=["metadata", "record_hash", "anchor_tx", "anchored_at"])
        audit_append(
            action="dataset.update",
            actor=None,
            object_type="dataset",
            object_id=dataset.pk,
            data={
                "record_hash": dataset.record_hash,
                "previous": before,
                "file": str(file.pk),
                "cause": "file stored bgzipped",
            },
        )
        changed.append(dataset)
    return changed


@dataclass(frozen=True)
class _Listing:
    """A listing's terms, checked: what creating and editing share."""

    title: str
    description: str
    files: list[GenomicFile]
    consent: list[ConsentCode]
    price: Decimal
    access_days: int
    review: str
    # The committee chosen (issue 19 §1); None: the platform's on creation, unchanged on edit.
    dac: DataAccessCommittee | None = None


def _committee(dac: object) -> DataAccessCommittee | None:
    """The committee a donor named, by id; ValidationError for an unknown one."""
    if dac in (None, ""):
        return None
    from marketplace.selectors.committees import dac_get

    try:
        return dac_get(dac_id=dac)
    except NotFound:
        raise ValidationError(
            "No such data access committee.", fields={"dac": ["Unknown committee."]}
        ) from None


def _listing_validate(
    *,
    donor: User,
    title: str,
    description: str,
    files: Sequence[UUID],
    duo_codes: Sequence[object],
    price: str | int,
    access_days: int,
    review: str,
    dac: object = None,
) -> _Listing:
    if donor.role != Role.DONOR:
        raise PermissionDenied("Only donors list datasets.")
    if not title.strip():
        raise ValidationError("Give the dataset a title.", fields={"title": ["Required."]})
    consent = parse_codes(duo_codes, field="duo_codes")
    # DS may repeat, once per disease: still one permission.
    permissions = {c.code for c in consent if (t := term(c.code)) is not None and t.is_permission}
    if len(permissions) != 1:
        raise ValidationError(
            "Consent needs exactly one data use permission (NRES, GRU, HMB, DS or POA).",
            fields={"duo_codes": ["Exactly one permission."]},
        )
    if not 1 <= access_days <= MAX_ACCESS_DAYS:
        raise ValidationError(
            "The access period is out of range.",
            fields={"access_days": [f"Between 1 and {MAX_ACCESS_DAYS} days."]},
        )
    if review not in Dataset.Review.values:
        raise ValidationError("Unknown review policy.", fields={"review": ["auto or committee."]})
    wanted = list(dict.fromkeys(files))
    if not wanted:
        raise ValidationError("List at least one file.", fields={"files": ["Required."]})
    owned = list(GenomicFile.objects.filter(pk__in=wanted, owner_id=donor.pk, parent__isnull=True))
    if len(owned) != len(wanted):
        raise ValidationError(
            "Some files are not yours or do not exist.", fields={"files": ["Unknown file id."]}
        )
    not_ready = [f.filename for f in owned if f.state != GenomicFile.State.READY]
    if not_ready:
        raise ValidationError(
            f"Files not ready yet: {', '.join(not_ready)}.",
            fields={"files": ["Only ready files can be listed."]},
        )
    return _Listing(
        title=title.strip(),
        description=description.strip(),
        files=owned,
        consent=consent,
        price=_price(price),
        access_days=access_days,
        review=review,
        dac=_committee(dac),
    )


def _apply(dataset: Dataset, listing: _Listing) -> None:
    dataset.title, dataset.description = listing.title, listing.description
    dataset.price, dataset.access_days = listing.price, listing.access_days
    dataset.review = listing.review
    if listing.dac is not None:
        dataset.dac = listing.dac
    dataset.duo_codes = [{"code": c.code, "value": c.value} for c in listing.consent]
    dataset.duo_index = " " + " ".join(c.code for c in listing.consent) + " "
    dataset.format_index = " " + " ".join(sorted({f.format for f in listing.files})) + " "
    dataset.reference_index = (
        " "
        + " ".join(sorted({str(f.metadata.get("reference_build")) for f in listing.files}))
        + " "
    )
    dataset.metadata = public_metadata(listing.files)
    dataset.record_hash = record_hash(dataset)


class PayoutWalletMissing(ValidationError):
    """Listing refused: the donor has no linked wallet to be paid to (400)."""

    code = "payout_wallet_required"


PAYOUT_WALLET_MESSAGE = (
    "Link a payout wallet before listing: each payment for your data is released to it, and "
    "without one an approved request waits and cannot be paid. Link one on your profile "
    "(/profile/), then list again."
)


def _require_payout_wallet(donor: User) -> None:
    """Every listing has a price (at least 1 base unit), so every approval needs the
    donor's address in its voucher: a listing without one would strand its researchers
    (issue 16 §1). Raises PayoutWalletMissing."""
    if wallet_address_of(user=donor) is None:
        raise PayoutWalletMissing(
            PAYOUT_WALLET_MESSAGE, fields={"wallet": ["No payout wallet is linked."]}
        )


def dataset_create(*, donor: User, **terms: Any) -> Dataset:
    """List ready files with consent codes, a price, an access period and a review policy.

    Raises ValidationError for bad terms and PayoutWalletMissing (400,
    `payout_wallet_required`) when the donor has no linked wallet to be paid to."""
    listing = _listing_validate(donor=donor, **terms)
    _require_payout_wallet(donor)
    with transaction.atomic():
        dataset = Dataset(donor=donor)
        _apply(dataset, listing)
        dataset.save()
        dataset.files.set(listing.files)
        audit_append(
            action="dataset.create",
            actor=donor,
            object_type="dataset",
            object_id=dataset.pk,
            data={"record_hash": dataset.record_hash, "dac": str(dataset.dac_id)},
        )
    return dataset


def dataset_update(*, dataset: Dataset, actor: User, **terms: Any) -> Dataset:
    """Change a listing. Requests already made keep the price and consent check they were
    made under; the new record gets a new hash, which is anchored again."""
    if actor.pk != dataset.donor_id:
        raise PermissionDenied("Only the donor can edit the listing.")
    listing = _listing_validate(donor=actor, **terms)
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state != Dataset.State.LISTED:
            raise Conflict("A withdrawn listing cannot be edited.")
        before, committee_before = locked.record_hash, locked.dac_id
        _apply(locked, listing)
        if locked.record_hash == before and locked.dac_id == committee_before:
            return locked
        if locked.record_hash != before:
            locked.anchor_tx, locked.anchored_at = "", None
        locked.save()
        files_before = set(locked.files.values_list("pk", flat=True))
        locked.files.set(listing.files)
        if files_before != {f.pk for f in listing.files}:
            # Region tiers are slices of the files: new files, new slices (README
            # "Selling regions"). Imported here: the tiers service uses this module.
            from marketplace.services.tiers import tiers_rebuild

            tiers_rebuild(dataset=locked)
        audit_append(
            action="dataset.update",
            actor=actor,
            object_type="dataset",
            object_id=locked.pk,
            data={
                "record_hash": locked.record_hash,
                "previous": before,
                "dac": str(locked.dac_id),
            },
        )
    return locked


def datasets_consent_reindex(*, batch_size: int = 2000) -> int:
    """Recompute every dataset's consent-filter tokens (Dataset.duo_fits, duo_requires)
    from its consent, e.g. after the shipped DUO or MONDO extract changed; returns how many
    rows changed. Saving a listing keeps its own tokens current without this."""
    changed, batch = 0, []
    for dataset in Dataset.objects.only(
        "pk", "duo_codes", "access_days", "duo_fits", "duo_requires"
    ).iterator(chunk_size=batch_size):
        before = (dataset.duo_fits, dataset.duo_requires)
        dataset.refresh_consent_index()
        if (dataset.duo_fits, dataset.duo_requires) != before:
            batch.append(dataset)
        if len(batch) >= batch_size:
            changed += Dataset.objects.bulk_update(batch, ["duo_fits", "duo_requires"])
            batch = []
    changed += Dataset.objects.bulk_update(batch, ["duo_fits", "duo_requires"])
    return changed


def dataset_withdraw(*, dataset: Dataset, actor: User) -> Dataset:
    """Withdraw consent: unlisted at once, no new grants; open requests are closed, paid
    ones refunded on chain, granted ones revoked."""
    if actor.pk != dataset.donor_id and actor.role != Role.ADMIN:
        raise PermissionDenied("Only the donor can withdraw consent.")
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state == Dataset.State.WITHDRAWN:
            return locked  # idempotent
        if locked.state not in (Dataset.State.LISTED, Dataset.State.DELISTED):
            raise Conflict("This dataset cannot be withdrawn.")
        locked.state = Dataset.State.WITHDRAWN
        locked.withdrawn_at = timezone.now()
        locked.save(update_fields=["state", "withdrawn_at"])
        audit_append(
            action="dataset.withdraw", actor=actor, object_type="dataset", object_id=locked.pk
        )
        requests_close_for_withdrawn_consent(dataset=locked, actor=actor)
    return locked


def dataset_delist(*, dataset: Dataset, admin: User, reason: str) -> Dataset:
    """An admin takes a listing out of the catalogue (issue 16 §6): it leaves the catalogue
    and the API listing at once and takes no new request. Requests that wait (submitted,
    approved, awaiting payment) are closed through the lifecycle's `close` move, a payable
    one's voucher cancelled on chain by the worker's task (the web builds no transaction);
    paid, delivering and granted ones keep going under the settlement rules (the consent
    stands: `Dataset.consent_stands`). The donor and each researcher concerned are told,
    with the reason. Idempotent. Raises PermissionDenied (not an admin), ValidationError
    (no reason), Conflict (consent already withdrawn)."""
    if admin.role != Role.ADMIN:
        raise PermissionDenied("Only an admin delists a dataset.")
    if not reason.strip():
        raise ValidationError("Say why the dataset is delisted.", fields={"reason": ["Required."]})
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().select_related("donor").get(pk=dataset.pk)
        if locked.state == Dataset.State.DELISTED:
            return locked
        if locked.state != Dataset.State.LISTED:
            raise Conflict(
                f"This dataset is not listed ({locked.get_state_display().lower()}): "
                "there is nothing to delist."
            )
        locked.state = Dataset.State.DELISTED
        locked.delisted_at = timezone.now()
        locked.delist_reason = reason.strip()
        locked.save(update_fields=["state", "delisted_at", "delist_reason"])
        waiting, continuing = [], 0
        for request_id, state in locked.requests.values_list("pk", "state"):
            if can(state, Move.CLOSE):
                waiting.append(request_id)
            elif state in PAID_STATES:
                continuing += 1
        for request_id in waiting:
            request_close(
                admin=admin,
                request_id=request_id,
                reason=f"The dataset was delisted by an admin: {locked.delist_reason}",
            )
        audit_append(
            action="dataset.delist",
            actor=admin,
            object_type="dataset",
            object_id=locked.pk,
            data={
                "reason": locked.delist_reason,
                "requests_closed": len(waiting),
                "requests_continuing": continuing,
            },
        )
        notify_dataset_delisted(
            dataset=locked, reason=locked.delist_reason, closed=len(waiting), continuing=continuing
        )
    return locked
