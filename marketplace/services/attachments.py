"""Attachments on access requests (issue 19 §3): a researcher adds PDFs (an ethics
approval letter, say) to their open request; only the committee that decides it opens
them.

Stored as the data is: the web encrypts the bytes as they come (Crypt4GH, a fresh data
key, the header to the archive key) and keeps no plaintext. Opening one needs the archive
key, which only the worker holds: the web makes a one-time X25519 key pair, the worker
re-encrypts the header for its public half (a `genomics.Grant`, made only for files that
are request attachments), the web decrypts with the secret half and deletes that header.
Every opening is audited (who read which attachment, when).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, NotFound, ServiceUnavailable, ValidationError
from core.queue import enqueue
from genomics import c4gh, payloads
from genomics.filenames import clean_filename
from genomics.models import ArchiveKey, GenomicFile, Grant, PayloadPart
from marketplace.models import AccessRequest, RequestAttachment, User
from marketplace.models.lifecycle import State
from marketplace.selectors.attachments import may_open_attachments
from marketplace.services.audit import audit_append

# A request can take attachments until it is decided.
ATTACHABLE = (State.SUBMITTED,)
MAX_ATTACHMENTS = 5


class AttachmentRefused(ValidationError):
    code = "attachment_refused"


def _check_pdf(filename: str, data: bytes) -> None:
    """PDF only: the `%PDF-` header at the start and an `%%EOF` marker in the last KiB
    (ISO 32000-1 §7.5.2, §7.5.5), whatever the name or the browser's content type say."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if len(data) > limit:
        raise AttachmentRefused(
            f"“{filename}” is {len(data) / 2**20:.1f} MiB; attachments may be at most "
            f"{limit / 2**20:g} MiB. Compress the PDF or attach the pages that matter."
        )
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        raise AttachmentRefused(
            f"“{filename}” is not a PDF (or it was cut short). Attach PDF files only: "
            "print or export the document as PDF, then attach it again."
        )


def attachment_add(
    *, researcher: User, request_id: UUID | str, filename: str, data: bytes
) -> RequestAttachment:
    """Encrypt and store a PDF on the researcher's own request while it waits for the
    committee. Raises NotFound, Conflict (decided, or MAX_ATTACHMENTS reached),
    AttachmentRefused (not a PDF, too large), ServiceUnavailable (no archive key)."""
    name = clean_filename(filename) or "attachment.pdf"
    _check_pdf(name, data)
    archive = ArchiveKey.objects.filter(active=True).first()
    if archive is None:
        raise ServiceUnavailable("The vault has no archive key yet: try again later.")
    data_key = c4gh.new_data_key()
    payload = bytes(c4gh.encrypt_segments(data_key, data))
    payload_key = secrets.token_hex(32)
    part = payloads.write_part(payload_key, 0, payload)
    try:
        with transaction.atomic():
            request = (
                AccessRequest.objects.select_for_update(of=("self",))
                .filter(pk=request_id, researcher=researcher)
                .first()
            )
            if request is None:
                raise NotFound("No such request.")
            if request.state not in ATTACHABLE:
                raise Conflict("Attachments can be added only while the request waits for review.")
            if request.attachments.count() >= MAX_ATTACHMENTS:
                raise Conflict(f"A request holds at most {MAX_ATTACHMENTS} attachments.")
            stored = GenomicFile.objects.create(
                owner=researcher,
                filename=name,
                state=GenomicFile.State.READY,
                source=GenomicFile.Source.PLAINTEXT,
                upload_length=len(data),
                upload_offset=len(data),
                progress=1.0,
                header=c4gh.build_header(data_key, bytes(archive.public_key)),
                archive_key=archive,
                payload_key=payload_key,
                payload_size=len(payload),
                payload_sha256=hashlib.sha256(payload).hexdigest(),
                plaintext_size=len(data),
                plaintext_sha256=hashlib.sha256(data).hexdigest(),
                format="pdf",
                ready_at=timezone.now(),
            )
            PayloadPart.objects.create(
                file=stored, payload_offset=0, size=len(payload), storage_name=part
            )
            attachment = RequestAttachment.objects.create(
                request=request, file=stored, uploaded_by=researcher
            )
            audit_append(
                action="request.attach",
                actor=researcher,
                object_type="access_request",
                object_id=request.pk,
                data={
                    "attachment": str(attachment.pk),
                    "sha256": stored.plaintext_sha256,
                    "size": len(data),
                },
            )
    except BaseException:
        payloads.delete_payload(payload_key)  # nothing recorded: no stray ciphertext either
        raise
    return attachment


def attachment_open(*, viewer: User, attachment_id: UUID | str) -> tuple[str, bytes]:
    """(filename, PDF bytes) for a member of the committee that decides the request.
    Raises NotFound (for anyone else too: the attachment's existence is not revealed) and
    ServiceUnavailable when the worker does not answer within ATTACHMENT_OPEN_WAIT_S."""
    attachment = (
        RequestAttachment.objects.select_related("request__dataset", "file")
        .filter(pk=attachment_id)
        .first()
    )
    if attachment is None or not may_open_attachments(viewer, attachment.request):
        raise NotFound("No such attachment.")
    secret, public = c4gh.generate_keypair()
    from marketplace import tasks  # the task module imports the services

    enqueue(tasks.attachment_header, str(attachment.file_id), public.hex())
    deadline = time.monotonic() + settings.ATTACHMENT_OPEN_WAIT_S
    grant = None
    while grant is None:
        grant = Grant.objects.filter(
            file_id=attachment.file_id, recipient_public_key=public
        ).first()
        if grant is None:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    "The vault did not answer in time: try to open the attachment again."
                )
            time.sleep(0.05)
    try:
        header = c4gh.decrypt_header(bytes(grant.header), secret)
    finally:
        Grant.objects.filter(pk=grant.pk).delete()  # one opening, one header
    stored = attachment.file
    parts = list(stored.parts.values_list("payload_offset", "size", "storage_name"))
    data = b"".join(
        c4gh.decrypt_stream(
            header.data_keys,
            payloads.read_range(parts, 0, stored.payload_size),
            expected_size=stored.plaintext_size,
        )
    )
    audit_append(
        action="request.attachment_open",
        actor=viewer,
        object_type="access_request",
        object_id=attachment.request_id,
        data={"attachment": str(attachment.pk)},
    )
    return stored.filename, data


def attachment_header_for(*, file_id: UUID | str, public_key_hex: str) -> Grant | None:
    """Worker: a header of a request attachment for a one-time key. Only files that are
    attachments of the request's own researcher, and listed in no dataset, qualify: the
    web cannot use this to obtain a header of a donor's data file. Returns None otherwise."""
    attachment = (
        RequestAttachment.objects.select_related("request", "file").filter(file__pk=file_id).first()
    )
    if attachment is None:
        return None
    stored = attachment.file
    if stored.owner_id != attachment.request.researcher_id or stored.datasets.exists():
        return None
    from genomics.services.grants import grant_create

    return grant_create(file=stored, recipient_public_key=bytes.fromhex(public_key_hex))
