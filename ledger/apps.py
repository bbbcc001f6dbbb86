from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """Everything on chain: contracts, the chain client, wallet linking, the event indexer
    and the transaction sender. Knows requests only by id; signals outwards."""

    name = "ledger"
    verbose_name = "Ledger"
