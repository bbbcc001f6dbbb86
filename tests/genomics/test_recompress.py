"""Storing a VCF bgzipped (issue 17 §1, genomics/services/recompress.py): the worker turns a
plain, gzip or zipped VCF into BGZF under a fresh data key, indexes it, and switches the file
and its grants in one step; what a grantee downloads is then read by clients nobody here
wrote (the reference `crypt4gh` CLI, `bgzip -t`, `tabix`, `bcftools view -r`) with exactly
the original's records. Failures, repeats and killed workers leave nothing behind."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import RequestFactory
from django.utils import timezone

from core.errors import Conflict
from genomics import c4gh, payloads
from genomics.downloads import grant_download_response
from genomics.models import FileIndex, GenomicFile, Grant, Recompression
from genomics.services import recompress
from genomics.services.grants import grant_create
from genomics.services.indexes import sliceable
from genomics.services.recompress import (
    file_recompress,
    file_recompress_request,
    replaced_payloads_purge,
)
from genomics.services.region_objects import region_refusal
from tests.genomics import samples
from tests.genomics.conftest import upload_ready

pytestmark = pytest.mark.django_db
BIN = Path(sys.executable).parent
REGION = "chr1:20001-90000"  # bcftools' 1-based, inclusive region


def _run(*args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(list(args), input=stdin, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def plain_vcf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A plain-text VCF of 40,000 records over chr1 and chr2: 1.4 MB of text, about 100 KB
    bgzipped (22 BGZF blocks, two 64 KiB Crypt4GH segments)."""
    folder = tmp_path_factory.mktemp("recompress")
    return samples.write_variants(folder / "cohort.vcf", "w", records=40_000).read_bytes()


@pytest.fixture
def researcher_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A researcher's key pair made by the reference `crypt4gh-keygen`."""
    secret_file, public_file = tmp_path / "r.sec", tmp_path / "r.pub"
    _run(
        str(BIN / "crypt4gh-keygen"), "--nocrypt", "-f", "--sk", str(secret_file),
        "--pk", str(public_file),
    )  # fmt: skip
    return secret_file, c4gh.parse_public_key(public_file.read_text())


def _ingested(client, data: bytes, filename: str) -> GenomicFile:
    return upload_ready(client, data, filename, chunk=400_000)  # several payload parts


def _download(grant: Grant) -> bytes:
    response = grant_download_response(
        RequestFactory().get("/download"), grant=grant, filename=grant.file.filename
    )
    assert response.status_code == 200
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def _decrypt(secret: bytes, encrypted: bytes) -> bytes:
    from crypt4gh import lib as reference

    out = io.BytesIO()
    reference.decrypt([(0, secret, None)], io.BytesIO(encrypted), out)
    return out.getvalue()


def _payload_folders() -> set[str]:
    try:
        folders, _ = default_storage.listdir("payloads")
    except FileNotFoundError:
        return set()
    return {f for f in folders if default_storage.listdir(f"payloads/{f}")[1]}


def _recompressed(stored: GenomicFile) -> Recompression:
    file_recompress_request(file=stored)
    row = file_recompress(file_id=str(stored.pk))
    assert row is not None
    assert row.state == Recompression.State.DONE, row.error
    return row


