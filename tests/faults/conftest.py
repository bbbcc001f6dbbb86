"""Fault tests use the vault's fixtures."""

from tests.genomics.conftest import archive_key, archive_secret, donor_client, worker  # noqa: F401
