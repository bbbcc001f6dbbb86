"""The database refuses to change or delete audit entries (RELIABILITY.md item 8).

PostgreSQL and SQLite: triggers raise on UPDATE and DELETE of any row. (TRUNCATE is left
to database privileges: production grants the app's role no TRUNCATE, while the test
runner needs it to reset tables between tests.) Only someone who can drop the triggers (the database owner) can
rewrite the log, and `verify_audit` then shows where.
"""

from django.db import migrations

TABLE = "marketplace_auditentry"

POSTGRES_UP = f"""
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""
POSTGRES_DOWN = f"""
DROP TRIGGER IF EXISTS audit_log_no_update ON {TABLE};
DROP FUNCTION IF EXISTS audit_log_append_only();
"""
SQLITE_UP = [
    f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (UPDATE refused)'); END;",
    f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (DELETE refused)'); END;",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_log_no_update;",
               "DROP TRIGGER IF EXISTS audit_log_no_delete;"]


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": [POSTGRES_UP], "sqlite": SQLITE_UP}.get(vendor)
    if statements is None:
        raise RuntimeError(f"no append-only guard for the {vendor} database")
    for statement in statements:
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": [POSTGRES_DOWN], "sqlite": SQLITE_DOWN}.get(vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0003_audit_log")]
    operations = [migrations.RunPython(install, remove)]
