"""The variant index built at ingest (issue 18 §1): sites with allele counts, normalised
without the reference, erased with the file."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from discovery.models import VariantAllele, VariantSource
from discovery.variants.normalise import normalise, stored_allele
from genomics.models import GenomicFile
from genomics.services.ingest import file_ingest
from tests.discovery import variants
from tests.genomics.conftest import upload

pytestmark = pytest.mark.django_db


def _ingest(client, data: bytes, filename: str) -> GenomicFile:
    upload(client, data, filename=filename)
    stored = GenomicFile.objects.get(filename=filename)
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    return stored


def _alleles(stored: GenomicFile) -> set[tuple[int, int, str, str, int, int]]:
    return set(
        VariantAllele.objects.filter(source__file=stored).values_list(
            "chrom", "pos", "ref", "alt", "allele_count", "allele_number"
        )
    )


EXPECTED = {
    (17, 43044295, "A", "G", 3, 6),
    (17, 43044400, "C", "T", 2, 6),
    (17, 43045000, "TC", "T", 1, 6),  # TCAG>TAG: the shared suffix trimmed
    (17, 43046000, "G", "GTT", 1, 6),
    (23, 1000, "G", "C", 3, 4),  # a missing call does not count in AN
}


@pytest.mark.parametrize("mode,suffix", [("wz", "vcf.gz"), ("wb", "bcf")])
def test_ingest_indexes_sites_with_allele_counts(
    donor_client, archive_key, worker, tmp_path, mode, suffix
) -> None:
    client, _ = donor_client
    stored = _ingest(client, variants.write(tmp_path / f"c.{suffix}", mode), f"c.{suffix}")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert _alleles(stored) == EXPECTED
    source = VariantSource.objects.get(file=stored)
    assert (source.alleles, source.skipped_records, source.assembly) == (5, 2, "GRCh38")


def test_a_large_file_streams_through_the_tap(donor_client, archive_key, worker, tmp_path) -> None:
    """Bigger than the pipe's and the batches' buffers: no deadlock, every site kept."""
    client, _ = donor_client
    data = variants.write(tmp_path / "big.vcf", "w", extra_sites=60_000)
    assert len(data) > 2 << 20  # pipe buffer: 64 KiB; batches: 20,000 rows
    stored = _ingest(client, data, "big.vcf")
    assert VariantAllele.objects.filter(source__file=stored).count() == 60_000 + 5


def test_a_file_that_is_not_variants_gets_no_index(donor_client, archive_key, worker) -> None:
    from tests.genomics import samples

    client, _ = donor_client
    stored = _ingest(client, samples.gz(samples.fastq(200)), "reads.fastq.gz")
    assert stored.state == GenomicFile.State.READY, stored.error
    assert not VariantSource.objects.exists()


def test_erasing_the_file_erases_its_alleles(donor_client, archive_key, worker, tmp_path) -> None:
    client, _ = donor_client
    stored = _ingest(client, variants.write(tmp_path / "c.vcf.gz"), "c.vcf.gz")
    assert VariantAllele.objects.count() == 5
    stored.delete()
    with connection.cursor() as cursor:  # the database's cascade, not Django's collector
        cursor.execute("SELECT count(*) FROM discovery_variantallele")
        assert cursor.fetchone() == (0,)
    assert not VariantSource.objects.exists()


def test_the_command_indexes_files_ingested_before_the_index(
    donor_client, archive_key, worker, tmp_path, monkeypatch
) -> None:
    from config.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)  # the worker, in process
    client, _ = donor_client
    stored = _ingest(client, variants.write(tmp_path / "c.bcf", "wb"), "c.bcf")
    VariantSource.objects.all().delete()
    call_command("variants_index")
    assert _alleles(stored) == EXPECTED
    call_command("variants_index")  # nothing left to do: no duplicates
    assert VariantAllele.objects.count() == 5


@pytest.mark.parametrize(
    "written,expected",
    [
        (("17", 100, "a", "g"), (17, 100, "A", "G", 1)),
        (("chr17", 100, "CTTT", "CT"), (17, 100, "CTT", "C", 4)),  # right-trimmed
        (("17", 100, "ACTTT", "ACT"), (17, 101, "CTT", "C", 4)),  # then left-trimmed
        (("MT", 5, "AC", "GT"), (25, 5, "AC", "GT", 2)),
        (("chrM", 5, "TAC", "TGT"), (25, 6, "AC", "GT", 2)),
        (("X", 5, "AT", "G"), (23, 5, "AT", "G", 5)),
    ],
)
def test_normalisation_without_the_reference(written, expected) -> None:
    allele = normalise(*written)
    assert allele is not None
    assert (allele.chrom, allele.pos, allele.ref, allele.alt, allele.kind) == expected


def test_long_alleles_are_stored_as_a_digest_that_still_matches() -> None:
    long = "A" + "GATTACA" * 10
    allele = normalise("1", 10, "A", long)
    assert allele is not None and allele.alt == stored_allele(long) and len(allele.alt) == 32
    assert normalise("1", 10, "A", long[:-1] + "C").alt != allele.alt  # type: ignore[union-attr]
    for untyped in ("<DEL>", "*", "A[1:100[", "."):
        assert normalise("1", 10, "A", untyped) is None


def test_a_digest_keeps_the_allele_length() -> None:
    from discovery.variants.normalise import stored_length

    long = "C" * 500
    assert stored_length(stored_allele(long)) == 500 and stored_length("ACG") == 3
