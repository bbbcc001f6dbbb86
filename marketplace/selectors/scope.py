"""What a request grants: the one rule every path that serves data reads (grants, the
download route, DRS, htsget, visas), so a region tier's grantee reaches its region objects
and nothing of the full files (README "Selling regions")."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Q, QuerySet

from genomics.models import GenomicFile
from genomics.regions import contig_key
from marketplace.models import AccessRequest


def request_files(request: AccessRequest) -> QuerySet[GenomicFile]:
    """The files a grant of `request` covers: its tier's region objects, or, for a request
    of the whole dataset, the dataset's files."""
    if request.tier_id is not None:
        return GenomicFile.objects.filter(tiers=request.tier_id)
    return GenomicFile.objects.filter(datasets=request.dataset_id)


def grants_file(file_id: UUID | str) -> Q:
    """A filter on AccessRequest: the requests whose grant covers file `file_id`."""
    return Q(tier__isnull=True, dataset__files=file_id) | Q(tier__files=file_id)


def files_of_requests(requests: Iterable[AccessRequest]) -> set[UUID]:
    """The ids of every file that one of `requests` covers."""
    covered: set[UUID] = set()
    for request in requests:
        covered.update(request_files(request).values_list("pk", flat=True))
    return covered


def request_scope(request: AccessRequest) -> dict[str, object] | str:
    """The scope as terms and audit entries name it: "whole", or the tier's description."""
    return request.tier.scope() if request.tier is not None else "whole"


def region_in_scope(
    file: GenomicFile, *, reference_name: str | None, start: int | None, end: int | None
) -> bool:
    """Whether a region asked of `file` (htsget `referenceName`, `start`, `end`: 0-based,
    end exclusive, htsget 1.3 "Query parameters") meets what the file holds. A region
    object (a tier's slice) holds only its regions: a request for another region is not
    in the grant (htsget answers PermissionDenied). A whole file holds every region; no
    `reference_name` asks for the whole object, which is the slice itself. Contig names
    match by the rule every region uses (genomics.regions.contig_key): the tier's regions
    may say `chr17` of a file that names it `17`."""
    if not file.regions or reference_name is None:
        return True
    low = start if start is not None else 0
    high = end if end is not None else 2**63
    asked = contig_key(reference_name)
    return any(
        contig_key(str(contig)) == asked and int(region_start) < high and int(region_end) > low
        for contig, region_start, region_end in file.regions
    )
