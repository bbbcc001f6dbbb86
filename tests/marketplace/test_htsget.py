"""GA4GH htsget 1.3 over Crypt4GH (marketplace/ga4gh/htsget.py, genomics/services/tickets.py),
in process: indexes built at ingest and kept encrypted, tickets whose concatenated URLs the
reference `crypt4gh` decrypts into a slice that bcftools/samtools read with exactly the
region's records, the spec's errors, and visas as authorization (htsget and DRS).

The web asks the worker's ticketer over a Unix socket; here the ticketer's function runs in
the test process as the worker (the live-stack test, tests/acceptance/test_htsget_flow.py,
crosses the real socket)."""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import string
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pysam
import pytest
from crypt4gh import lib as reference
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from genomics import c4gh, htsindex, payloads, ticketer
from genomics.models import FileIndex, GenomicFile
from genomics.services import covering, tickets
from genomics.services.grants import grant_create
from marketplace.models import AccessRequest, Dataset, Role, User
from marketplace.services import htsget as htsget_service
from marketplace.services.visas import visa_issue, visa_key_create
from tests.genomics import samples
from tests.genomics.conftest import archive_key, archive_secret, upload_ready, worker  # noqa: F401

pytestmark = pytest.mark.django_db
HTSGET = "/ga4gh/htsget/v1"
VCF_REGION = ("chr1", 3_000_000, 3_100_000)
BAM_REGION = ("CHROMOSOME_I", 200_000, 202_000)


@dataclass
class Granted:
    researcher: User
    secret: bytes
    archive_public: bytes
    vcf: GenomicFile
    bam: GenomicFile
    plain: GenomicFile
    originals: dict[str, Path]
    request: AccessRequest

    def client(self, credential: str | None = None) -> APIClient:
        client = APIClient()
        if credential is None:
            credential = Token.objects.get_or_create(user=self.researcher)[0].key
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        return client


def _ingest(donor: User, data: bytes, filename: str) -> GenomicFile:
    browser = Client()
    browser.force_login(donor)
    return upload_ready(browser, data, filename, chunk=400_000)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The donor's files, made once per module (and indexed locally, as the comparison)."""
    folder = tmp_path_factory.mktemp("htsget-originals")
    vcf = samples.write_variants(folder / "cohort.vcf.gz", "wz", records=150_000)
    subprocess.run(["bcftools", "index", "-t", str(vcf)], check=True)
    bam = samples.htslib_test_bam(folder / "ce.bam", copies=20)
    subprocess.run(["samtools", "index", str(bam)], check=True)
    plain = samples.write_variants(folder / "plain.vcf", "w", records=50)
    return {"vcf": vcf, "bam": bam, "plain": plain}


@pytest.fixture
def granted(archive_key, archive_secret, worker, make_user, originals, monkeypatch) -> Granted:  # noqa: F811
    # The web's ticketer client, answered in this process by the worker's function.
    monkeypatch.setattr(
        htsget_service, "ticket_request", lambda **kwargs: tickets.ticket_build(**kwargs)
    )
    donor, researcher = make_user(Role.DONOR), make_user(Role.RESEARCHER)
    secret, public = c4gh.generate_keypair()
    researcher.crypt4gh_public_key = public
    researcher.save()
    vcf = _ingest(donor, originals["vcf"].read_bytes(), "cohort.vcf.gz")
    bam = _ingest(donor, originals["bam"].read_bytes(), "ce.bam")
    plain = _ingest(donor, originals["plain"].read_bytes(), "plain.vcf")
    dataset = Dataset.objects.create(donor=donor, title="htsget cohort", price=1, access_days=30)
    dataset.files.set([vcf, bam, plain])
    now = timezone.now()
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="s",
        amount=1,
        state=AccessRequest.State.GRANTED,
        granted_at=now,
        expires_at=now + timedelta(days=30),
    )
    for each in (vcf, bam, plain):
        grant_create(file=each, recipient_public_key=public)
    return Granted(
        researcher,
        secret,
        bytes(archive_key.public_key),
        vcf,
        bam,
        plain,
        originals,
        request,
    )


def fetch(client: APIClient, ticket: dict[str, Any]) -> bytes:
    """Concatenate a ticket's URLs as an htsget client does: data URIs decoded, HTTP URLs
    fetched with the headers the ticket gives."""
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


def decrypt(granted: Granted, stream: bytes) -> bytes:
    """The reference package's decryption, checking the header came from the archive."""
    out = io.BytesIO()
    reference.decrypt(
        [(0, granted.secret, None)],
        io.BytesIO(stream),
        out,
        sender_pubkey=granted.archive_public,
    )
    return out.getvalue()


