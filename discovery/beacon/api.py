"""Beacon v2 endpoints under /api/beacon/v2/ (framework v2.1.1): informational ones,
`datasets`, and `g_variants` (GET with query parameters, POST with a request body).
Anonymous callers are served (their budget is their network's); a token or session
makes the caller's own account budget apply too. Errors use the Beacon error response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import APIException, ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.exception_handler import api_exception_handler
from disclosure.callers import caller_for_request
from discovery.beacon import responses
from discovery.beacon.query import PARAMETERS, BeaconQueryError
from discovery.beacon.search import variant_search
from discovery.beacon.selectors import beacon_datasets, filtering_terms

GRANULARITIES = ("boolean", "count", "record")


def beacon_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BeaconQueryError):
        return Response(responses.error_document(status=400, message=str(exc)), status=400)
    response = api_exception_handler(exc, context)
    if response is not None:
        error = response.data.get("error", {}) if isinstance(response.data, dict) else {}
        response.data = responses.error_document(
            status=response.status_code, message=str(error.get("message", ""))
        )
    return response


def _root(request: HttpRequest) -> str:
    return request.build_absolute_uri("/api/beacon/v2/")


class _BeaconApi(APIView):
    permission_classes = [AllowAny]

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return beacon_exception_handler


def _filters_of(raw: object) -> list[str]:
    """Filter ids from GET text ("A,B") or a POST list of ids or {"id": ...} objects."""
    items = raw if isinstance(raw, list) else [raw] if raw else []
    ids: list[str] = []
    for item in items:
        value = item.get("id", "") if isinstance(item, dict) else item
        ids += [p.strip() for p in str(value).split(",") if p.strip()]
    return ids[:50]


def _request_of(request: Request) -> tuple[dict[str, object], list[str], str]:
    """(requestParameters, filters, requestedGranularity) of a GET or POST request."""
    if request.method == "POST":
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise ParseError("The request body must be a Beacon request (a JSON object).")
        query = body.get("query") or {}
        if not isinstance(query, dict):
            raise BeaconQueryError("`query` must be an object.")
        parameters = query.get("requestParameters") or {}
        if not isinstance(parameters, dict):
            raise BeaconQueryError("`query.requestParameters` must be an object.")
        granularity = str(query.get("requestedGranularity") or "boolean")
        filters = _filters_of(query.get("filters"))
    else:
        params = request.query_params
        parameters = {name: ",".join(params.getlist(name)) for name in PARAMETERS if name in params}
        granularity = params.get("requestedGranularity", "boolean")
        filters = _filters_of(",".join(params.getlist("filters")))
    if granularity not in GRANULARITIES:
        raise BeaconQueryError("`requestedGranularity` is boolean, count or record.")
    return parameters, filters, granularity


@extend_schema(exclude=True)  # documented by the Beacon v2 OpenAPI
class BeaconInfoApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.info_document(_root(request)))


@extend_schema(exclude=True)
class BeaconServiceInfoApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.service_info_document(_root(request)))


@extend_schema(exclude=True)
class BeaconConfigurationApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.configuration_document())


@extend_schema(exclude=True)
class BeaconMapApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.map_document(_root(request)))


@extend_schema(exclude=True)
class BeaconEntryTypesApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.entry_types_document())


@extend_schema(exclude=True)
class BeaconFilteringTermsApi(_BeaconApi):
    def get(self, request: Request) -> Response:
        return Response(responses.filtering_terms_document(filtering_terms()))


@extend_schema(exclude=True)
class BeaconDatasetsApi(_BeaconApi):
    """The Beacon's datasets (listed, with a variant index), filtered by filtering terms."""

    def get(self, request: Request) -> Response:
        _, filters, _ = _request_of(request)
        datasets = beacon_datasets(filters=filters)
        return Response(
            responses.datasets_document(
                datasets=datasets,
                root=request.build_absolute_uri("/"),
                parameters={},
                filters=filters,
            )
        )

    post = get


@extend_schema(exclude=True)
class BeaconGenomicVariantsApi(_BeaconApi):
    """g_variants: sequence, range and bracket queries; one result set per dataset that
    may say it holds a matching variant (README "Beacon v2")."""

    def get(self, request: Request) -> Response:
        parameters, filters, granularity = _request_of(request)
        try:
            caller = caller_for_request(request)
        except ValueError as exc:
            raise APIException("The client address is not an IP address.") from exc
        search = variant_search(caller=caller, parameters=parameters, filters=filters)
        document = responses.g_variants_document(
            answers=search.answers,
            requested_granularity=granularity,
            parameters=dict(search.query.echo),
            filters=filters,
        )
        spent = document["info"]["budgetSpentOn"]
        if search.answers and len(spent) == len(search.answers):
            return Response(
                responses.error_document(
                    status=429,
                    message="Your privacy budget on every matching dataset is spent for now "
                    "(README 'Disclosure control'). "
                    + min((a.refusal for a in search.answers), key=_renewal),
                ),
                status=429,
            )
        return Response(document)

    post = get


def _renewal(refusal: str) -> str:
    """Sort key of refusal messages: the one naming the earliest renewal first (each ends
    "... spent until <ISO 8601 time>." or "... spent until later.")."""
    return refusal.rsplit(" until ", 1)[-1]
