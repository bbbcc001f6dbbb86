"""Donors' rights over their data (API.md "Donors' rights"; issue 19 §5): the accounting
of disclosures, the export of one's own records (GDPR Art. 20) and erasure (Art. 17)."""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.selectors.rights import DISCLOSURE_FIELDS, disclosures_of_donor, user_export
from marketplace.services.erasure import erasure_preview, erasure_request


def disclosures_csv(rows: list[dict[str, str]]) -> bytes:
    """One line per disclosure, columns DISCLOSURE_FIELDS (RFC 4180)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DISCLOSURE_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # A leading =, +, - or @ makes spreadsheets run the cell as a formula (CWE-1236).
        writer.writerow({k: _cell(str(v)) for k, v in row.items()})
    return out.getvalue().encode()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class MeDisclosuresApi(APIView):
    """Every disclosure of the donor's data: who (public name, institution), when, which
    file, which byte range, under which purpose. JSON, or CSV with `?format=csv`."""

    permission_classes = [IsDonor]

    class OutputSerializer(serializers.Serializer):
        disclosures = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            (200, "application/json"): OutputSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
        tags=["rights"],
    )
    def get(self, request: Request) -> HttpResponseBase:
        rows = disclosures_of_donor(donor=authenticated_user(request))
        if request.query_params.get("format") == "csv":
            response = HttpResponse(disclosures_csv(rows), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="disclosures.csv"'
            return response
        return Response({"disclosures": rows})


class MeExportApi(APIView):
    """All of the caller's own records as JSON (GDPR Art. 20)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["rights"])
    def get(self, request: Request) -> Response:
        response = Response(user_export(user=authenticated_user(request)))
        response["Content-Disposition"] = 'attachment; filename="genemarket-export.json"'
        return response


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string", "format": "uuid"}, "minItems": 1},
            {"type": "string", "enum": ["all"]},
        ]
    }
)
class _FilesField(serializers.Field):
    """A list of file ids, or the string "all"."""

    def to_internal_value(self, data: object) -> list[str] | str:
        if data == "all":
            return "all"
        if isinstance(data, list) and data and all(isinstance(x, str) for x in data):
            return list(data)
        raise serializers.ValidationError('A list of file ids, or "all".')

    def to_representation(self, value: object) -> object:
        return value


class MeEraseApi(APIView):
    """GET `?files=all` or `?files=<id>,<id>`: what an erasure would do, counted.
    POST `{files, confirm: true}`: withdraw the listings and erase (done by the worker);
    202 with the erasure's id and what will happen."""

    permission_classes = [IsDonor]

    class InputSerializer(serializers.Serializer):
        files = _FilesField()
        confirm = serializers.BooleanField(default=False)

    class PreviewSerializer(serializers.Serializer):
        files = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
        datasets_withdrawn = serializers.ListField(
            child=serializers.DictField(child=serializers.CharField())
        )
        requests_closed = serializers.IntegerField()
        requests_refunded = serializers.IntegerField()
        requests_in_delivery = serializers.IntegerField()
        grants_revoked = serializers.IntegerField()
        delivered_not_refunded = serializers.IntegerField()
        researchers_with_copies = serializers.IntegerField()
        headers_destroyed = serializers.IntegerField()
        storage_objects = serializers.IntegerField()
        cannot_undo = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        state = serializers.CharField()
        will = serializers.DictField()

    @extend_schema(
        parameters=[OpenApiParameter("files", str, description='"all" or ids, comma-separated')],
        responses={200: PreviewSerializer},
        tags=["rights"],
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("files", "all")
        files: list[str] | str = "all" if raw == "all" else [f for f in raw.split(",") if f]
        preview = erasure_preview(donor=authenticated_user(request), files=files)
        return Response(preview.as_json())

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer}, tags=["rights"])
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        donor = authenticated_user(request)
        preview = erasure_preview(donor=donor, files=body.validated_data["files"])
        erasure = erasure_request(
            donor=donor,
            files=body.validated_data["files"],
            confirm=body.validated_data["confirm"],
        )
        return Response(
            {"id": str(erasure.pk), "state": erasure.state, "will": preview.as_json()},
            status=status.HTTP_202_ACCEPTED,
        )
