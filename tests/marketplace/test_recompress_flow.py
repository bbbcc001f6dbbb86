"""Storing a VCF bgzipped, as the donor and the researchers see it (issue 17 §1): the API
and the My files page offer it for a plain VCF and show it queued, working, done or failed;
once done, the listing's record describes the bgzipped file (hash anchored again), the
audit log names both checksums, DRS names the bgzipped plaintext's SHA-256, and a grantee's
htsget ticket decrypts (reference `crypt4gh` CLI) to a slice that `bcftools view -r` reads
with exactly the original's records."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pysam
import pytest
from crypt4gh import lib as reference
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from genomics import c4gh
from genomics.models import GenomicFile, Grant, Recompression
from genomics.services import recompress, tickets
from genomics.services.grants import grant_create
from genomics.services.recompress import file_recompress
from marketplace.models import AccessRequest, AuditEntry, Dataset, Notification, Role, User
from marketplace.services import htsget as htsget_service
from marketplace.services.datasets import dataset_create
from tests.factories import UserFactory, ready_file
from tests.genomics.conftest import archive_key, upload_ready, worker  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
BIN = Path(sys.executable).parent
DRS = "/ga4gh/drs/v1"
HTSGET = "/ga4gh/htsget/v1"
REGION = ("chr1", 50_000, 400_000)  # htsget: 0-based, end exclusive


def _run(*args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(list(args), input=stdin, capture_output=True, check=True).stdout


def _user(role: Role, **kwargs: object) -> User:
    return cast(User, UserFactory(role=role, **kwargs))


def _api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture(scope="module")
def plain_vcf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain VCF that compresses like real calls (random alleles, qualities, depths and
    genotypes of 8 samples): 2.8 MB of text, about 0.7 MB bgzipped, so a 350 kb region is
    a few of its 64 KiB segments, not the whole file."""
    rng = random.Random(17)
    header = pysam.VariantHeader()
    header.add_line("##contig=<ID=chr1,length=248956422>")
    header.add_line('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">')
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_line('##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">')
    names = [f"DONOR_SECRET_{i}" for i in range(8)]
    for name in names:
        header.add_sample(name)
    path = tmp_path_factory.mktemp("recompress-flow") / "cohort.vcf"
    with pysam.VariantFile(str(path), "w", header=header) as out:
        for index in range(30_000):
            ref, alt = rng.sample("ACGT", 2)
            record = out.new_record(
                contig="chr1",
                start=index * 100 + rng.randrange(50),
                alleles=(ref, alt),
                qual=round(rng.uniform(1, 999), 1),
            )
            record.info["DP"] = rng.randrange(1000)
            for name in names:
                record.samples[name]["GT"] = (rng.randrange(2), rng.randrange(2))
                record.samples[name]["GQ"] = rng.randrange(99)
            out.write(record)
    return path


def _ingested(donor: User, data: bytes, filename: str) -> GenomicFile:
    browser = Client()
    browser.force_login(donor)
    return upload_ready(browser, data, filename, chunk=300_000)


def _fetch(client: APIClient, ticket: dict[str, Any]) -> bytes:
    """A ticket's URLs concatenated as an htsget client does."""
    out = b""
    for item in ticket["htsget"]["urls"]:
        url = item["url"]
        if url.startswith("data:"):
            out += base64.b64decode(url.split(",", 1)[1])
            continue
        headers = {f"HTTP_{k.upper()}": v for k, v in item.get("headers", {}).items()}
        answer = APIClient().get(url, **headers)
        assert answer.status_code in (200, 206), answer.content
        out += b"".join(answer.streaming_content)  # type: ignore[attr-defined]
    return out