def test_a_granted_plain_vcf_stored_bgzipped_reads_with_the_fields_tools_as_the_original(
    donor_client, archive_key, worker, plain_vcf, researcher_key, tmp_path
) -> None:
    client, _ = donor_client
    stored = _ingested(client, plain_vcf, "cohort.vcf")
    assert not sliceable(stored) and not FileIndex.objects.filter(file=stored).exists()
    secret_file, public = researcher_key
    grant = grant_create(file=stored, recipient_public_key=public)
    header_before = bytes(grant.header)

    row = _recompressed(stored)

    stored.refresh_from_db()
    grant.refresh_from_db()
    # Both checksums: the upload's kept, the stored BGZF's now the file's.
    assert row.uploaded_plaintext_sha256 == hashlib.sha256(plain_vcf).hexdigest()
    assert row.uploaded_plaintext_size == len(plain_vcf)
    assert row.uploaded_compression == "none" and row.uploaded_filename == "cohort.vcf"
    assert stored.plaintext_sha256 == row.bgzipped_plaintext_sha256 != row.uploaded_plaintext_sha256
    assert (stored.filename, stored.metadata["compression"]) == ("cohort.vcf.gz", "bgzf")
    assert sliceable(stored) and FileIndex.objects.get(file=stored).index_format == "TBI"
    # The grant is the same row with a header for the new payload.
    assert row.grants_reissued == 1 and bytes(grant.header) != header_before

    # What the grantee downloads, decrypted by the reference CLI.
    bgzipped = _run(
        str(BIN / "crypt4gh"), "decrypt", "--sk", str(secret_file), stdin=_download(grant)
    )
    assert hashlib.sha256(bgzipped).hexdigest() == stored.plaintext_sha256
    assert len(bgzipped) == stored.plaintext_size
    received = tmp_path / "cohort.vcf.gz"
    received.write_bytes(bgzipped)
    original = tmp_path / "original.vcf"
    original.write_bytes(plain_vcf)
    _run("bgzip", "-t", str(received))
    _run("tabix", "-p", "vcf", str(received))
    assert _run("bcftools", "view", "--no-version", str(received)) == _run(
        "bcftools", "view", "--no-version", str(original)
    )
    reference = tmp_path / "reference.vcf.gz"
    reference.write_bytes(_run("bgzip", "-c", str(original)))
    _run("tabix", "-p", "vcf", str(reference))
    region = _run("bcftools", "view", "--no-version", "-H", "-r", REGION, str(received))
    assert region == _run("bcftools", "view", "--no-version", "-H", "-r", REGION, str(reference))
    assert 100 < region.count(b"\n") < 40_000
    assert gzip.decompress(bgzipped) == plain_vcf  # byte for byte the donor's text
    # Every BGZF block ends on a record's end (as htslib's VCF writer makes them, unlike
    # `bgzip`), so an htsget slice of whole blocks reads from its first byte.
    blocks = _bgzf_blocks(bgzipped)
    assert len(blocks) > 10 and blocks[-1] == b""  # the EOF marker's empty block
    assert all(block.endswith(b"\n") for block in blocks[:-1])


def _bgzf_blocks(data: bytes) -> list[bytes]:
    """Each BGZF block's decompressed text (SAM v1 §4.1: BSIZE is block size - 1)."""
    import zlib

    blocks, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset + 16 : offset + 18], "little") + 1
        blocks.append(zlib.decompress(data[offset + 18 : offset + size - 8], -15))
        offset += size
    return blocks


def test_a_gzip_vcf_keeps_its_name_and_its_text(donor_client, archive_key, worker, plain_vcf):
    client, _ = donor_client
    compressed = gzip.compress(plain_vcf)  # ordinary gzip: one member, no BGZF blocks
    stored = _ingested(client, compressed, "cohort.vcf.gz")
    assert stored.metadata["compression"] == "gzip" and not sliceable(stored)
    secret, public = c4gh.generate_keypair()
    grant = grant_create(file=stored, recipient_public_key=public)

    row = _recompressed(stored)

    stored.refresh_from_db()
    assert row.uploaded_compression == "gzip" and stored.filename == "cohort.vcf.gz"
    assert row.uploaded_plaintext_sha256 == hashlib.sha256(compressed).hexdigest()
    bgzipped = _decrypt(secret, _download(Grant.objects.select_related("file").get(pk=grant.pk)))
    assert bgzipped[:4] == b"\x1f\x8b\x08\x04"  # BGZF's extra field (SAM spec §4.1)
    assert gzip.decompress(bgzipped) == plain_vcf


