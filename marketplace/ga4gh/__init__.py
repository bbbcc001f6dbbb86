"""GA4GH APIs that need the marketplace's grants (DRS 1.4)."""