def test_a_listed_granted_plain_vcf_stored_bgzipped_serves_regions_under_the_new_checksum(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    plain_vcf,
    tmp_path,
    monkeypatch,
) -> None:
    monkeypatch.setattr(
        htsget_service, "ticket_request", lambda **kwargs: tickets.ticket_build(**kwargs)
    )
    donor = _user(Role.DONOR, payout_wallet=True)
    researcher = _user(Role.RESEARCHER)
    secret_file, public_file = tmp_path / "r.sec", tmp_path / "r.pub"
    _run(
        str(BIN / "crypt4gh-keygen"), "--nocrypt", "-f", "--sk", str(secret_file),
        "--pk", str(public_file),
    )  # fmt: skip
    researcher.crypt4gh_public_key = c4gh.parse_public_key(public_file.read_text())
    researcher.save()
    stored = _ingested(donor, plain_vcf.read_bytes(), "cohort.vcf")
    uploaded_sha = hashlib.sha256(plain_vcf.read_bytes()).hexdigest()
    dataset = dataset_create(
        donor=donor,
        title="Plain cohort",
        description="",
        files=[stored.pk],
        duo_codes=["DUO:0000042"],
        price="1000",
        access_days=30,
        review="auto",
    )
    record_before = dataset.record_hash
    Dataset.objects.filter(pk=dataset.pk).update(anchor_tx="0xabc", anchored_at=timezone.now())
    now = timezone.now()
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="s",
        amount=1000,
        state=AccessRequest.State.GRANTED,
        granted_at=now,
        expires_at=now + timedelta(days=30),
    )
    grant = grant_create(file=stored, recipient_public_key=bytes(researcher.crypt4gh_public_key))
    start, end = REGION[1], REGION[2]
    query = {"referenceName": REGION[0], "start": str(start), "end": str(end)}
    before = _api(researcher).get(f"{HTSGET}/variants/{stored.pk}", query)
    assert before.json()["htsget"]["error"] == "UnsupportedFormat"
    assert (
        "whole file only (not bgzipped)"
        in Client().get(f"/datasets/{dataset.pk}/").content.decode()
    )

    asked = _api(donor).post(f"/api/v1/files/{stored.pk}/recompress")
    assert asked.status_code == 202, asked.content
    assert asked.json()["sliceable"] is False
    assert asked.json()["recompression"]["state"] == "queued"
    assert AuditEntry.objects.filter(action="file.recompress_request", object_id=str(stored.pk))

    file_recompress(file_id=str(stored.pk))  # the worker's task

    shown = _api(donor).get(f"/api/v1/files/{stored.pk}").json()
    assert shown["sliceable"] is True and shown["filename"] == "cohort.vcf.gz"
    done = shown["recompression"]
    assert done["state"] == "done" and done["uploaded_plaintext_sha256"] == uploaded_sha
    assert done["bgzipped_plaintext_sha256"] == shown["plaintext_sha256"] != uploaded_sha
    # The grant is the same row, its header made again for the new payload.
    assert done["grants_reissued"] == 1
    assert bytes(Grant.objects.get(pk=grant.pk).header) != bytes(grant.header)
    # The listing's record describes what researchers now get, and is anchored again.
    dataset.refresh_from_db()
    (entry,) = dataset.metadata["files"]
    assert entry["sliceable"] is True and entry["compression"] == "bgzf"
    assert entry["plaintext_sha256"] == shown["plaintext_sha256"]
    assert dataset.metadata["total_size"] == shown["size"]
    assert dataset.record_hash != record_before and dataset.anchor_tx == ""
    assert "by region" in Client().get(f"/datasets/{dataset.pk}/").content.decode()
    audit = AuditEntry.objects.get(action="file.recompress", object_id=str(stored.pk)).data
    assert audit["uploaded_plaintext_sha256"] == uploaded_sha
    assert audit["plaintext_sha256"] == shown["plaintext_sha256"]
    assert audit["grants_reissued"] == 1 and audit["datasets"] == [str(dataset.pk)]
    assert AuditEntry.objects.get(action="dataset.update", object_id=str(dataset.pk)).data[
        "previous"
    ] == (record_before)
    assert Notification.objects.filter(user=donor, message__contains="stored bgzipped").exists()
    assert Notification.objects.filter(
        user=researcher, request=request, message__contains=shown["plaintext_sha256"]
    ).exists()

    # DRS names the bgzipped plaintext's SHA-256, and its access URL serves exactly that.
    researcher_api = _api(researcher)
    blob = researcher_api.get(f"{DRS}/objects/{stored.pk}").json()
    assert blob["checksums"] == [{"type": "sha-256", "checksum": shown["plaintext_sha256"]}]
    assert blob["size"] == shown["size"] and blob["updated_time"].startswith(
        done["finished_at"][:19]
    )
    url = researcher_api.get(f"{DRS}/objects/{stored.pk}/access/crypt4gh").json()["url"]
    out = io.BytesIO()
    encrypted = b"".join(APIClient().get(url).streaming_content)  # type: ignore[attr-defined]
    reference.decrypt(
        [(0, c4gh.read_secret_key_file(secret_file.read_bytes(), ""), None)],
        io.BytesIO(encrypted),
        out,
        sender_pubkey=bytes(archive_key.public_key),
    )
    assert hashlib.sha256(out.getvalue()).hexdigest() == shown["plaintext_sha256"]

    # htsget now serves the region: the reference CLI decrypts the ticket's stream, and
    # bcftools finds exactly the original's records of the region in it.
    ticket = researcher_api.get(f"{HTSGET}/variants/{stored.pk}", query)
    assert ticket.status_code == 200, ticket.content
    stream = _fetch(researcher_api, ticket.json())
    assert len(stream) < len(encrypted) * 0.7
    sliced = tmp_path / "slice.vcf.gz"
    sliced.write_bytes(
        _run(str(BIN / "crypt4gh"), "decrypt", "--sk", str(secret_file), stdin=stream)
    )
    _run("bcftools", "index", "-t", str(sliced))
    local = tmp_path / "local.vcf.gz"
    local.write_bytes(_run("bgzip", "-c", str(plain_vcf)))
    _run("tabix", "-p", "vcf", str(local))
    region = f"{REGION[0]}:{start + 1}-{end}"
    got = _run("bcftools", "view", "-H", "-r", region, str(sliced))
    want = _run("bcftools", "view", "-H", "-r", region, str(local))
    assert got == want and want.count(b"\n") > 1000