def lines(argv: list[str]) -> list[str]:
    """What a standard tool prints, line by line."""
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.splitlines()


def test_ingest_builds_the_standard_index_and_keeps_it_encrypted(
    granted: Granted,
    archive_secret: bytes,  # noqa: F811
) -> None:
    kinds = {row.file_id: row.index_format for row in FileIndex.objects.all()}
    assert kinds == {granted.vcf.pk: "TBI", granted.bam.pk: "BAI"}  # a plain VCF: none
    row = FileIndex.objects.get(file=granted.bam)
    with default_storage.open(row.index_storage_name, "rb") as handle:
        stored = handle.read()
    assert b"BAI\1" not in stored
    out = io.BytesIO()
    reference.decrypt(
        [(0, archive_secret, None)], io.BytesIO(bytes(row.index_header) + stored), out
    )
    expected = Path(str(granted.originals["bam"]) + ".bai").read_bytes()
    assert out.getvalue() == expected  # what `samtools index` makes of the original


def region_ticket(
    granted: Granted, kind: str, region: tuple[str, int, int] | None = None
) -> tuple[APIClient, Any]:
    file = granted.vcf if kind == "vcf" else granted.bam
    name, start, end = region or (VCF_REGION if kind == "vcf" else BAM_REGION)
    client = granted.client()
    answer = client.get(
        f"{HTSGET}/{'variants' if kind == 'vcf' else 'reads'}/{file.pk}",
        {"referenceName": name, "start": str(start), "end": str(end), "encryptionScheme": "C4GH"},
    )
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("application/vnd.ga4gh.htsget.v1.3.0+json")
    return client, answer.json()


