"""Health endpoint and the JSON/HTML error pages."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.exception_handler import json_error_response
from core.health import run_checks, worker_last_seen


class HealthApi(APIView):
    """200 when the database, broker, storage and chain all answer; 503 naming what fails.

    Public and unthrottled so load balancers can poll it; it reveals only check names.
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ok", "unavailable"])
        failing = serializers.ListField(child=serializers.CharField())
        worker_last_seen = serializers.DateTimeField(allow_null=True)
        checks = serializers.DictField(
            child=inline_serializer(
                "HealthCheck",
                fields={
                    "ok": serializers.BooleanField(),
                    "detail": serializers.CharField(),
                    "duration_ms": serializers.FloatField(),
                },
            )
        )

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer}, tags=["health"])
    def get(self, request: Request) -> Response:
        results = run_checks()
        failing = [result.name for result in results if not result.ok]
        body = {
            "status": "unavailable" if failing else "ok",
            "failing": failing,
            "worker_last_seen": worker_last_seen() if "database" not in failing else None,
            "checks": {
                result.name: {
                    "ok": result.ok,
                    "detail": result.detail,
                    "duration_ms": result.duration_ms,
                }
                for result in results
            },
        }
        response = Response(body, status=503 if failing else 200)
        response["Cache-Control"] = "no-store"
        return response


@csrf_exempt  # it changes nothing; an unknown POST path answers 404, not a CSRF page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Any unknown path under an API's prefix (/api/, /ga4gh/drs/), in that API's shape."""
    response = json_error_response(request, 404, "not_found", "No such resource.")
    assert response is not None, "routed only for the prefixes of JSON_ERROR_SHAPES"
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check, in the API's error shape under an API's path and in words on
    pages."""
    message = "The CSRF check failed: send the X-CSRFToken header."
    if (answer := json_error_response(request, 403, "csrf_failed", message)) is not None:
        return answer
    return render(
        request,
        "errors/403.html",
        {"message": "The form expired or came from elsewhere. Go back, reload and try again."},
        status=403,
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if (answer := json_error_response(request, 404, "not_found", "No such resource.")) is not None:
        return answer
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Generic on purpose: an error page never shows what failed inside (RELIABILITY 7).

    The database going away (a restart, a failover) is not our bug and passes: it answers
    503 in plain words, rendered without touching the database, and the next request
    reconnects (CONN_HEALTH_CHECKS)."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        message = "The database is not answering right now; try again in a moment."
        answer = json_error_response(request, 503, "service_unavailable", message)
        if answer is not None:
            return answer
        return render(request, "errors/unavailable.html", {"message": message}, status=503)
    message = "Something went wrong on our side; it was logged."
    if (answer := json_error_response(request, 500, "server_error", message)) is not None:
        return answer
    return render(request, "errors/500.html", status=500)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = "The request was malformed."
    if (answer := json_error_response(request, 400, "bad_request", message)) is not None:
        return answer
    return render(request, "errors/400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    answer = json_error_response(request, 403, "permission_denied", "Not allowed.")
    if answer is not None:
        return answer
    return render(request, "errors/403.html", status=403)