def test_a_bgzipped_vcf_in_a_zip_is_not_sliceable_until_stored_bgzipped(
    donor_client, archive_key, worker, plain_vcf, tmp_path
) -> None:
    """The vault stores the ZIP as uploaded: its member's BGZF blocks are not where an
    index would point, so neither htsget nor a region tier may use it as they are."""
    client, _ = donor_client
    member = samples.bgzf(plain_vcf, tmp_path / "member.vcf.gz")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("cohort.vcf.gz", member)
    stored = _ingested(client, archive.getvalue(), "cohort.zip")
    assert (stored.metadata["container"], stored.metadata["compression"]) == ("zip", "bgzf")
    assert not sliceable(stored) and region_refusal(stored) is not None

    row = _recompressed(stored)

    stored.refresh_from_db()
    assert row.uploaded_compression == "zip+bgzf"
    assert row.uploaded_plaintext_sha256 == hashlib.sha256(member).hexdigest()
    assert stored.filename == "cohort.vcf.gz" and "container" not in stored.metadata
    assert sliceable(stored) and region_refusal(stored) is None


def test_only_a_ready_vcf_that_is_not_bgzipped_can_be_asked(
    donor_client, archive_key, worker, tmp_path
) -> None:
    client, _ = donor_client
    bgzipped = samples.write_variants(tmp_path / "b.vcf.gz", "wz", records=20).read_bytes()
    stored = _ingested(client, bgzipped, "b.vcf.gz")
    with pytest.raises(Conflict, match="already bgzipped"):
        file_recompress_request(file=stored)
    bam = _ingested(
        client, samples.write_alignments(tmp_path / "a.bam", "wb").read_bytes(), "a.bam"
    )
    with pytest.raises(Conflict, match="only a VCF"):
        file_recompress_request(file=bam)
    assert not Recompression.objects.exists()


def test_asking_twice_and_running_twice_do_the_work_once(
    donor_client, archive_key, worker, plain_vcf
) -> None:
    client, _ = donor_client
    stored = _ingested(client, plain_vcf, "twice.vcf")
    first = file_recompress_request(file=stored)
    assert file_recompress_request(file=stored).requested_at == first.requested_at
    done = file_recompress(file_id=str(stored.pk))
    assert done is not None and done.state == Recompression.State.DONE
    stored.refresh_from_db()
    after = (stored.payload_key, stored.header, list(stored.parts.values_list("storage_name")))
    again = file_recompress(file_id=str(stored.pk))  # a redelivered task
    stored.refresh_from_db()
    assert again is not None and again.finished_at == done.finished_at
    assert (stored.payload_key, stored.header, list(stored.parts.values_list("storage_name"))) == (
        after
    )
    assert FileIndex.objects.filter(file=stored).count() == 1
    # Storage: the new payload, its index and block map, and the replaced payload (kept).
    assert len(_payload_folders()) == 4
    with pytest.raises(Conflict, match="already bgzipped"):
        file_recompress_request(file=stored)


def test_a_failure_changes_nothing_and_leaves_no_object(
    donor_client, archive_key, worker, plain_vcf, monkeypatch
) -> None:
    client, _ = donor_client
    stored = _ingested(client, plain_vcf, "fails.vcf")
    secret, public = c4gh.generate_keypair()
    grant = grant_create(file=stored, recipient_public_key=public)
    before = GenomicFile.objects.values().get(pk=stored.pk)
    header_before = bytes(grant.header)
    folders_before = _payload_folders()

    def broken(*args: object) -> None:
        raise ValueError("htslib ran out of memory")

    file_recompress_request(file=stored)
    with monkeypatch.context() as patched:
        patched.setattr(recompress, "index_build", broken)
        row = file_recompress(file_id=str(stored.pk))

    assert row is not None and row.state == Recompression.State.FAILED
    assert "htslib could not index the file: htslib ran out of memory" in row.error
    assert GenomicFile.objects.values().get(pk=stored.pk) == before
    grant.refresh_from_db()
    assert bytes(grant.header) == header_before
    assert _decrypt(secret, _download(grant)) == plain_vcf  # served as before
    assert _payload_folders() == folders_before  # the attempt's objects are gone
    assert not FileIndex.objects.filter(file=stored).exists()

    # Asked again, it starts over and succeeds.
    file_recompress_request(file=stored)
    assert file_recompress(file_id=str(stored.pk)).state == Recompression.State.DONE  # type: ignore[union-attr]


