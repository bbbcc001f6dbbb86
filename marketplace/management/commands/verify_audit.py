"""Recompute the audit log's hash chain and print the first broken entry, if any.

Then every anchored Merkle root is recomputed from the entries and looked up on the chain.
Exit status 1 when anything fails, so monitoring can run it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from marketplace.models import AuditEntry
from marketplace.services.anchoring import anchors_verify
from marketplace.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; print the first broken entry."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify()
        if result.ok:
            self.stdout.write(f"Audit log intact: {result.checked} entries verified.")
            anchors = anchors_verify()
            if not anchors.ok:
                raise CommandError(f"Anchoring check failed: {anchors.problem}.")
            self.stdout.write(f"{anchors.checked} anchored roots match the chain.")
            return
        entry = AuditEntry.objects.filter(seq=result.first_broken or 0).first()
        detail = f" ({entry})" if entry else ""
        raise CommandError(
            f"Audit log broken at entry #{result.first_broken}{detail}: {result.reason}. "
            f"{result.checked} entries before it verified."
        )