def test_tickets_decrypt_to_slices_with_exactly_the_regions_records(
    granted: Granted, tmp_path: Path
) -> None:
    for kind in ("vcf", "bam"):
        name, start, end = VCF_REGION if kind == "vcf" else BAM_REGION
        client, ticket = region_ticket(granted, kind)
        stream = fetch(client, ticket)
        file = granted.vcf if kind == "vcf" else granted.bam
        assert len(stream) < file.payload_size * 0.7
        slice_path = tmp_path / f"slice{'.vcf.gz' if kind == 'vcf' else '.bam'}"
        slice_path.write_bytes(decrypt(granted, stream))
        region = f"{name}:{start + 1}-{end}"
        if kind == "vcf":
            subprocess.run(["bcftools", "index", "-t", str(slice_path)], check=True)
            view = ["bcftools", "view", "-H"]
            got = lines([*view, "-r", region, str(slice_path)])
            want = lines([*view, "-r", region, str(granted.originals["vcf"])])
        else:
            subprocess.run(["samtools", "index", str(slice_path)], check=True)
            view = ["samtools", "view"]
            got = lines([*view, str(slice_path), region])
            want = lines([*view, str(granted.originals["bam"]), region])
        # Whole blocks (and index bins, which htslib merges when small) bring neighbours:
        # as htsget 1.3 allows, the client filters; what the region holds is all there.
        assert got == want and len(want) > 100, kind

    # class=header: the header alone, a valid BAM without records.
    client = granted.client()
    answer = client.get(f"{HTSGET}/reads/{granted.bam.pk}", {"class": "header"})
    assert answer.status_code == 200, answer.content
    path = tmp_path / "header.bam"
    path.write_bytes(decrypt(granted, fetch(client, answer.json())))
    assert "@SQ\tSN:CHROMOSOME_I" in "\n".join(lines(["samtools", "view", "-H", str(path)]))
    assert lines(["samtools", "view", str(path)]) == []

    # POST with regions (to the contig's end), and no region: the whole file.
    answer = client.post(
        f"{HTSGET}/variants/{granted.vcf.pk}",
        {"format": "VCF", "regions": [{"referenceName": "chr2", "start": 9_000_000}]},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    path = tmp_path / "post.vcf.gz"
    path.write_bytes(decrypt(granted, fetch(client, answer.json())))
    subprocess.run(["bcftools", "index", "-t", str(path)], check=True)
    got = lines(["bcftools", "view", "-H", "-r", "chr2:9000001-", str(path)])
    assert len(got) == 60_000  # chr2's records are at 100-base steps up to 15 Mb
    whole = client.get(f"{HTSGET}/variants/{granted.vcf.pk}")
    assert decrypt(granted, fetch(client, whole.json())) == granted.originals["vcf"].read_bytes()


def bgzf_block_end(path: Path, offset: int) -> int:
    """Where the BGZF block at `offset` ends (its BSIZE field, SAM spec §4.1)."""
    with path.open("rb") as handle:
        handle.seek(offset + 16)
        return offset + int.from_bytes(handle.read(2), "little") + 1


def header_blocks(path: Path, kind: str) -> int:
    """The size of the original's header BGZF blocks, by pysam: the blocks before the first
    record, and the one it starts in when the header shares it."""
    opener: Any = pysam.VariantFile if kind == "vcf" else pysam.AlignmentFile
    with opener(str(path)) as handle:
        first_record = handle.tell()
    block, inside = first_record >> 16, first_record & 0xFFFF
    return bgzf_block_end(path, block) if inside else block


def region_records(
    original: Path, kind: str, region: tuple[str, int, int], data: bytes, folder: Path
) -> tuple[list[str], list[str]]:
    """(records of `region` in the decrypted slice `data`, records of it in the original),
    as bcftools/samtools print them."""
    name, start, end = region
    where = f"{name}:{start + 1}-{end}"
    path = folder / f"slice-{uuid.uuid4().hex}{'.vcf.gz' if kind == 'vcf' else '.bam'}"
    path.write_bytes(data)
    if kind == "vcf":
        subprocess.run(["bcftools", "index", "-t", str(path)], check=True)
        view = ["bcftools", "view", "-H", "-r", where]
        return lines([*view, str(path)]), lines([*view, str(original)])
    subprocess.run(["samtools", "index", str(path)], check=True)
    return lines(["samtools", "view", str(path), where]), lines(
        ["samtools", "view", str(original), where]
    )


def served_plaintext(stream: bytes) -> int:
    """The plaintext bytes a Crypt4GH stream carries: its body less each segment's nonce
    and MAC (28 bytes; every segment but the last is 64 KiB + 28, §3.3)."""
    header = c4gh.header_size(stream)
    assert header is not None
    body = len(stream) - header
    return body - -(-body // c4gh.CIPHER_SEGMENT_SIZE) * 28


def test_a_region_ticket_serves_its_blocks_and_header_with_less_than_64_kib_more(
    granted: Granted, tmp_path: Path
) -> None:
    """Issue 17's bound: bytes served <= the region's covering BGZF blocks + 2 x 64 KiB +
    the header, counted in plaintext (Crypt4GH's own header and 28 bytes a segment come on
    top). The covering blocks are what the stream decrypts to besides the header and the
    EOF: from the first overlapping record's block to the last's (tests/genomics/
    test_edge_records.py checks they are exactly those). Served on top of the decrypted
    bytes: only the sealed head's padding, under one segment. A stored 64 KiB segment for
    the header's few bytes and a partial stored segment at each end of the region went
    over the bound."""
    cases = [
        ("bam", BAM_REGION),
        ("bam", ("CHROMOSOME_I", 0, 2_000)),  # starts in the first stored segment
        ("bam", ("CHROMOSOME_I", 380_000, 382_000)),  # the last reads: up to the EOF
        ("bam", ("CHROMOSOME_I", 100_000, 300_000)),
        ("vcf", VCF_REGION),
        ("vcf", ("chr2", 14_900_000, 15_000_000)),
    ]
    for kind, region in cases:
        original = granted.originals[kind]
        _, ticket = region_ticket(granted, kind, region)
        stream = fetch(granted.client(), ticket)
        plaintext = decrypt(granted, stream)
        got, want = region_records(original, kind, region, plaintext, tmp_path)
        assert got == want and want, (kind, region)
        header = header_blocks(original, kind)
        covering = len(plaintext) - header - len(BGZF_EOF)
        served = served_plaintext(stream)
        assert served <= covering + 2 * 65536 + header + len(BGZF_EOF), (kind, region)
        assert len(plaintext) <= served < len(plaintext) + 65536, (kind, region)

    # class=header: the header blocks and the EOF, not a 64 KiB segment.
    answer = granted.client().get(f"{HTSGET}/reads/{granted.bam.pk}", {"class": "header"})
    stream = fetch(granted.client(), answer.json())
    assert served_plaintext(stream) == header_blocks(granted.originals["bam"], "bam") + 28


def test_a_header_over_64_kib_is_served_whole_and_exactly(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    make_user,
    originals: dict[str, Path],
    tmp_path: Path,
) -> None:
    """A BAM whose header blocks span several 64 KiB segments (many @CO lines): its whole
    segments are stored ones, its last partial one is sealed with the region's first
    bytes; regions anywhere, and class=header, decrypt to valid BAMs."""
    rng = random.Random(5)
    text = lines(["samtools", "view", "-H", str(originals["bam"])])
    comments = [
        "@CO\t" + "".join(rng.choice(string.ascii_letters) for _ in range(100)) for _ in range(2500)
    ]
    (tmp_path / "header.sam").write_text("\n".join([*text, *comments]) + "\n")
    big = tmp_path / "big-header.bam"
    with big.open("wb") as written:
        subprocess.run(
            ["samtools", "reheader", str(tmp_path / "header.sam"), str(originals["bam"])],
            check=True,
            stdout=written,
        )
    subprocess.run(["samtools", "index", str(big)], check=True)
    header = header_blocks(big, "bam")
    assert header > 2 * 65536  # the header's blocks span three segments
    bam = _ingest(make_user(Role.DONOR), big.read_bytes(), "big-header.bam")
    secret, public = c4gh.generate_keypair()
    grant_create(file=bam, recipient_public_key=public)
    stored = [(p.payload_offset, p.size, p.storage_name) for p in bam.parts.all()]
    regions: list[tuple[str, int, int] | None] = [
        BAM_REGION,
        ("CHROMOSOME_I", 0, 2_000),
        ("CHROMOSOME_I", 380_000, 382_000),
        None,  # class=header
    ]
    for region in regions:
        parts = tickets.ticket_build(
            file_id=str(bam.pk),
            recipient_public=public,
            regions=[region] if region else None,
            header_only=region is None,
        )
        stream = parts.header + b"".join(
            piece if isinstance(piece, bytes) else b"".join(payloads.read_range(stored, *piece))
            for piece in parts.pieces
        )
        out = io.BytesIO()
        reference.decrypt(
            [(0, secret, None)],
            io.BytesIO(stream),
            out,
            sender_pubkey=bytes(archive_key.public_key),
        )
        if region is None:
            assert out.getvalue() == big.read_bytes()[:header] + BGZF_EOF
            assert served_plaintext(stream) == header + len(BGZF_EOF)
            continue
        got, want = region_records(big, "bam", region, out.getvalue(), tmp_path)
        assert got == want and want, region
        assert served_plaintext(stream) < len(out.getvalue()) + 65536, region


BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def test_a_files_ticket_material_is_derived_once_and_the_grant_checked_every_time(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    make_user,
    originals: dict[str, Path],
    monkeypatch,
    django_assert_num_queries,
) -> None:
    bam = _ingest(make_user(Role.DONOR), originals["bam"].read_bytes(), "once.bam")
    secret, public = c4gh.generate_keypair()
    grant_create(file=bam, recipient_public_key=public)

    def ask(key: bytes) -> tickets.TicketParts:
        return tickets.ticket_build(
            file_id=str(bam.pk), recipient_public=key, regions=[BAM_REGION], header_only=False
        )

    first = ask(public)

    def stream(parts: tickets.TicketParts) -> bytes:
        stored = [(p.payload_offset, p.size, p.storage_name) for p in bam.parts.all()]
        body = b"".join(
            piece if isinstance(piece, bytes) else b"".join(payloads.read_range(stored, *piece))
            for piece in parts.pieces
        )
        out = io.BytesIO()
        reference.decrypt(
            [(0, secret, None)],
            io.BytesIO(parts.header + body),
            out,
            sender_pubkey=bytes(archive_key.public_key),
        )
        return out.getvalue()

    # Once derived, a ticket decrypts neither the index nor the stored header, reads only
    # the payload segments of the index's blocks for the region (where it looks for the
    # first and last overlapping records, and seals the region's first and last segments
    # anew) and the one before them (whether an edge block begins inside a line), each
    # once; and costs one query: the file, its index and the grant for this key.
    derived: list[str] = []
    read = 0

    def counted(module: object, name: str) -> None:
        real = getattr(module, name)

        def count(*args: Any, **kwargs: Any) -> Any:
            nonlocal read
            derived.append(name)
            if name == "read_range":
                read += args[2] - args[1]
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, count)

    counted(covering, "file_index_read")
    counted(c4gh, "decrypt_header")
    counted(payloads, "read_range")
    with django_assert_num_queries(1):
        again = ask(public)
    assert "file_index_read" not in derived and "decrypt_header" not in derived
    prepared = next(iter(tickets._cache.values()))
    assert isinstance(prepared.parsed, htsindex.BinnedIndex)
    chunks = covering.region_chunks(prepared.parsed, prepared.block_map, *BAM_REGION)
    low = chunks[0][0] >> 16
    high = htsindex.block_end(prepared.block_map.blocks, chunks[-1][1] >> 16, bam.payload_size)
    segments = len(range(low // c4gh.SEGMENT_SIZE - 1, (high - 1) // c4gh.SEGMENT_SIZE + 1))
    assert 0 < read <= segments * c4gh.CIPHER_SEGMENT_SIZE
    # The grant is still checked for every key: the cached material serves no other.
    _, stranger = c4gh.generate_keypair()
    with pytest.raises(tickets.TicketRefused) as refused:
        ask(stranger)
    assert refused.value.code == "NotFound"

    assert again.payload_ranges == first.payload_ranges
    assert isinstance(again.pieces[-1], bytes)  # the EOF, sealed with the region's last bytes
    sliced = stream(again)
    assert sliced == stream(first) and sliced.endswith(BGZF_EOF)


def error(answer: Any) -> tuple[int, str]:
    body = answer.json()
    assert set(body) == {"htsget"} and set(body["htsget"]) == {"error", "message"}, body
    return answer.status_code, body["htsget"]["error"]


def test_errors_have_the_specs_names_and_statuses(granted: Granted, make_user) -> None:
    client = granted.client()
    vcf, bam = granted.vcf.pk, granted.bam.pk
    assert error(APIClient().get(f"{HTSGET}/reads/{bam}")) == (401, "InvalidAuthentication")
    stranger = make_user(Role.RESEARCHER)
    stranger_client = APIClient()
    stranger_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=stranger).key}"
    )
    assert error(stranger_client.get(f"{HTSGET}/reads/{bam}")) == (404, "NotFound")
    cases = {
        f"{HTSGET}/reads/{bam}?referenceName=chrZ": (404, "NotFound"),
        f"{HTSGET}/reads/{bam}?referenceName=CHROMOSOME_I&start=9&end=3": (400, "InvalidRange"),
        f"{HTSGET}/reads/{bam}?referenceName=CHROMOSOME_I&start=x": (400, "InvalidInput"),
        f"{HTSGET}/reads/{bam}?start=5": (400, "InvalidInput"),
        f"{HTSGET}/reads/{bam}?class=body": (400, "InvalidInput"),
        f"{HTSGET}/reads/{bam}?format=CRAM": (400, "UnsupportedFormat"),
        f"{HTSGET}/reads/{bam}?encryptionScheme=PGP": (400, "UnsupportedFormat"),
        f"{HTSGET}/reads/{vcf}": (400, "UnsupportedFormat"),
        f"{HTSGET}/variants/{granted.plain.pk}": (400, "UnsupportedFormat"),
        f"{HTSGET}/variants/not-a-uuid": (404, "NotFound"),
    }
    for path, expected in cases.items():
        assert error(client.get(path)) == expected, path
    # The file says chr1: asked for 1, the refusal names the file's spelling.
    unprefixed = client.get(f"{HTSGET}/variants/{vcf}?referenceName=1")
    assert error(unprefixed) == (404, "NotFound")
    assert "It names that contig chr1." in unprefixed.json()["htsget"]["message"]
    many = [{"referenceName": "CHROMOSOME_I", "start": n, "end": n + 1} for n in range(1001)]
    assert error(client.post(f"{HTSGET}/reads/{bam}", {"regions": many}, format="json")) == (
        400,
        "InvalidInput",
    )
    for endpoint in ("reads", "variants"):
        info = APIClient().get(f"{HTSGET}/{endpoint}/service-info").json()
        assert info["type"] == {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"}
        assert info["htsget"]["datatype"] == endpoint

    # A ticket's URL serves its own range only, with its own token, while the grant lives.
    # (A region wide enough to hold whole stored segments: a small one is sealed whole.)
    ticket = client.get(
        f"{HTSGET}/reads/{bam}", {"referenceName": "CHROMOSOME_I", "start": "0", "end": "300000"}
    ).json()
    item = next(url for url in ticket["htsget"]["urls"] if "headers" in url)
    token = item["headers"]["Authorization"]
    first = int(item["headers"]["Range"].split("=")[1].split("-")[0])
    blocks = APIClient()
    wider = blocks.get(item["url"], HTTP_AUTHORIZATION=token, HTTP_RANGE=f"bytes=0-{first}")
    assert first == 0 or error(wider) == (400, "InvalidRange")
    forged = blocks.get(item["url"], HTTP_AUTHORIZATION=token[:-2] + "xx")
    assert error(forged) == (403, "PermissionDenied")
    granted.request.state = AccessRequest.State.REVOKED
    granted.request.save()
    revoked = blocks.get(item["url"], HTTP_AUTHORIZATION=token, HTTP_RANGE=item["headers"]["Range"])
    assert error(revoked) == (403, "PermissionDenied")


@pytest.fixture
def visa(granted: Granted, settings, tmp_path: Path) -> str:
    settings.VISA_SIGNING_KEY_FILE = str(tmp_path / "keys" / "visa.pem")
    visa_key_create(path=Path(settings.VISA_SIGNING_KEY_FILE))
    issued = visa_issue(request=granted.request)
    assert issued is not None and issued.token
    return issued.token


def test_a_visa_authorizes_htsget_and_drs_for_its_dataset_until_revoked(
    granted: Granted, visa: str, make_user
) -> None:
    client = granted.client(visa)
    ticket = client.get(f"{HTSGET}/reads/{granted.bam.pk}", {"class": "header"})
    assert ticket.status_code == 200, ticket.content
    drs = client.get(f"/ga4gh/drs/v1/objects/{granted.bam.pk}")
    assert drs.status_code == 200, drs.content

    # Tampered: the claims changed under the same signature.
    head, payload, signature = visa.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    other = claims.replace(str(granted.researcher.pk).encode(), b"0" * 32)
    forged = granted.client(
        f"{head}.{base64.urlsafe_b64encode(other).rstrip(b'=').decode()}.{signature}"
    )
    # No credential at all: 401 (htsget's InvalidAuthentication), not a refused holder.
    assert error(forged.get(f"{HTSGET}/reads/{granted.bam.pk}")) == (401, "InvalidAuthentication")
    assert forged.get(f"/ga4gh/drs/v1/objects/{granted.bam.pk}").status_code == 401

    # The researcher's other grant is not reachable with this dataset's visa.
    other_dataset = Dataset.objects.create(
        donor=make_user(Role.DONOR), title="other", price=1, access_days=30
    )
    extra = _ingest(other_dataset.donor, granted.originals["plain"].read_bytes(), "other.vcf")
    other_dataset.files.set([extra])
    AccessRequest.objects.create(
        dataset=other_dataset,
        researcher=granted.researcher,
        statement="s",
        amount=1,
        state=AccessRequest.State.GRANTED,
        granted_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=3),
    )
    assert client.get(f"/ga4gh/drs/v1/objects/{extra.pk}").status_code == 404
    assert granted.client().get(f"/ga4gh/drs/v1/objects/{extra.pk}").status_code == 200

    # Revoked: the visa's `exp` is still ahead, but the grant itself is checked.
    granted.request.state = AccessRequest.State.REVOKED
    granted.request.save()
    assert error(client.get(f"{HTSGET}/reads/{granted.bam.pk}")) == (403, "PermissionDenied")
    refused = client.get(f"/ga4gh/drs/v1/objects/{granted.bam.pk}")
    assert refused.status_code == 403 and "msg" in refused.json()


