"""Domain errors raised by services in every app.

Services raise these, never HTTP responses; the API exception handler maps each to its
status and the error shape of API.md, and the web views show their message in place.
`genomics` and `ledger` may raise them too, which is why they live outside `marketplace`.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refused business operation, with a stable machine-readable code."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationError(DomainError):
    status = 400
    code = "validation_error"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The operation does not fit the object's current state (e.g. approving twice)."""

    status = 409
    code = "conflict"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