def test_my_files_offers_it_shows_it_working_then_why_it_failed(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    plain_vcf,
    monkeypatch,
) -> None:
    donor = _user(Role.DONOR)
    stored = _ingested(donor, plain_vcf.read_bytes(), "cohort.vcf")
    bgzipped = ready_file(donor, filename="done.vcf.gz")
    GenomicFile.objects.filter(pk=bgzipped.pk).update(
        metadata={**bgzipped.metadata, "compression": "bgzf"}
    )
    browser = Client()
    browser.force_login(donor)
    page = browser.get("/files/").content.decode()
    assert page.count("Store bgzipped</button>") == 1  # the plain VCF only
    assert f"/files/{stored.pk}/recompress" in page

    answer = browser.post(f"/files/{stored.pk}/recompress", HTTP_HX_REQUEST="true")

    assert answer.status_code == 200
    table = answer.content.decode()
    assert table.startswith('<section id="files-table"') or 'id="files-table"' in table[:200]
    assert 'data-recompression="queued"' in table and "every 2s" in table
    assert "Store bgzipped</button>" not in table  # asked: no second button
    Recompression.objects.filter(file=stored).update(
        state=Recompression.State.WORKING, progress=0.42
    )  # as a running attempt reports it
    table = browser.get("/files/table").content.decode()
    assert 'data-recompression="working"' in table and 'value="0.420"' in table
    assert "every 2s" in table
    Recompression.objects.filter(file=stored).update(state=Recompression.State.QUEUED)

    def broken(*args: object) -> None:
        raise ValueError("no memory left")

    with monkeypatch.context() as patched:
        patched.setattr(recompress, "index_build", broken)
        file_recompress(file_id=str(stored.pk))

    table = browser.get("/files/table").content.decode()
    assert 'data-recompression="failed"' in table and "no memory left" in table
    assert "Try again: store bgzipped" in table and "every 2s" not in table
    assert AuditEntry.objects.get(action="file.recompress").data["state"] == "failed"
    assert Notification.objects.filter(user=donor, message__contains="no memory left").exists()

    browser.post(f"/files/{stored.pk}/recompress")  # again, without JS
    assert Recompression.objects.get(file=stored).state == Recompression.State.QUEUED
    file_recompress(file_id=str(stored.pk))
    table = browser.get("/files/table").content.decode()
    assert 'data-recompression="done"' in table and "Store bgzipped" not in table
    assert hashlib.sha256(plain_vcf.read_bytes()).hexdigest() in table  # the upload's


def test_a_file_that_cannot_be_stored_bgzipped_answers_409_in_the_api_shape() -> None:
    donor = _user(Role.DONOR)
    bgzipped = ready_file(donor)
    GenomicFile.objects.filter(pk=bgzipped.pk).update(
        metadata={**bgzipped.metadata, "compression": "bgzf"}
    )
    answer = _api(donor).post(f"/api/v1/files/{bgzipped.pk}/recompress")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"
    assert "already bgzipped" in answer.json()["error"]["message"]
    assert not Recompression.objects.exists()


def test_the_openapi_schema_documents_the_offer_and_its_state(client: Client) -> None:
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/files/{file_id}/recompress"]["post"]
    assert operation["operationId"] == "files_recompress"
    answer = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/FileOutput"}
    fields = schema["components"]["schemas"]["FileOutput"]["properties"]
    assert {"sliceable", "recompression"} <= set(fields)
    recompression = schema["components"]["schemas"]["Recompression"]["properties"]
    assert {"state", "progress", "error", "uploaded_plaintext_sha256"} <= set(recompression)