@pytest.mark.django_db(transaction=True)  # no test transaction: closing really closes
def test_the_ticketer_serves_every_request_on_one_database_connection(monkeypatch) -> None:
    # SQLite's default: Django would close the connection after every request.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()
    used = []

    def ask() -> dict[str, Any]:
        server_end, client_end = socket.socketpair()
        with server_end, client_end:
            request = {"file": str(uuid.uuid4()), "recipient": "", "regions": None}
            client_end.sendall(json.dumps(request).encode() + b"\n")
            ticketer._Handler(server_end, "", None)  # type: ignore[arg-type]
            answer = json.loads(client_end.makefile("rb").readline())
        used.append(connection.connection)
        return answer

    assert ask()["error"] == "NotFound"
    assert ask()["error"] == "NotFound"
    assert used[0] is not None and used[1] is used[0]


def test_a_ticket_service_that_does_not_answer_is_a_server_error_not_the_clients(
    granted: Granted, monkeypatch
) -> None:
    """A 503 must not carry a 4xx name (InvalidInput), which tells a client to change a
    request that was fine."""
    from core.errors import ServiceUnavailable

    def down(**kwargs: Any) -> None:
        raise ServiceUnavailable("The htsget ticket service is not answering; try again.")

    monkeypatch.setattr(htsget_service, "ticket_request", down)
    answer = granted.client().get(f"{HTSGET}/reads/{granted.bam.pk}?referenceName=CHROMOSOME_I")
    assert error(answer) == (503, "ServiceUnavailable")


