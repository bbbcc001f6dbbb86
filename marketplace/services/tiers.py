"""Region tiers (README "Selling regions"): a donor sells a dataset limited to regions
(given as BED or as gene names), at the tier's own price.

The scope is enforced by encryption, not by serving fewer bytes: the worker makes, once per
tier at listing time, a region object of each file (genomics.services.region_objects: the
records inside the regions, re-encrypted under a fresh data key), and a grant of the tier
is a header for those objects only (marketplace.selectors.scope).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.queue import enqueue
from genomics import regions as genomic_regions
from genomics.models import GenomicFile
from genomics.services.region_objects import (
    RegionObjectBusy,
    RegionSliceRefused,
    region_object_create,
    region_refusal,
)
from ledger.integrity import row_mac, row_mac_valid
from marketplace.models import Dataset, DatasetTier, User
from marketplace.services.audit import audit_append
from marketplace.services.datasets import record_hash

MAX_TIERS = 20

logger = logging.getLogger(__name__)


def _price(value: str | int) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        price = Decimal(-1)
    if price != price.to_integral_value() or price < 1 or price >= Decimal(10) ** 60:
        raise ValidationError(
            "The price must be a whole number of token base units, at least 1.",
            fields={"price": ["A positive integer."]},
        )
    return price


def _contig_lengths(files: Sequence[GenomicFile]) -> dict[str, int]:
    """Contig name -> length in bp, from the files' headers as ingest recorded them
    (metadata `contig_lengths`; files ingested before it have none, and the worker checks
    their headers when it builds the tier). Where files disagree the shorter counts."""
    lengths: dict[str, int] = {}
    for f in files:
        for name, length in ((f.metadata or {}).get("contig_lengths") or {}).items():
            if isinstance(length, int) and length > 0:
                key = genomic_regions.contig_key(name)
                lengths[key] = min(length, lengths.get(key, length))
    return lengths


def _build(files: Sequence[GenomicFile]) -> str | None:
    builds = {str((f.metadata or {}).get("reference_build") or "") for f in files}
    return builds.pop() if len(builds) == 1 else None


def tier_create(
    *,
    dataset: Dataset,
    actor: User,
    name: str,
    price: str | int,
    bed: str = "",
    genes: Sequence[str] = (),
) -> DatasetTier:
    """Offer `dataset` limited to regions: `bed` (BED text) or `genes` (symbols resolved
    in the shipped gene table of the files' reference build), exactly one of them.

    Raises PermissionDenied (not the donor), Conflict (a withdrawn listing), and
    ValidationError naming the field: a file that cannot be sliced (plain VCF, FASTQ...),
    bad BED, unknown genes, a BED contig or a gene's contig no file has (names matched by
    genomics.regions.contig_key), a region past its contig's length (when the files'
    headers gave lengths at ingest, metadata `contig_lengths`), a duplicate name, a bad
    price. The tier is `preparing` until the worker has made its region objects.

    The name of a `failed` tier is not taken: creating it again is the retry (the same
    row, prepared again with the regions now given)."""
    if actor.pk != dataset.donor_id:
        raise PermissionDenied("Only the dataset's donor can sell regions of it.")
    if dataset.state != Dataset.State.LISTED:
        raise Conflict("A withdrawn listing cannot get new tiers.")
    label = name.strip()
    if not label or len(label) > 100:
        raise ValidationError(
            "Name the tier (at most 100 characters).", fields={"name": ["Required."]}
        )
    amount = _price(price)
    files = list(dataset.files.all())
    refusals = [r for f in files if (r := region_refusal(f)) is not None]
    if refusals:
        raise ValidationError(" ".join(refusals), fields={"files": refusals})
    if bool(bed.strip()) == bool([g for g in genes if g.strip()]):
        raise ValidationError(
            "Give the regions either as a BED file or as gene names.",
            fields={"bed": ["One of bed or genes."], "genes": ["One of bed or genes."]},
        )
    build = _build(files)
    contigs = sorted({str(c) for f in files for c in (f.metadata or {}).get("contigs") or []})
    if bed.strip():
        source, wanted_genes, table = DatasetTier.Source.BED, [], ""
        regions = genomic_regions.bed_parse(bed)
        unknown = sorted(
            {c for c, _, _ in regions if not genomic_regions.contig_known(c, contigs)}
            if contigs
            else []
        )
        if unknown:
            raise ValidationError(
                f"The BED names contigs the files do not have: {', '.join(unknown[:10])}. "
                f"Their contigs are named like {', '.join(contigs[:3])}.",
                fields={"bed": ["Unknown contig."]},
            )
    else:
        source = DatasetTier.Source.GENES
        wanted_genes = sorted({g.strip().upper() for g in genes if g.strip()})
        regions = genomic_regions.genes_resolve(wanted_genes, build=build, contigs=contigs)
        table = genomic_regions.GENE_TABLES[str(build)]
    past = genomic_regions.regions_past_end(regions, _contig_lengths(files))
    if past:
        raise ValidationError(
            f"{len(past)} region(s) end past their contig's length in the files' headers: "
            f"{', '.join(past[:5])}. Are they of another reference build?",
            fields={"genes" if source == DatasetTier.Source.GENES else "bed": ["Past the end."]},
        )
    fields = {
        "price": amount,
        "source": source,
        "genes": wanted_genes,
        "gene_table": table,
        "reference_build": build or "",
        "regions": [list(r) for r in regions],
        "regions_sha256": genomic_regions.regions_sha256(regions),
    }
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        same = locked.tiers.select_for_update().filter(name=label).first()
        if same is not None and same.state != DatasetTier.State.FAILED:
            raise ValidationError(
                "This dataset already has a tier of that name.", fields={"name": ["Taken."]}
            )
        if same is None and locked.tiers.count() >= MAX_TIERS:
            raise ValidationError(f"At most {MAX_TIERS} tiers per dataset.", fields={})
        if same is not None:  # the retry of a failed tier: prepared again, as now given
            for field, value in fields.items():
                setattr(same, field, value)
            same.state, same.error, same.building_since = DatasetTier.State.PREPARING, "", None
            same.objects_mac = ""
            same.save()
            same.files.clear()
            tier = same
        else:
            tier = DatasetTier.objects.create(dataset=locked, name=label, **fields)
        audit_append(
            action="dataset.tier_create",
            actor=actor,
            object_type="dataset",
            object_id=dataset.pk,
            data={"price": str(amount), **tier.scope()},
        )
        transaction.on_commit(partial(_enqueue_build, tier.pk))
    return tier


def dataset_set_whole_for_sale(*, dataset: Dataset, actor: User, whole: bool) -> Dataset:
    """Sell the whole dataset as well as its tiers (`whole`), or its tiers only. The
    listing's record (and so its hash, anchored again) says which. Raises PermissionDenied
    (not the donor) and ValidationError (regions only, with no tier offered)."""
    if actor.pk != dataset.donor_id:
        raise PermissionDenied("Only the dataset's donor can change what is sold.")
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.whole_for_sale == whole:
            return locked
        if not whole and not locked.tiers.exclude(state=DatasetTier.State.FAILED).exists():
            raise ValidationError(
                "Offer a region tier before selling regions only.",
                fields={"whole_for_sale": ["No tier is offered."]},
            )
        before = locked.record_hash
        locked.whole_for_sale = whole
        locked.record_hash = record_hash(locked)
        locked.anchor_tx, locked.anchored_at = "", None
        locked.save(update_fields=["whole_for_sale", "record_hash", "anchor_tx", "anchored_at"])
        audit_append(
            action="dataset.update",
            actor=actor,
            object_type="dataset",
            object_id=locked.pk,
            data={"record_hash": locked.record_hash, "previous": before, "whole_for_sale": whole},
        )
    return locked


def tiers_rebuild(*, dataset: Dataset) -> int:
    """The dataset's files changed: every tier is prepared again from the new files (its
    grants made so far keep the objects they were made for). Inside the caller's
    transaction; returns how many tiers were sent to the worker."""
    tiers = list(DatasetTier.objects.select_for_update().filter(dataset=dataset))
    for tier in tiers:
        tier.state, tier.error, tier.building_since = DatasetTier.State.PREPARING, "", None
        tier.save(update_fields=["state", "error", "building_since"])
        transaction.on_commit(partial(_enqueue_build, tier.pk))
    return len(tiers)


def tiers_waiting(*, cutoff: datetime) -> QuerySet[DatasetTier]:
    """Tiers to send to the worker again (marketplace.services.reconcile): prepared since
    before `cutoff` and never claimed by a worker (the task was lost with the broker), or
    claimed longer ago than any task may run (the worker died)."""
    dead = timezone.now() - timedelta(seconds=settings.TASK_TIME_LIMIT_S)
    return DatasetTier.objects.filter(
        state=DatasetTier.State.PREPARING, created_at__lt=cutoff
    ).filter(Q(building_since__isnull=True) | Q(building_since__lt=dead))


def _enqueue_build(tier_id: UUID) -> None:
    from marketplace import tasks

    enqueue(tasks.build_tier, str(tier_id))


OBJECTS_MAC_KIND = "tier-objects"


def _objects_fields(tier: DatasetTier, files: Sequence[GenomicFile]) -> dict[str, object]:
    return {
        "tier": str(tier.pk),
        "dataset": str(tier.dataset_id),
        "regions_sha256": tier.regions_sha256,
        "objects": sorted(
            [
                str(f.pk),
                str(f.parent_id),
                f.regions_sha256,
                hashlib.sha256(bytes(f.header or b"")).hexdigest(),
            ]
            for f in files
        ),
    }


def tier_objects_verified(tier: DatasetTier) -> list[GenomicFile]:
    """The tier's region objects, checked against the worker's MAC over those it made
    (worker only): a `files` list, a tier or a region object row rewritten by the web tier
    (a full file slipped in, another header) raises Conflict, so nothing is granted from
    it (RELIABILITY.md 23)."""
    files = list(tier.files.all())
    if (
        tier.state != DatasetTier.State.READY
        or not files
        or any(f.parent_id is None or f.regions_sha256 != tier.regions_sha256 for f in files)
        or not row_mac_valid(OBJECTS_MAC_KIND, _objects_fields(tier, files), tier.objects_mac)
    ):
        raise Conflict("The tier's objects are not the ones the worker made for it.")
    return files


def tier_build(*, tier_id: UUID | str) -> DatasetTier:
    """Worker: make the tier's region object of every file of its dataset (each its own
    Crypt4GH object under a fresh data key), then put the tier on sale. Idempotent: a
    redelivered task reuses the objects already made. A file that cannot be sliced, a region
    past its contig's end, or regions selecting no record in any file leave the tier
    `failed` with the reason in words; any other error leaves it failed with
    INTERNAL_FAILURE (logged). While another tier's build makes one of the same objects
    (same parent and regions), this tier waits `preparing`, unclaimed, and is sent again
    when that build ends."""
    tier = DatasetTier.objects.select_related("dataset").filter(pk=tier_id).first()
    if tier is None:
        raise NotFound("No such tier.")
    if tier.state != DatasetTier.State.PREPARING:
        return tier
    now = timezone.now()
    claimed = (
        DatasetTier.objects.filter(pk=tier.pk, state=DatasetTier.State.PREPARING)
        .filter(
            Q(building_since__isnull=True)
            | Q(building_since__lt=now - timedelta(seconds=settings.TASK_TIME_LIMIT_S))
        )
        .update(building_since=now)
    )
    if not claimed:
        return tier  # another worker is building it (a redelivered or re-sent task)
    regions = genomic_regions.regions_from_json(tier.regions)
    made: list[GenomicFile] = []
    try:
        for parent in tier.dataset.files.all():
            made.append(region_object_create(parent=parent, regions=regions))
    except RegionObjectBusy:
        # Another tier's build is making the same object: this one waits, unclaimed, and is
        # sent again when that build ends (_send_waiting), or by the reconciler.
        DatasetTier.objects.filter(pk=tier.pk).update(building_since=None)
        tier.refresh_from_db()
        return tier
    except Exception as exc:
        return _fail(tier, exc)
    if not any(int((f.metadata or {}).get("records") or 0) for f in made):
        return _fail(
            tier,
            RegionSliceRefused(
                "The regions select no record in any file of the dataset (they lie where "
                "the files have no data): give regions the files cover."
            ),
        )
    with transaction.atomic():
        locked = DatasetTier.objects.select_for_update().get(pk=tier.pk)
        if locked.state != DatasetTier.State.PREPARING:
            return locked
        locked.files.set(made)
        locked.state = DatasetTier.State.READY
        locked.objects_mac = row_mac(OBJECTS_MAC_KIND, _objects_fields(locked, made))
        locked.building_since = None
        locked.save(update_fields=["state", "objects_mac", "building_since"])
        audit_append(
            action="dataset.tier_ready",
            actor=None,
            object_type="dataset",
            object_id=locked.dataset_id,
            data={
                **locked.scope(),
                "objects": [
                    {
                        "file": str(f.pk),
                        "parent": str(f.parent_id),
                        "records": f.metadata.get("records"),
                    }
                    for f in made
                ],
            },
        )
        transaction.on_commit(partial(_send_waiting, locked))
    return locked


# Said to the donor when a build fails for a reason not theirs to fix (a database or storage
# error): the raw error names tables and constraints, so it goes to the worker's log only.
INTERNAL_FAILURE = (
    "The tier could not be prepared because of an error on our side. Create it again with "
    "the same name to retry (the failed tier is prepared again)."
)


def _fail(tier: DatasetTier, exc: Exception) -> DatasetTier:
    """Leave `tier` failed with a reason in words: a refusal's own message (it says what to
    do), else INTERNAL_FAILURE (the raw error is logged, never shown)."""
    if isinstance(exc, RegionSliceRefused):
        reason = str(exc)
    else:
        logger.exception("tier %s could not be prepared", tier.pk, exc_info=exc)
        reason = INTERNAL_FAILURE
    DatasetTier.objects.filter(pk=tier.pk).update(
        state=DatasetTier.State.FAILED, error=reason[:1000], building_since=None
    )
    _send_waiting(tier)
    tier.refresh_from_db()
    return tier


def _send_waiting(tier: DatasetTier) -> None:
    """Send again the builds of tiers with `tier`'s regions that waited for it (left
    unclaimed by RegionObjectBusy): they now reuse its objects, or make them themselves."""
    waiting = DatasetTier.objects.filter(
        state=DatasetTier.State.PREPARING,
        regions_sha256=tier.regions_sha256,
        building_since__isnull=True,
    ).exclude(pk=tier.pk)
    for pk in waiting.values_list("pk", flat=True):
        _enqueue_build(pk)