def test_an_attempt_killed_halfway_is_taken_over_and_its_objects_deleted(
    donor_client, archive_key, worker, plain_vcf, django_capture_on_commit_callbacks
) -> None:
    client, _ = donor_client
    stored = _ingested(client, plain_vcf, "killed.vcf")
    file_recompress_request(file=stored)
    # A worker died after storing a part: the row says working, its heartbeat old.
    Recompression.objects.filter(file=stored).update(
        state=Recompression.State.WORKING, attempt="dead", new_payload_key="leftover"
    )
    payloads.write_part("leftover", 0, b"sealed bytes of a dead attempt")
    # A redelivered task while the dead attempt still looks alive leaves it alone.
    assert file_recompress(file_id=str(stored.pk)).state == Recompression.State.WORKING  # type: ignore[union-attr]
    stale = timezone.now() - timedelta(seconds=recompress.STALE_AFTER_S + 1)
    Recompression.objects.filter(file=stored).update(updated_at=stale)

    with django_capture_on_commit_callbacks(execute=True):
        row = file_recompress(file_id=str(stored.pk))

    assert row is not None
    assert row.state == Recompression.State.DONE, row.error
    assert "leftover" not in _payload_folders()


def test_a_download_started_before_the_switch_finishes_on_the_old_payload(
    donor_client, archive_key, worker, plain_vcf, settings
) -> None:
    client, _ = donor_client
    stored = _ingested(client, plain_vcf, "inflight.vcf")
    secret, public = c4gh.generate_keypair()
    grant = Grant.objects.select_related("file").get(
        pk=grant_create(file=stored, recipient_public_key=public).pk
    )
    started = grant_download_response(RequestFactory().get("/d"), grant=grant, filename="x")
    stale = Grant.objects.select_related("file").get(pk=grant.pk)  # read before the switch

    _recompressed(stored)

    # The response made before the switch streams the header and payload it began with.
    body = b"".join(started.streaming_content)  # type: ignore[attr-defined]
    assert _decrypt(secret, body) == plain_vcf
    # A grant read before the switch, served after it, is read again: header and payload
    # of one moment, the new ones.
    assert gzip.decompress(_decrypt(secret, _download(stale))) == plain_vcf
    # Once downloads had their time, the replaced payload goes.
    row = Recompression.objects.get(file=stored)
    assert row.replaced_payload_key in _payload_folders()
    assert replaced_payloads_purge() == 0
    later = timezone.now() + timedelta(seconds=settings.RECOMPRESS_REPLACED_PAYLOAD_KEEP_S + 1)
    assert replaced_payloads_purge(now=later) == 1
    assert row.replaced_payload_key not in _payload_folders()
    assert Recompression.objects.get(file=stored).replaced_payload_key == ""


def test_deleting_a_file_stored_bgzipped_deletes_every_object_it_had(
    donor_client, archive_key, worker, plain_vcf, django_capture_on_commit_callbacks
) -> None:
    from genomics.services.uploads import stored_file_delete

    client, donor = donor_client
    stored = _ingested(client, plain_vcf, "gone.vcf")
    _recompressed(stored)
    assert len(_payload_folders()) == 4  # payload, index, block map, replaced payload

    with django_capture_on_commit_callbacks(execute=True):
        stored_file_delete(owner=donor, file_id=stored.pk)

    assert _payload_folders() == set()