def bgzip_made_vcf(path: Path, records: int, step: int) -> Path:
    """A VCF compressed by the `bgzip` command, which cuts a block every 64 KiB of text
    wherever it falls: ~700-byte lines, so most blocks begin and end inside a record (and
    the header's block ends inside one). Indexed locally, as the comparison."""
    rng = random.Random(23)
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chr1,length=1000000>",
        '##INFO=<ID=PAD,Number=1,Type=String,Description="Padding">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for number in range(records):
        ref = "ACGT"[number % 4] * (1 + number % 7)  # deletions of up to 6 bases
        pad = "".join(rng.choice(string.ascii_letters) for _ in range(680))
        lines.append(f"chr1\t{100 + number * step}\t.\t{ref}\tT\t50\tPASS\tPAD={pad}")
    with path.open("wb") as out:
        subprocess.run(
            ["bgzip", "-c"], input="\n".join(lines).encode() + b"\n", stdout=out, check=True
        )
    subprocess.run(["bcftools", "index", "-t", str(path)], check=True)
    return path


def overlapping(records: list[str], regions: list[tuple[str, int, int]]) -> list[str]:
    """The VCF lines that overlap a region (POS..POS+len(REF)-1, 1-based; VCF 4.3 §1.6)."""
    kept = []
    for line in records:
        fields = line.split("\t")
        begin = int(fields[1]) - 1
        stop = begin + len(fields[3])
        if any(fields[0] == n and stop > s and begin < e for n, s, e in regions):
            kept.append(line)
    return kept


