"""A donor's erasure (issue 19 §5, RELIABILITY.md 28) on PostgreSQL, without the chain:
headers destroyed first, then every stored object and row derived from the files, checked
at SQL level over every table and by scanning storage for the payload's ciphertext; the
audit log still verifies; the tables are vacuumed. The chain side (refunds, delivered
requests kept) is in tests/integration/test_erasure_settlement.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from rest_framework.test import APIClient

from genomics import c4gh, payloads
from genomics.models import GenomicFile, Grant, PayloadPart, UploadState
from genomics.services.archive_keys import archive_key_create, archive_key_rotate_batch
from genomics.services.grants import grant_create
from marketplace.models import AuditEntry, AuditPersonal, Dataset, Erasure, ErasureObject, Role
from marketplace.services import erasure as erasure_service
from marketplace.services.audit import audit_verify, audit_views
from marketplace.services.erasure import erasure_preview, erasure_request, erasure_run
from tests.genomics import conftest as vault_fixtures
from tests.genomics.conftest import PASSPHRASE, create_upload, patch
from tests.genomics.test_ingest_grants_downloads import ingested

pytestmark = [pytest.mark.django_db]
MOVED_HEADER = b"crypt4gh header moved to the new archive key"
archive_key = vault_fixtures.archive_key  # the vault's fixtures, used here too
worker = vault_fixtures.worker
# VACUUM cannot run inside a transaction, and a second thread sees only committed rows.
COMMITTED = pytest.mark.django_db(transaction=True)
VCF = b"##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n" + (
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    + b"".join(b"chr1\t%d\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n" % (100 + i) for i in range(3000))
)


def _storage_files() -> dict[str, bytes]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _bytea_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'bytea'"
        )
        return list(cursor.fetchall())


def _rows_holding(secret: bytes) -> list[str]:
    """Every table.column of any table whose bytea value contains `secret`."""
    found = []
    with connection.cursor() as cursor:
        for table, column in _bytea_columns():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE position(%s in "{column}") > 0',  # noqa: S608 - names from information_schema
                [secret],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def _rows_naming(value: str) -> list[str]:
    """Every table.column (text, varchar, uuid, json) whose value is or contains `value`,
    except the audit log and the erasure's own record (which name ids by design)."""
    skip = {"marketplace_auditentry", "marketplace_erasure"}
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'uuid', 'jsonb')"
        )
        for table, column in cursor.fetchall():
            if table in skip:
                continue
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608 - names from information_schema
                [f"%{value}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


@pytest.fixture
def donor_files(archive_key, worker, make_user):
    """A donor with an ingested file (real upload and ingest: whatever ingest derives is
    there), a file still uploading (its wrapped data key in the database), and a grant."""
    from django.test import Client

    donor = make_user(Role.DONOR)
    client = Client()
    client.force_login(donor)
    stored = ingested(client, VCF, "mine.vcf")
    assert stored.state == "ready"
    location = create_upload(client, 100_000, "partial.vcf")
    assert patch(client, location, 0, b"x" * 70_000).status_code == 204
    partial = GenomicFile.objects.get(filename="partial.vcf")
    assert UploadState.objects.filter(file=partial).exists() and partial.parts.exists()
    researcher_key = c4gh.generate_keypair()[1]
    grant = grant_create(file=stored, recipient_public_key=researcher_key)
    return donor, stored, partial, grant


@COMMITTED
def test_erasure_destroys_headers_objects_and_rows_and_the_audit_log_verifies(
    donor_files, make_user
) -> None:
    donor, stored, partial, grant = donor_files
    other_donor = make_user(Role.DONOR)
    kept = GenomicFile.objects.create(
        owner=other_donor, filename="theirs", upload_length=1, payload_key="k" * 32
    )
    payloads.write_part(kept.payload_key, 0, b"their ciphertext")
    PayloadPart.objects.create(
        file=kept, payload_offset=0, size=16, storage_name=payloads.part_name(kept.payload_key, 0)
    )
    header, grant_header = bytes(stored.header), bytes(grant.header)
    ciphertext = b"".join(
        Path(settings.MEDIA_ROOT, p.storage_name).read_bytes() for p in stored.parts.all()
    )
    assert len(ciphertext) > 10_000 and _rows_holding(header) and _rows_holding(grant_header)
    before = _storage_files()
    assert any(ciphertext[:4096] in blob for blob in before.values())

    erasure = erasure_request(donor=donor, files="all", confirm=True)
    entries_before = AuditEntry.objects.count()
    done = erasure_run(erasure_id=erasure.pk)

    # One audit entry for the erasure; the chain verifies.
    assert AuditEntry.objects.count() == entries_before + 1
    assert AuditEntry.objects.filter(action="donor.erase", object_id=str(erasure.pk)).count() == 1
    assert audit_verify().ok
    assert done.state == Erasure.State.DONE
    # Storage: nothing of the donor's, not a segment of the ciphertext; the other donor's
    # object is still there.
    after = _storage_files()
    assert not [name for name, blob in after.items() if ciphertext[:4096] in blob]
    assert not any(stored.payload_key in name or partial.payload_key in name for name in after)
    assert payloads.part_name(kept.payload_key, 0) in after
    # SQL: no bytea value holds a header or the grant header; no row names the files.
    assert _rows_holding(header) == [] and _rows_holding(grant_header) == []
    for file_id in (stored.pk, partial.pk):
        assert _rows_naming(str(file_id)) == []
    assert not Grant.objects.exists() and not UploadState.objects.filter(file=partial).exists()
    assert not ErasureObject.objects.exists()
    # VACUUM ran on the tables it touched.
    assert {"genomics_genomicfile", "genomics_grant", "genomics_payloadpart"} <= set(
        done.summary["vacuumed"]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'genomics_genomicfile'"
        )
        assert cursor.fetchone()[0] is not None
    assert done.summary["headers_destroyed"] >= 3  # two files' headers, one grant
    # The donor's personal audit fields are gone, the entries stay and say so.
    assert not AuditPersonal.objects.filter(subject_id=str(donor.pk)).exists()
    mine = AuditEntry.objects.filter(actor_id=str(donor.pk))
    assert mine.exists() and all(v.who == "(erased)" for v in audit_views(mine))
    assert donor.username not in str(list(mine.values_list("data", "actor_label")))


def test_headers_are_destroyed_before_any_object_is_deleted(donor_files, monkeypatch) -> None:
    """A crash after the first step leaves payloads no key opens, and the next run ends
    the work."""
    donor, stored, _, _ = donor_files

    def crash(names):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(erasure_service.vault, "storage_delete", crash)
    erasure = erasure_request(donor=donor, files=[str(stored.pk)], confirm=True)
    with pytest.raises(RuntimeError):
        erasure_run(erasure_id=erasure.pk)
    stored.refresh_from_db()
    assert stored.header is None and not Grant.objects.exists()
    assert stored.parts.exists()  # payload still stored, but unreadable
    assert ErasureObject.objects.filter(erasure=erasure).exists()  # recorded before
    monkeypatch.undo()
    assert erasure_run(erasure_id=erasure.pk).state == "done"
    assert not GenomicFile.objects.filter(pk=stored.pk).exists()
    assert not any(stored.payload_key in name for name in _storage_files())


def test_a_forged_part_row_does_not_make_the_worker_delete_another_donors_object(
    donor_files, make_user
) -> None:
    donor, stored, _, _ = donor_files
    other = GenomicFile.objects.create(
        owner=make_user(Role.DONOR), filename="o", upload_length=1, payload_key="o" * 32
    )
    name = payloads.write_part(other.payload_key, 0, b"other donor")
    PayloadPart.objects.create(file=other, payload_offset=0, size=11, storage_name=name)
    # What a web tier that can write rows could add under the donor's file:
    PayloadPart.objects.create(file=stored, payload_offset=10**9, size=11, storage_name=name)
    erasure_run(erasure_id=erasure_request(donor=donor, files="all", confirm=True).pk)
    assert name in _storage_files()


@COMMITTED
def test_an_erasure_waits_for_a_rotation_moving_the_file(donor_files, settings) -> None:
    """A rotation moves a file under its row lock; the erasure takes the same lock, so it
    waits, and the rotation then finds nothing left to move and retires the old key."""
    donor, stored, _, _ = donor_files
    archive_key_create(
        secret_key_path=Path(settings.ARCHIVE_SECRET_KEY_FILE), passphrase=PASSPHRASE, replace=True
    )
    erasure = erasure_request(donor=donor, files="all", confirm=True)
    locked, release = threading.Event(), threading.Event()

    def rotation_holding_the_file() -> None:
        with transaction.atomic():
            GenomicFile.objects.select_for_update().get(pk=stored.pk)
            locked.set()
            release.wait(10)
            # What the move writes: the header re-encrypted to the new key.
            GenomicFile.objects.filter(pk=stored.pk).update(header=MOVED_HEADER)
        close_old_connections()
        connection.close()

    holder = threading.Thread(target=rotation_holding_the_file)
    holder.start()
    assert locked.wait(10)
    result: dict[str, Erasure] = {}

    def erase() -> None:
        result["erasure"] = erasure_run(erasure_id=erasure.pk)
        connection.close()

    eraser = threading.Thread(target=erase)
    eraser.start()
    eraser.join(1.0)
    assert eraser.is_alive(), "the erasure did not wait for the file's lock"
    release.set()
    holder.join(10)
    eraser.join(30)
    assert result["erasure"].state == "done"
    assert _rows_holding(MOVED_HEADER) == []  # the header the rotation wrote is gone too
    progress = archive_key_rotate_batch()
    assert progress.retiring_key is None and progress.remaining == 0


def test_the_preview_counts_what_will_happen(donor_files, make_user) -> None:
    donor, stored, _, _ = donor_files
    client = APIClient()
    client.force_authenticate(donor)
    listed = client.post(
        "/api/v1/datasets",
        {
            "title": "Mine",
            "files": [str(stored.pk)],
            "duo_codes": ["DUO:0000042"],
            "price": "1000",
            "access_days": 30,
            "review": "committee",
        },
        format="json",
    )
    assert listed.status_code == 201, listed.content
    preview = erasure_preview(donor=donor, files=[str(stored.pk)])
    assert [f["filename"] for f in preview.files] == ["mine.vcf"]
    assert [d["title"] for d in preview.datasets_withdrawn] == ["Mine"]
    assert preview.headers_destroyed == 2  # the file's header and the grant's
    assert preview.storage_objects >= 1
    answer = client.get("/api/v1/me/erase", {"files": "all"}).json()
    assert len(answer["files"]) == 2 and "downloaded" in answer["cannot_undo"]
    # Without the confirmation nothing happens; with it the listing is withdrawn at once.
    refused = client.post("/api/v1/me/erase", {"files": "all"}, format="json")
    assert refused.status_code == 400 and not Erasure.objects.exists()
    accepted = client.post("/api/v1/me/erase", {"files": "all", "confirm": True}, format="json")
    assert accepted.status_code == 202 and accepted.json()["will"]["files"]
    assert Dataset.objects.get().state == Dataset.State.WITHDRAWN
    researcher = APIClient()
    researcher.force_authenticate(make_user(Role.RESEARCHER))
    assert researcher.post("/api/v1/me/erase", {"files": "all"}, format="json").status_code == 403


def test_every_table_hanging_off_a_dataset_is_decided() -> None:
    """A new table with a foreign key to Dataset is either erased with the donor's data
    (DATASET_DERIVED) or kept (DATASET_KEPT): a new one fails here until it is decided."""
    decided = set(erasure_service.DATASET_DERIVED) | set(erasure_service.DATASET_KEPT)
    hanging = {
        model._meta.label
        for model in apps.get_models()
        for f in model._meta.concrete_fields
        if isinstance(f, models.ForeignKey) and f.related_model is Dataset
    }
    assert hanging <= decided, hanging - decided


def test_the_web_role_cannot_delete_audit_personal_rows_nor_order_deletions() -> None:
    from ledger.management.commands.create_web_role import worker_tables

    tables = worker_tables()
    assert tables["marketplace_auditpersonal"] == ("INSERT",)
    assert tables["marketplace_erasureobject"] == ()


def test_picking_one_file_on_the_page_erases_only_that_file(donor_files) -> None:
    """The page's "All my files" box comes ticked: a file picked by name must win over it,
    and the counts say whether the donor's name in the audit log goes (newcomer finding)."""
    from tests.support.web import logged_in

    donor, stored, _, _ = donor_files
    client = logged_in(donor)
    page = client.get("/my-data/erase/", {"files": ["all", str(stored.pk)]}).content.decode()
    assert "your name in the audit log kept" in page
    sent = client.post(
        "/my-data/erase/", {"files": ["all", str(stored.pk)], "confirm": "yes"}, follow=False
    )
    assert sent.status_code == 302
    erasure = Erasure.objects.get()
    assert not erasure.everything and [str(f) for f in erasure.file_ids] == [str(stored.pk)]
