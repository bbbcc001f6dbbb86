from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    """The product: accounts and roles, datasets and consent, access requests and their
    review, the audit log, the web UI and the REST API. Uses `genomics` and `ledger`."""

    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        from marketplace import receivers  # noqa: F401 - connects the ledger signal handlers