def granted_to_a_new_key(
    file: GenomicFile, archive: Any, tmp_path: Path
) -> tuple[Path, Path, Path]:
    """A fresh researcher key pair (`crypt4gh-keygen`) granted `file`, and the archive's
    public key written where `crypt4gh decrypt --sender_pk` reads it:
    (secret key path, public key path, archive public key path)."""
    from tests.acceptance.test_marketplace_flow import keygen

    secret_path, public_path = keygen(tmp_path)
    grant_create(file=file, recipient_public_key=c4gh.parse_public_key(public_path.read_text()))
    archive_pub = tmp_path / "archive.pub"
    archive_pub.write_text(c4gh.public_key_text(bytes(archive.public_key)))
    return secret_path, public_path, archive_pub


def ticket_plaintext(
    file: GenomicFile,
    public_path: Path,
    secret_path: Path,
    archive_pub: Path,
    regions: list[tuple[str, int, int]] | None,
) -> bytes:
    """What the reference `crypt4gh` CLI decrypts a ticket's stream of `file` to (the
    header and pieces concatenated, as a client does); `regions` None: class=header."""
    stored = [(p.payload_offset, p.size, p.storage_name) for p in file.parts.all()]
    wanted: list[tuple[str, int | None, int | None]] = [(n, s, e) for n, s, e in regions or []]
    parts = tickets.ticket_build(
        file_id=str(file.pk),
        recipient_public=c4gh.parse_public_key(public_path.read_text()),
        regions=wanted,
        header_only=regions is None,
    )
    stream = parts.header + b"".join(
        piece if isinstance(piece, bytes) else b"".join(payloads.read_range(stored, *piece))
        for piece in parts.pieces
    )
    return subprocess.run(
        ["crypt4gh", "decrypt", "--sk", str(secret_path), "--sender_pk", str(archive_pub)],
        input=stream,
        capture_output=True,
        check=True,
        env={"PATH": str(Path(sys.executable).parent)},
    ).stdout


