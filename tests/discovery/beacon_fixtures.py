"""Listed datasets with variant-index rows, for the Beacon tests (the ingest path that
writes such rows is tested in test_variant_index.py)."""

from __future__ import annotations

from collections.abc import Sequence

from discovery.models import BeaconPolicy, VariantAllele, VariantSource
from marketplace.models import Dataset, User
from tests.factories import ready_file

GRU, HMB, DS = "DUO:0000042", "DUO:0000006", "DUO:0000007"


def listed_dataset(
    donor: User,
    *,
    title: str,
    consent: Sequence[str] = (GRU,),
    alleles: Sequence[tuple[int, int, str, str, int, int]] = (),
    granularity: str = "boolean",
    assembly: str = "GRCh38",
    fmt: str = "VCF",
) -> Dataset:
    """A listed dataset of one indexed file holding `alleles` (chrom, pos, ref, alt, AC,
    AN)."""
    stored = ready_file(donor, filename=f"{title}.vcf.gz", fmt=fmt, build=assembly)
    dataset = Dataset.objects.create(
        donor=donor,
        title=title,
        description=f"{title} cohort",
        price=10**18,
        access_days=30,
        duo_codes=[{"code": c, "value": ""} for c in consent],
        duo_index=" " + " ".join(consent) + " ",
        format_index=f" {fmt} ",
        reference_index=f" {assembly} ",
        record_hash="0" * 64,
    )
    dataset.files.add(stored)
    source = VariantSource.objects.create(file=stored, assembly=assembly, alleles=len(alleles))
    VariantAllele.objects.bulk_create(
        VariantAllele(
            chrom=c,
            pos=p,
            ref=r,
            alt=a,
            allele_count=ac,
            allele_number=an,
            source=source,
            kind=1
            if len(r) == len(a) == 1
            else 2
            if len(r) == len(a)
            else 3
            if len(a) > len(r)
            else 4,
        )
        for c, p, r, a, ac, an in alleles
    )
    if granularity != "boolean":
        BeaconPolicy.objects.create(dataset=dataset, granularity=granularity)
    return dataset
