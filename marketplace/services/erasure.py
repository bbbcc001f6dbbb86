"""A donor's erasure of their data (issue 19 §5, GDPR Art. 17; RELIABILITY.md 28).

The donor asks (`erasure_request`, web): the listings holding the files are withdrawn at
once through the consent-withdrawal rules (open requests closed, payable vouchers
cancelled, requests paid but not delivered refunded on chain, live grants revoked;
delivered ones are not refunded: the data has left), and the worker is asked to erase.

The worker erases (`erasure_run`), in this order, each step idempotent so a crash or a
second copy of the task goes on where it stopped:

1. under the files' row locks (an archive key rotation moves one file at a time under the
   same lock, so the erasure waits for a file being moved, and the rotation then finds it
   gone), it records every storage object hanging off the files (`ErasureObject`) and
   destroys every header, grant header and wrapped data key in one transaction: from its
   commit no key opens the payloads (crypto-shredding); the visas of the grants go too;
2. it deletes the storage objects (payload parts, and whatever other modules recorded in
   rows hanging off the files: indexes, recompressed copies, region-tier objects);
3. it deletes the rows (the files and, by CASCADE, everything derived: variant-index rows
   included), the rows registered in `DATASET_DERIVED`, and the donor's personal fields of
   the audit log (side rows and their salts); one audit entry records the erasure;
4. it VACUUMs the tables it touched (PostgreSQL), so the dead rows' space is reclaimed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import NotFound, PermissionDenied, ValidationError
from core.queue import enqueue
from genomics import erasure as vault
from genomics.models import GenomicFile, Grant
from marketplace.models import (
    AccessRequest,
    AuditEntry,
    AuditPersonal,
    Dataset,
    Erasure,
    ErasureObject,
    Role,
    User,
    Visa,
)
from marketplace.models.lifecycle import LIVE
from marketplace.services.audit import audit_append, audit_personal_erase
from marketplace.services.datasets import dataset_withdraw

logger = logging.getLogger(__name__)
State = AccessRequest.State

# Rows derived from a donor's data that hang off a *dataset* (the dataset row itself stays,
# withdrawn, as the public record that requests and anchors name): "app_label.Model" ->
# the name of its foreign key to Dataset. Rows hanging off a *file* need no entry: they
# are found through their foreign keys (genomics.erasure). The lead registers other
# branches' dataset-keyed derived rows here (e.g. a variant index keyed by dataset).
DATASET_DERIVED: dict[str, str] = {
    # What the Beacon released about the dataset, and the donor's Beacon choice: derived
    # from the donor's data, erased with it (the variant rows go with the files).
    "disclosure.ReleasedAnswer": "dataset",
    "discovery.BeaconPolicy": "dataset",
}
# Tables with a foreign key to Dataset that an erasure keeps (not the donor's data): the
# requests (the researchers' records, with their settlement history). A table in neither
# registry fails tests/marketplace/test_erasure.py, so each new one is decided.
# Also kept: the agreement versions researchers accepted (requests name them, and the
# acceptance must stay provable) and the blocklist (records about researchers).
DATASET_KEPT: frozenset[str] = frozenset(
    {
        "marketplace.AccessRequest",
        "marketplace.DataAccessAgreement",
        "marketplace.DatasetBlock",
        # A region tier's listing (name, price, regions) is public like the listing record
        # and requests name it; its slice objects are file rows, erased with their parent.
        "marketplace.DatasetTier",
    }
)

DELIVERED = (*LIVE, State.EXPIRED, State.REVOKED)
UNPAID_OPEN = (State.SUBMITTED, State.APPROVED, State.PAYABLE)
PAID_UNDELIVERED = (State.PAID,)

CANNOT_UNDO = (
    "Erasure cannot take back copies already downloaded: researchers whose grants were "
    "delivered keep the files they downloaded, encrypted to their own keys, under the "
    "terms they accepted, and the payments for delivered access are not refunded. It "
    "cannot remove what an audit entry written before per-person fields existed holds, "
    "nor copies of the database in backups until they are rotated out."
)


@dataclass(frozen=True)
class ErasurePreview:
    """What an erasure will do, counted before the donor confirms (issue 19 §6)."""

    files: list[dict[str, str]]
    datasets_withdrawn: list[dict[str, str]]
    requests_closed: int
    requests_refunded: int
    requests_in_delivery: int
    grants_revoked: int
    delivered_not_refunded: int
    researchers_with_copies: int
    headers_destroyed: int
    storage_objects: int
    cannot_undo: str = CANNOT_UNDO

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _files_of(donor: User, files: list[str] | str) -> list[GenomicFile]:
    owned = GenomicFile.objects.filter(owner=donor)
    if files == "all":
        return list(owned.order_by("created_at"))
    if not isinstance(files, list) or not files:
        raise ValidationError(
            'Name the files to erase, or "all".', fields={"files": ["A list of ids or all."]}
        )
    try:
        wanted = {UUID(str(f)) for f in files}
    except ValueError as exc:
        raise ValidationError("Unknown file id.", fields={"files": ["Unknown file id."]}) from exc
    found = list(owned.filter(pk__in=wanted))
    if len(found) != len(wanted):
        raise NotFound("No such file among yours.")
    return found


def _datasets_of(file_ids: Sequence[object]) -> list[Dataset]:
    return list(Dataset.objects.filter(files__in=file_ids).distinct().order_by("created_at"))


def erasure_preview(*, donor: User, files: list[str] | str) -> ErasurePreview:
    """Count what erasing `files` ("all", or ids of the donor's files) will do."""
    if donor.role != Role.DONOR:
        raise PermissionDenied("Only donors erase their data.")
    chosen = _files_of(donor, files)
    ids = [f.pk for f in chosen]
    datasets = _datasets_of(ids)
    requests = AccessRequest.objects.filter(dataset__in=datasets)
    delivered = requests.filter(state__in=DELIVERED)
    downloaders = AuditEntry.objects.filter(
        action="request.download",
        object_type="access_request",
        object_id__in=[str(pk) for pk in delivered.values_list("pk", flat=True)],
    )
    rows = vault.derived_rows(ids)
    return ErasurePreview(
        files=[{"id": str(f.pk), "filename": f.filename} for f in chosen],
        datasets_withdrawn=[
            {"id": str(d.pk), "title": d.title} for d in datasets if d.state == Dataset.State.LISTED
        ],
        requests_closed=requests.filter(state__in=UNPAID_OPEN).count(),
        requests_refunded=requests.filter(state__in=PAID_UNDELIVERED).count(),
        requests_in_delivery=requests.filter(state=State.DELIVERING).count(),
        grants_revoked=requests.filter(state__in=LIVE).count(),
        delivered_not_refunded=delivered.count(),
        researchers_with_copies=downloaders.values("actor_id").distinct().count(),
        headers_destroyed=sum(1 for f in chosen if f.header is not None)
        + Grant.objects.filter(file_id__in=rows.by_model.get(GenomicFile, set())).count(),
        storage_objects=len(vault.storage_names(rows)),
    )


def erasure_request(*, donor: User, files: list[str] | str, confirm: bool) -> Erasure:
    """The donor asks to erase `files` ("all" or ids): listings withdrawn now (refunds of
    paid, undelivered requests follow on chain), the erasure queued for the worker.

    Raises ValidationError without `confirm`, PermissionDenied for a non-donor, NotFound
    for a file that is not the donor's."""
    if donor.role != Role.DONOR:
        raise PermissionDenied("Only donors erase their data.")
    if confirm is not True:
        raise ValidationError(
            "Confirm the erasure: it cannot be undone.", fields={"confirm": ["Must be true."]}
        )
    chosen = _files_of(donor, files)
    ids = [str(f.pk) for f in chosen]
    with transaction.atomic():
        erasure = Erasure.objects.create(donor=donor, file_ids=ids, everything=files == "all")
        for dataset in _datasets_of(ids):
            if dataset.state == Dataset.State.LISTED:
                dataset_withdraw(dataset=dataset, actor=donor)
        audit_append(
            action="donor.erase_request",
            actor=donor,
            object_type="erasure",
            object_id=erasure.pk,
            data={"files": ids, "everything": erasure.everything},
        )
        transaction.on_commit(partial(_enqueue, erasure.pk))
    return erasure


def _enqueue(erasure_id: UUID) -> None:
    from marketplace import tasks

    enqueue(tasks.erase_donor_data, str(erasure_id))


def erasure_run(*, erasure_id: UUID | str) -> Erasure:
    """Do a requested erasure (worker; module docstring). Idempotent."""
    erasure = Erasure.objects.select_related("donor").get(pk=erasure_id)
    if erasure.state == Erasure.State.DONE:
        return erasure
    donor = erasure.donor
    summary: dict[str, object] = dict(erasure.summary)

    # 1. Headers first, under the files' row locks (taken in one order: no deadlock with
    # another erasure; a rotation holds one file's lock at a time).
    with transaction.atomic():
        locked = list(
            GenomicFile.objects.select_for_update()
            .filter(pk__in=erasure.file_ids, owner=donor)  # never another donor's file
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = vault.derived_rows(locked)
        ErasureObject.objects.bulk_create(
            [ErasureObject(erasure=erasure, storage_name=n) for n in vault.storage_names(rows)],
            ignore_conflicts=True,
        )
        grants = Grant.objects.filter(file_id__in=rows.by_model.get(GenomicFile, set())).count()
        summary["headers_destroyed"] = int(str(summary.get("headers_destroyed", 0))) + (
            vault.secrets_destroy(rows)
        )
        summary["grants_destroyed"] = int(str(summary.get("grants_destroyed", 0))) + grants
        datasets = list(
            Dataset.objects.filter(Q(files__in=locked) | Q(pk__in=_datasets_recorded(erasure)))
            .distinct()
            .values_list("pk", flat=True)
        )
        visas, _ = Visa.objects.filter(request__dataset__in=datasets).delete()
        summary["visas_withdrawn"] = int(str(summary.get("visas_withdrawn", 0))) + visas
        summary["datasets"] = sorted({*map(str, datasets), *_datasets_recorded(erasure)})
        Erasure.objects.filter(pk=erasure.pk).update(summary=summary, updated_at=timezone.now())

    # 2. Storage objects: everything recorded, except what a row outside the erasure names.
    names = list(erasure.storage_objects.values_list("storage_name", flat=True))
    kept = vault.names_kept_by_others(names, rows, ignore=[ErasureObject])
    if kept:
        logger.error("erasure %s: not deleting objects other rows name: %s", erasure.pk, kept)
    summary["storage_objects_deleted"] = int(
        str(summary.get("storage_objects_deleted", 0))
    ) + vault.storage_delete([n for n in names if n not in kept])
    summary["storage_objects_kept"] = sorted(kept)

    # 3. Rows, the audit log's personal fields, and the one audit entry of the erasure.
    with transaction.atomic():
        rows = vault.derived_rows(
            list(
                GenomicFile.objects.select_for_update()
                .filter(pk__in=erasure.file_ids, owner=donor)
                .values_list("pk", flat=True)
            )
        )
        deleted = vault.rows_delete(rows)
        for label, fk in DATASET_DERIVED.items():
            model = apps.get_model(label)
            _, per = model._default_manager.filter(**{f"{fk}__in": summary["datasets"]}).delete()
            deleted[model._meta.db_table] = sum(per.values())
        summary["rows_deleted"] = deleted
        if erasure.everything:
            seqs = None
        else:
            objects = [*map(str, erasure.file_ids), *summary["datasets"], str(erasure.pk)]  # type: ignore[misc]
            seqs = list(
                AuditEntry.objects.filter(
                    actor_id=str(donor.pk), object_id__in=objects
                ).values_list("seq", flat=True)
            )
        summary["audit_personal_rows_deleted"] = audit_personal_erase(
            subject_ids=[str(donor.pk)], entry_seqs=seqs
        )
        erasure.storage_objects.all().delete()
        erasure.state = Erasure.State.DONE
        erasure.done_at = timezone.now()
        erasure.summary = summary
        erasure.save(update_fields=["state", "done_at", "summary", "updated_at"])
        audit_append(
            action="donor.erase",
            actor=None,
            object_type="erasure",
            object_id=erasure.pk,
            data={k: v for k, v in summary.items() if k != "storage_objects_kept"},
        )

    # 4. Reclaim the dead rows' space now rather than at autovacuum's leisure.
    tables = sorted(
        {
            *rows.tables(),
            *deleted,
            Grant._meta.db_table,
            Visa._meta.db_table,
            AuditPersonal._meta.db_table,
            ErasureObject._meta.db_table,
        }
    )
    vacuumed = tables_vacuum(tables)
    if vacuumed:
        summary["vacuumed"] = vacuumed
        Erasure.objects.filter(pk=erasure.pk).update(summary=summary)
        erasure.summary = summary
    return erasure


def _datasets_recorded(erasure: Erasure) -> list[str]:
    return [str(d) for d in erasure.summary.get("datasets", [])]


def tables_vacuum(tables: list[str]) -> list[str]:
    """`VACUUM (ANALYZE)` each table (PostgreSQL; VACUUM cannot run inside a transaction,
    so inside one nothing is done and [] returned). Returns the tables vacuumed."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return []
    done = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
            done.append(table)
    return done
