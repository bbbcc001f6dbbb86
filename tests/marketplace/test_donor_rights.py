"""The audit log's personal fields (issue 19 §5) and the donor's reads: the accounting of
disclosures (JSON, CSV) and the export of one's own records (GDPR Art. 20)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from marketplace.models import AccessRequest, AuditEntry, AuditPersonal, Dataset, Role
from marketplace.services.audit import (
    audit_append,
    audit_personal_erase,
    audit_verify,
    audit_views,
    canonical,
)
from tests.factories import ready_file

pytestmark = pytest.mark.django_db


def test_a_persons_name_and_words_stay_out_of_the_hashed_entry(make_user) -> None:
    alice = make_user(Role.REVIEWER, username="alice-reviewer")
    entry = audit_append(
        action="request.reject",
        actor=alice,
        object_type="access_request",
        object_id="r1",
        data={"state": "rejected", "reason": "Purpose too vague, Alice says"},
    )
    hashed = canonical(entry)
    assert b"alice-reviewer" not in hashed and b"Alice says" not in hashed
    assert entry.personal_commitment and entry.personal_commitment.encode() in hashed
    view = audit_views([entry])[0]
    assert view.who == "alice-reviewer" and view.fields["reason"].endswith("Alice says")
    assert audit_verify().ok


def test_erasing_the_side_row_keeps_the_chain_verifying(make_user) -> None:
    donor = make_user(Role.DONOR, username="dora-donor")
    audit_append(action="dataset.withdraw", actor=donor, object_type="dataset", object_id="d")
    audit_append(action="request.grant", actor=None, data={"reason": "system note"})
    assert audit_personal_erase(subject_ids=[str(donor.pk)], entry_seqs=None) == 1
    assert audit_verify().ok
    views = audit_views(AuditEntry.objects.order_by("seq"))
    assert [v.who for v in views] == ["(erased)", "system"]
    assert views[1].fields["reason"] == "system note"  # the system's words are not personal


def test_a_changed_side_row_fails_verification(make_user) -> None:
    entry = audit_append(action="x", actor=make_user(Role.DONOR), data={"reason": "mine"})
    AuditPersonal.objects.filter(entry=entry).update(fields={"actor_label": "mallory"})
    result = audit_verify()
    assert not result.ok and result.first_broken == entry.seq and "commitment" in result.reason


def test_entries_written_before_side_rows_hash_as_they_did() -> None:
    """An entry without a commitment (every entry before this change) hashes over exactly
    the fields it always did: no key was added to its canonical form."""
    entry = audit_append(action="x", actor=None, data={"a": 1})
    assert entry.personal_commitment is None
    assert b"personal" not in canonical(entry)
    assert json.loads(canonical(entry)).keys() == {
        "seq", "prev_hash", "created_at", "actor_id", "actor_label", "action",
        "object_type", "object_id", "data",
    }  # fmt: skip


@pytest.fixture
def disclosed(make_user):
    donor = make_user(Role.DONOR)
    researcher = make_user(
        Role.RESEARCHER, public_name="Dr R. Searcher", institution="Example Institute"
    )
    stored = ready_file(donor, filename="cohort.vcf.gz")
    dataset = Dataset.objects.create(
        donor=donor, title="Cohort", price=1, access_days=1, duo_codes=[], record_hash="0" * 64
    )
    dataset.files.set([stored])
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        purpose_codes=[{"code": "DUO:0000006", "value": ""}],
        statement="s",
        amount=1,
    )
    for byte_range in ("bytes=0-1023", "=HYPERLINK()"):
        audit_append(
            action="request.download",
            actor=researcher,
            object_type="access_request",
            object_id=request.pk,
            data={"file": str(stored.pk), "range": byte_range},
        )
    client = APIClient()
    client.force_authenticate(donor)
    return client, donor, researcher


def test_the_donor_sees_who_accessed_what_when_and_why(disclosed) -> None:
    client, _, _ = disclosed
    rows = client.get("/api/v1/me/disclosures").json()["disclosures"]
    assert [r["byte_range"] for r in rows] == ["=HYPERLINK()", "bytes=0-1023"]
    first = rows[1]
    assert first["researcher"] == "Dr R. Searcher" and first["institution"] == "Example Institute"
    assert first["filename"] == "cohort.vcf.gz" and first["dataset"] == "Cohort"
    assert "DUO:0000006" in first["purpose"] and "health" in first["purpose"].lower()


def test_the_csv_export_has_one_line_per_disclosure_and_no_formulas(disclosed) -> None:
    client, _, _ = disclosed
    response = client.get("/api/v1/me/disclosures", {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["byte_range"] for r in rows] == ["'=HYPERLINK()", "bytes=0-1023"]
    assert rows[1]["institution"] == "Example Institute"


def test_the_export_holds_the_callers_own_records(disclosed) -> None:
    client, donor, researcher = disclosed
    export = client.get("/api/v1/me/export").json()
    assert export["account"]["username"] == donor.username
    assert [f["filename"] for f in export["files"]] == ["cohort.vcf.gz"]
    assert [d["title"] for d in export["datasets"]] == ["Cohort"]
    assert len(export["access_requests_on_my_datasets"]) == 1
    assert len(export["disclosures"]) == 2
    theirs = APIClient()
    theirs.force_authenticate(researcher)
    mine = theirs.get("/api/v1/me/export").json()
    assert [e["data"]["range"] for e in mine["audit_entries"]] == ["bytes=0-1023", "=HYPERLINK()"]
    assert mine["files"] == [] and mine["disclosures"] == []


def test_the_pages_show_the_history_and_count_before_erasing(disclosed, client) -> None:
    _, donor, _ = disclosed
    client.force_login(donor)
    page = client.get("/my-data/").content.decode()
    assert "Dr R. Searcher" in page and "Example Institute" in page and "bytes=0-1023" in page
    erase = client.get("/my-data/erase/").content.decode()
    assert "What erasure cannot undo" in erase and 'class="count-files">1<' in erase
    refused = client.post("/my-data/erase/", {"files": "all"})
    assert refused.status_code == 400 and not Dataset.objects.filter(state="withdrawn").exists()
    done = client.post("/my-data/erase/", {"files": "all", "confirm": "yes"})
    assert done.status_code == 302 and Dataset.objects.get().state == "withdrawn"
