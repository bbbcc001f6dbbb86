"""Recompute the audit log's hash chain and print the first broken entry, if any.

Exit status 1 when the chain is broken, so monitoring can run it. Checking the anchored
Merkle roots against the chain joins this command with the anchoring task.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from marketplace.models import AuditEntry
from marketplace.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; print the first broken entry."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify()
        if result.ok:
            self.stdout.write(f"Audit log intact: {result.checked} entries verified.")
            return
        entry = AuditEntry.objects.filter(seq=result.first_broken or 0).first()
        detail = f" ({entry})" if entry else ""
        raise CommandError(
            f"Audit log broken at entry #{result.first_broken}{detail}: {result.reason}. "
            f"{result.checked} entries before it verified."
        )
