"""Donors' rights, reads (issue 19 §5): the accounting of disclosures (HIPAA §164.528
style: who, when, what, under which purpose) and the export of a person's own records
(GDPR Art. 20: structured, commonly used, machine-readable)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC
from typing import Any
from uuid import UUID

from django.utils import timezone

from genomics.models import GenomicFile
from ledger.selectors.wallets import wallet_address_of
from marketplace.consent.terms import term
from marketplace.models import AccessRequest, AuditEntry, Dataset, Erasure, Notification, User
from marketplace.services.audit import audit_views

# Audit actions that disclose a donor's data to a researcher: a grant (a header made for
# the researcher's key, which opens the payload) and each download, with its byte range.
# Other modules that serve data (htsget tickets, region tiers) add their action here.
DISCLOSURE_ACTIONS: dict[str, str] = {
    "request.grant": "Access granted (a key header made for the researcher)",
    "request.download": "Download",
}
DISCLOSURE_FIELDS = (
    "at",
    "action",
    "what",
    "researcher",
    "institution",
    "request",
    "dataset",
    "file",
    "filename",
    "byte_range",
    "purpose",
    "purpose_codes",
)


def _purpose(codes: list[Any]) -> str:
    words = []
    for item in codes:
        code = item.get("code", "") if isinstance(item, dict) else str(item)
        value = item.get("value", "") if isinstance(item, dict) else ""
        found = term(code)
        label = found.label if found is not None else code
        words.append(f"{label} ({code}{'=' + value if value else ''})")
    return "; ".join(words)


def disclosures_of_donor(*, donor: User) -> list[dict[str, str]]:
    """Every disclosure of the donor's data, newest first: [{DISCLOSURE_FIELDS}] (times in
    ISO 8601 UTC; `byte_range` as the HTTP Range asked, "all" for a whole file, "" for a
    grant; `file` "" for a grant, which covers every file of the dataset)."""
    requests = {
        str(r.pk): r
        for r in AccessRequest.objects.filter(dataset__donor=donor).select_related(
            "researcher", "dataset"
        )
    }
    if not requests:
        return []
    entries = AuditEntry.objects.filter(
        object_type="access_request",
        object_id__in=list(requests),
        action__in=list(DISCLOSURE_ACTIONS),
    ).order_by("-seq")
    # Erased files have no name any more.
    names: dict[UUID | None, str] = dict(
        GenomicFile.objects.filter(owner=donor).values_list("pk", "filename")
    )
    rows = []
    for view in audit_views(entries):
        entry = view.entry
        request = requests[entry.object_id]
        researcher = request.researcher
        file_id = str(entry.data.get("file", ""))
        rows.append(
            {
                "at": entry.created_at.astimezone(UTC).isoformat(),
                "action": entry.action,
                "what": DISCLOSURE_ACTIONS[entry.action],
                "researcher": researcher.display_name,
                "institution": researcher.institution,
                "request": str(request.pk),
                "dataset": request.dataset.title,
                "file": file_id,
                "filename": names.get(_uuid(file_id), "(erased)") if file_id else "",
                "byte_range": str(entry.data.get("range", "")),
                "purpose": _purpose(request.purpose_codes),
                "purpose_codes": " ".join(
                    c.get("code", "") if isinstance(c, dict) else str(c)
                    for c in request.purpose_codes
                ),
            }
        )
    return rows


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def user_export(*, user: User) -> dict[str, object]:
    """All of the user's own records as JSON-ready data (GDPR Art. 20): account, files
    (metadata, never key material), listings, requests made, requests on their listings,
    notifications, their audit entries with their personal fields, erasures, and for a
    donor the accounting of disclosures."""
    key = bytes(user.crypt4gh_public_key) if user.crypt4gh_public_key else b""
    files = GenomicFile.objects.filter(owner=user).order_by("created_at")
    datasets = Dataset.objects.filter(donor=user).order_by("created_at")
    made = AccessRequest.objects.filter(researcher=user).select_related("dataset")
    received = AccessRequest.objects.filter(dataset__donor=user).select_related("researcher")
    own_entries = AuditEntry.objects.filter(actor_id=str(user.pk)).order_by("seq")
    return {
        "format": "genemarket-export-1",
        "exported_at": timezone.now().isoformat(),
        "account": {
            "id": str(user.pk),
            "username": user.username,
            "email": user.email,
            "role": user.role,
            "public_name": user.public_name,
            "institution": user.institution,
            "date_joined": user.date_joined.isoformat(),
            "crypt4gh_public_key": base64.b64encode(key).decode() if key else None,
            "crypt4gh_key_sha256": hashlib.sha256(key).hexdigest() if key else None,
            "wallet_address": wallet_address_of(user=user),
        },
        "files": [
            {
                "id": str(f.pk),
                "filename": f.filename,
                "state": f.state,
                "format": f.format,
                "size": f.plaintext_size,
                "plaintext_sha256": f.plaintext_sha256,
                "payload_sha256": f.payload_sha256,
                "metadata": f.metadata,
                "created_at": f.created_at.isoformat(),
            }
            for f in files
        ],
        "datasets": [
            {
                "id": str(d.pk),
                "title": d.title,
                "description": d.description,
                "state": d.state,
                "price": str(d.price),
                "access_days": d.access_days,
                "review": d.review,
                "duo_codes": d.duo_codes,
                "files": [str(pk) for pk in d.files.values_list("pk", flat=True)],
                "record_hash": d.record_hash,
                "created_at": d.created_at.isoformat(),
            }
            for d in datasets
        ],
        "access_requests_made": [_request_json(r) for r in made],
        "access_requests_on_my_datasets": [
            {**_request_json(r), "researcher": r.researcher.display_name} for r in received
        ],
        "notifications": [
            {
                "at": n.created_at.isoformat(),
                "message": n.message,
                "request": str(n.request_id) if n.request_id else None,
            }
            for n in Notification.objects.filter(user=user).order_by("created_at")
        ],
        "audit_entries": [
            {
                "seq": v.entry.seq,
                "at": v.entry.created_at.isoformat(),
                "action": v.entry.action,
                "object_type": v.entry.object_type,
                "object_id": v.entry.object_id,
                "data": v.fields,
                "hash": v.entry.hash,
            }
            for v in audit_views(own_entries)
        ],
        "erasures": [
            {
                "id": str(e.pk),
                "state": e.state,
                "files": e.file_ids,
                "requested_at": e.requested_at.isoformat(),
                "done_at": e.done_at.isoformat() if e.done_at else None,
                "summary": e.summary,
            }
            for e in Erasure.objects.filter(donor=user)
        ],
        "disclosures": disclosures_of_donor(donor=user),
    }


def _request_json(request: AccessRequest) -> dict[str, object]:
    return {
        "id": str(request.pk),
        "dataset": str(request.dataset_id),
        "state": request.state,
        "purpose_codes": request.purpose_codes,
        "statement": request.statement,
        "amount": str(request.amount),
        "created_at": request.created_at.isoformat(),
        "granted_at": request.granted_at.isoformat() if request.granted_at else None,
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
    }
