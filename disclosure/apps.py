from django.apps import AppConfig


class DisclosureConfig(AppConfig):
    """What a discovery answer may reveal: every per-dataset Beacon answer goes through
    `disclosure.services.release_answer`. Uses `marketplace` (datasets, users)."""

    name = "disclosure"
    verbose_name = "Disclosure control"
    default_auto_field = "django.db.models.BigAutoField"
