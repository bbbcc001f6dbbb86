"""Create (or refresh) the PostgreSQL role the web process connects as.

The web tier shares the database with the worker, so it is assumed that it can be made to
write any row it can write (DESIGN "What the chain must guarantee"). This role can read
everything and write what the web's own services write, but not the tables from which the
worker signs or discloses: the operator's transactions and nonces, the deployment records,
the indexer's events and checkpoints, grant headers (it may delete a grant, which a
revocation does, never make or change one), and Passport visas and their public keys.

    python manage.py create_web_role --role genemarket_web [--password-file FILE]

Run it as the database owner after every `migrate` (new tables need their grants), then
give the web `DATABASE_URL=postgres://genemarket_web:…@host/db`; the worker and beat keep
the owner's URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import sql

# (model label, privileges the web keeps on it besides SELECT)
WORKER_TABLES: dict[str, tuple[str, ...]] = {
    "ledger.OperatorTransaction": (),
    "ledger.OperatorNonce": (),
    "ledger.Deployment": (),
    "ledger.ChainEvent": (),
    "ledger.IndexedBlock": (),
    "ledger.IndexerCheckpoint": (),
    "genomics.Grant": ("DELETE",),
    # Encrypted indexes the worker's ticketer decrypts with the archive key (README "htsget");
    # DELETE for a file's deletion (the foreign key cascades).
    "genomics.FileIndex": ("DELETE",),
    # Which public key uploads are encrypted to: written by the owner's create_archive_key
    # and the worker's rotation only.
    "genomics.ArchiveKey": (),
    # GA4GH Passport visas and their public keys are the worker's signatures: the web may
    # not publish a key of its own in our JWKS nor make a visa row (README "Passports").
    "marketplace.Visa": ("DELETE",),
    "marketplace.VisaKey": (),
    # The audit log's personal side rows (issue 19 §5): the web writes them with its
    # entries but may neither change nor delete them (only the worker's erasure does).
    "marketplace.AuditPersonal": ("INSERT",),
    # Storage objects an erasure deletes: an order to delete, so the worker's alone.
    "marketplace.ErasureObject": (),
}


def worker_tables() -> dict[str, tuple[str, ...]]:
    """Table name -> the write privileges the web keeps on it."""
    return {apps.get_model(label)._meta.db_table: kept for label, kept in WORKER_TABLES.items()}


class Command(BaseCommand):
    help = "Create or refresh the web process's PostgreSQL role (no writes to signing tables)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default="genemarket_web")
        parser.add_argument("--password-file", default="", help="file holding its password")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("database roles need PostgreSQL (DATABASE_URL=postgres://…)")
        role = sql.Identifier(options["role"])
        password = (
            Path(options["password_file"]).read_text().strip() if options["password_file"] else ""
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [options["role"]])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            if password:
                cursor.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password))
                )
            database = sql.Identifier(connection.settings_dict["NAME"])
            statements = [
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role),
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
                ).format(role),
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role),
            ]
            for table, kept in worker_tables().items():
                statements.append(
                    sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                        sql.Identifier(table), role
                    )
                )
                if kept:
                    statements.append(
                        sql.SQL("GRANT {} ON {} TO {}").format(
                            sql.SQL(", ").join(sql.SQL(p) for p in kept),
                            sql.Identifier(table),
                            role,
                        )
                    )
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(
            f"role {options['role']}: reads everything; cannot write "
            + ", ".join(sorted(worker_tables()))
        )
