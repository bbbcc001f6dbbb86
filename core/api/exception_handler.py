"""One exception handler renders every API error in the shape of API.md:

    {"error": {"code": "...", "message": "...", "fields": {"field": ["..."]}}}

DRF's own handler runs first so its headers (WWW-Authenticate, Retry-After, Allow) stay;
only the body is reshaped. Domain errors from services map to their own status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import cast

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

# DRF's generic "invalid" code says less than the name of the failure class.
_CODE_RENAMES = {"invalid": "validation_error", "error": "error"}

_DEFAULT_MESSAGES = {
    "validation_error": "Some fields are not valid.",
}


class _DomainAPIException(exceptions.APIException):
    """Carries a DomainError through DRF's handler so headers are set the same way."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(detail=error.message, code=error.code)
        self.status_code = error.status
        self.domain_error = error


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict:
    """The error shape of API.md; also used by views outside DRF (404 pages, health)."""
    return {"error": {"code": code, "message": message, "fields": dict(fields or {})}}


def _flatten(detail: object, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested ValidationError detail into {"a.b.0": ["message"]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, Sequence) and not isinstance(detail, str):
        if all(not isinstance(item, Mapping | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        exc = _DomainAPIException(exc)
    elif isinstance(exc, Http404):  # e.g. a page number past the end
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers, without details
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", None)
        message = " ".join(general) if general else _DEFAULT_MESSAGES["validation_error"]
        response.data = error_body("validation_error", message, fields)
        return response
    if isinstance(exc, _DomainAPIException):
        error = exc.domain_error
        response.data = error_body(error.code, error.message, error.fields)
        return response
    api_exc = cast(exceptions.APIException, exc)
    code = str(getattr(api_exc, "default_code", "error"))
    response.data = error_body(_CODE_RENAMES.get(code, code), str(api_exc.detail))
    return response


def api_error_shape(status: int, code: str, message: str) -> dict:
    """API.md's error body, as a JSON_ERROR_SHAPES builder."""
    return error_body(code, message)


def json_error_shape(path: str) -> Callable[[int, str, str], dict] | None:
    """The error body builder, `(status, code, message) -> body`, of the API a path belongs
    to (the longest matching prefix of settings.JSON_ERROR_SHAPES: the REST API's shape
    under /api/, DRS's under /ga4gh/drs/); None for web pages, which answer in HTML."""
    prefixes = [p for p in settings.JSON_ERROR_SHAPES if path.startswith(p)]
    if not prefixes:
        return None
    return import_string(settings.JSON_ERROR_SHAPES[max(prefixes, key=len)])


def json_error_response(
    request: HttpRequest, status: int, code: str, message: str
) -> JsonResponse | None:
    """A JSON error, in its API's shape, for a request that never reached a DRF view (unknown
    URL, crash, CSRF, lockout); None when the path is a web page's."""
    shape = json_error_shape(request.path)
    return None if shape is None else JsonResponse(shape(status, code, message), status=status)
