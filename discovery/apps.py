from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    """Discovery before purchase: the variant index built at ingest and the Beacon v2 API
    over it. Uses `genomics` (an ingest tap) and `marketplace` (datasets, consent)."""

    name = "discovery"
    verbose_name = "Discovery (Beacon)"

    def ready(self) -> None:
        from discovery.variants.tap import variant_tap
        from genomics import ingest_taps

        ingest_taps.register(variant_tap)
