"""The audit log: hash-chained, append-only in the database, and checked end to end."""

from __future__ import annotations

import io
import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from marketplace.models import AuditEntry, Role
from marketplace.services.audit import audit_append, audit_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(make_user) -> list[AuditEntry]:
    user = make_user(Role.REVIEWER)
    return [
        audit_append(
            action="request.approve",
            actor=user,
            object_type="request",
            object_id=f"r{i}",
            data={"reason": f"fits {i}", "tx": f"fits\r\nFAKE LINE {i}"},
        )
        for i in range(5)
    ]


def test_entries_are_chained(entries) -> None:
    assert entries[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash and after.seq == before.seq + 1
    result = audit_verify()
    assert result.ok and result.checked == 5


def test_control_characters_are_escaped_in_what_is_hashed(entries) -> None:
    from marketplace.services.audit import canonical

    assert b"\\r\\nFAKE LINE" in canonical(entries[0])


def test_the_model_refuses_updates_and_deletes(entries) -> None:
    entry = entries[0]
    entry.action = "something.else"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


def test_the_database_refuses_updates_and_deletes(entries) -> None:
    for statement in (
        "UPDATE marketplace_auditentry SET action = 'x' WHERE seq = 1",
        "DELETE FROM marketplace_auditentry WHERE seq = 1",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(seq=2).update(action="x")
    assert AuditEntry.objects.get(seq=1).action == "request.approve"


def tamper(sql: str) -> None:
    """What only the database owner could do: switch the guard off, change a row."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE marketplace_auditentry DISABLE TRIGGER USER")
            cursor.execute(sql)
            cursor.execute("ALTER TABLE marketplace_auditentry ENABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_log_no_update")
            cursor.execute("DROP TRIGGER audit_log_no_delete")
            cursor.execute(sql)


def test_verify_audit_finds_an_entry_altered_by_raw_sql(entries) -> None:
    tamper('UPDATE marketplace_auditentry SET data = \'{"reason": "rewritten"}\' WHERE seq = 3')
    with pytest.raises(CommandError, match=r"broken at entry #3 .*content does not match"):
        call_command("verify_audit", stdout=io.StringIO())


def test_verify_audit_finds_a_deleted_entry(entries) -> None:
    tamper("DELETE FROM marketplace_auditentry WHERE seq = 4")
    result = audit_verify()
    assert not result.ok and result.first_broken == 4 and "missing" in result.reason


def test_verify_audit_finds_a_cut_tail(entries) -> None:
    tamper("DELETE FROM marketplace_auditentry WHERE seq = 5")
    result = audit_verify()
    assert not result.ok and result.first_broken == 5


def test_verify_audit_reports_an_intact_log(entries) -> None:
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "5 entries verified" in out.getvalue()


def test_an_entry_rolls_back_with_its_transaction(make_user) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_append(action="x")
        raise RuntimeError
    assert not AuditEntry.objects.exists()
    audit_append(action="y")
    assert audit_verify().ok