def test_a_bgzip_made_vcf_slice_is_whole_lines_that_plain_bcftools_view_reads(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    make_user,
    tmp_path: Path,
) -> None:
    """The edge blocks of a `bgzip`-made VCF are cut inside records: a ticket re-encodes
    them (sealed for the ticket) so that the slice the reference `crypt4gh` CLI decrypts
    is whole lines, which `bcftools view` reads to the end without `-r`: its records that
    overlap the region(s) are exactly `bcftools view -r`'s on the original. Whole blocks
    (the code before) left a broken line at each edge, where bcftools stopped."""
    original = bgzip_made_vcf(tmp_path / "bgzipped.vcf.gz", records=3000, step=50)
    vcf = _ingest(make_user(Role.DONOR), original.read_bytes(), "bgzipped.vcf.gz")
    secret_path, public_path, archive_pub = granted_to_a_new_key(vcf, archive_key, tmp_path)
    every = set(lines(["bcftools", "view", "-H", str(original)]))
    cases: list[list[tuple[str, int, int]]] = [
        [("chr1", 50_020, 60_020)],
        [("chr1", 20_000, 25_000), ("chr1", 100_000, 104_000)],  # two regions far apart
    ]
    for regions in cases:
        sliced = tmp_path / "slice.vcf.gz"
        sliced.write_bytes(ticket_plaintext(vcf, public_path, secret_path, archive_pub, regions))
        # Every line is one of the original's: no line glued from two records' halves
        # (which can even parse) and none cut short at the end.
        records = lines(["bcftools", "view", "-H", str(sliced)])
        assert set(records) <= every, (regions, [r[:60] for r in set(records) - every])
        where = ",".join(f"{n}:{s + 1}-{e}" for n, s, e in regions)
        want = lines(["bcftools", "view", "-H", "-r", where, str(original)])
        assert overlapping(records, regions) == want and len(want) > 50, regions
        assert sliced.stat().st_size < original.stat().st_size / 4, regions


