from django.apps import AppConfig


class GenomicsConfig(AppConfig):
    """Everything between a donor's file and a researcher's download: uploads, ingest,
    the Crypt4GH engine, storage, grants. Knows nothing of datasets or payments."""

    name = "genomics"
    verbose_name = "Genomics vault"
