"""Security tests run against the vault's archive key and a deployed market on anvil, so
no operation answers 503 for want of a service."""

from tests.genomics.conftest import archive_key  # noqa: F401
from tests.ledger.conftest import _deployed, chain_db, env, session_anvil, session_w3  # noqa: F401