def test_a_one_block_bgzip_made_vcf_serves_no_record_for_a_header_or_a_gap(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    make_user,
    tmp_path: Path,
) -> None:
    """A small `bgzip`-made VCF is one BGZF block: the header and every record. Its
    class=header ticket and a ticket of a region in a gap must decrypt to the header alone
    (the header's lines re-encoded as a block of their own), and a region's to just its
    records; the block served whole (the code before) gave every record each time."""
    original = bgzip_made_vcf(tmp_path / "small.vcf.gz", records=30, step=100)
    vcf = _ingest(make_user(Role.DONOR), original.read_bytes(), "small.vcf.gz")
    secret_path, public_path, archive_pub = granted_to_a_new_key(vcf, archive_key, tmp_path)
    header = lines(["bcftools", "view", "-h", "--no-version", str(original)])
    sliced = tmp_path / "slice.vcf.gz"
    cases: list[tuple[list[tuple[str, int, int]] | None, str]] = [
        (None, ""),
        ([("chr1", 500_000, 600_000)], ""),
        ([("chr1", 1_000, 1_500)], "chr1:1001-1500"),
    ]
    for regions, where in cases:
        sliced.write_bytes(ticket_plaintext(vcf, public_path, secret_path, archive_pub, regions))
        assert lines(["bcftools", "view", "-h", "--no-version", str(sliced)]) == header, regions
        records = lines(["bcftools", "view", "-H", str(sliced)])
        if not where:
            assert records == [], (regions, len(records))
            continue
        # A region's blocks may hold other records too (htsget 1.3: the client filters).
        want = lines(["bcftools", "view", "-H", "-r", where, str(original)])
        assert regions is not None and overlapping(records, regions) == want and want


def test_a_bcf_is_indexed_at_ingest_and_served_by_region(
    archive_key,  # noqa: F811
    worker,  # noqa: F811
    make_user,
    tmp_path: Path,
) -> None:
    """A BCF gets its CSI index at ingest (htslib reads the worker's file through a
    /proc/self/fd path, with no .bcf suffix to guess the format from: the preset says it),
    and a region ticket decrypts to a BCF holding that region's records."""
    text = bgzip_made_vcf(tmp_path / "for-bcf.vcf.gz", records=3000, step=50)
    original = tmp_path / "cohort.bcf"
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(original), str(text)], check=True)
    subprocess.run(["bcftools", "index", str(original)], check=True)
    bcf = _ingest(make_user(Role.DONOR), original.read_bytes(), "cohort.bcf")
    assert FileIndex.objects.get(file=bcf).index_format == "CSI"
    secret_path, public_path, archive_pub = granted_to_a_new_key(bcf, archive_key, tmp_path)
    regions = [("chr1", 50_020, 60_020)]
    sliced = tmp_path / "slice.bcf"
    sliced.write_bytes(ticket_plaintext(bcf, public_path, secret_path, archive_pub, regions))
    # Read whole, without the index: records run across blocks in this BCF, so a slice
    # that began or ended inside one would fail here ("BCF read error").
    records = lines(["bcftools", "view", "-H", str(sliced)])
    want = lines(["bcftools", "view", "-H", "-r", "chr1:50021-60020", str(original)])
    assert overlapping(records, regions) == want and len(want) > 50
    assert sliced.stat().st_size < original.stat().st_size / 4
    # The header shares its block with records that run into the next: class=header and
    # a gap are the header alone.
    header = lines(["bcftools", "view", "-h", "--no-version", str(original)])
    for empty in (None, [("chr1", 900_000, 950_000)]):
        sliced.write_bytes(ticket_plaintext(bcf, public_path, secret_path, archive_pub, empty))
        assert lines(["bcftools", "view", "-h", "--no-version", str(sliced)]) == header
        assert lines(["bcftools", "view", "-H", str(sliced)]) == [], empty
