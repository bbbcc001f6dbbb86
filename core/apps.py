from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces every app uses: domain errors, the API error shape, request and
    task ids in logs, health checks and the process supervisor behind `make run`."""

    name = "core"
    verbose_name = "Core"
