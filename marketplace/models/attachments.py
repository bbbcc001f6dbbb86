"""Attachments on an access request (issue 19 §3): e.g. an ethics approval letter, PDF
only. The bytes are a vault object like any data file (`genomics.GenomicFile`: Crypt4GH,
header to the archive key, moved by key rotations, destroyed by erasure); this row says
which request it belongs to."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RequestAttachment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(
        "marketplace.AccessRequest", on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.OneToOneField(
        "genomics.GenomicFile", on_delete=models.CASCADE, related_name="request_attachment"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"attachment {self.file_id} of request {self.request_id}"
