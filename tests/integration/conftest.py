"""The whole flow needs the vault's and the ledger's fixtures together."""

from tests.genomics.conftest import archive_key, worker  # noqa: F401
from tests.integration.test_lifecycle import (
    flow,  # noqa: F401 - shared by the settlement tests
)
from tests.integration.test_visas import visa_key  # noqa: F401 - shared by the erasure tests
from tests.ledger.conftest import (  # noqa: F401
    _deployed,
    chain_db,
    env,
    operator_key,
    session_anvil,
    session_w3,
)
