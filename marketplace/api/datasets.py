"""Datasets API (API.md "Datasets")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import paginated
from core.errors import NotFound
from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.consent import term
from marketplace.consent.codes import parse_purpose_filter
from marketplace.models import Dataset, Role, User
from marketplace.selectors.datasets import DatasetFilters, dataset_get, dataset_list
from marketplace.selectors.earnings import dataset_earnings
from marketplace.services.datasets import dataset_create, dataset_withdraw


class DatasetOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    description = serializers.CharField()
    donor = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()
    access_days = serializers.IntegerField()
    review = serializers.CharField()
    dac = serializers.UUIDField(source="dac_id")
    state = serializers.CharField()
    duo_codes = serializers.SerializerMethodField()
    metadata = serializers.JSONField()
    provenance = serializers.SerializerMethodField()
    tiers = serializers.SerializerMethodField()
    # False: sold by region only; a request names one of `tiers`.
    whole_for_sale = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_tiers(self, obj: Dataset) -> list[dict[str, Any]]:
        """The region tiers for sale (README "Selling regions"): id, name, price, regions."""
        return [
            {
                "id": str(t.pk),
                "name": t.name,
                "price": str(int(t.price)),
                "genes": t.genes,
                "regions": len(t.regions),
                "regions_sha256": t.regions_sha256,
            }
            for t in obj.tiers.all()
            if t.state == "ready"
        ]

    def get_donor(self, obj: Dataset) -> str:
        return obj.donor.display_name

    def get_price(self, obj: Dataset) -> str:
        return str(int(obj.price))

    def get_duo_codes(self, obj: Dataset) -> list[dict[str, str]]:
        out = []
        for entry in obj.duo_codes:
            found = term(entry["code"])
            out.append(
                {
                    "code": entry["code"],
                    "value": entry["value"],
                    "shorthand": found.shorthand if found else "",
                    "label": found.label if found else "",
                }
            )
        return out

    def get_provenance(self, obj: Dataset) -> dict[str, Any]:
        return {
            "record_hash": obj.record_hash,
            "anchor_tx": obj.anchor_tx or None,
            "anchored_at": obj.anchored_at,
        }


def _viewer(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


class DatasetsApi(APIView):
    """GET: the catalogue (anyone). POST: list a dataset (donors)."""

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=200)
        format = serializers.CharField(required=False, allow_blank=True, max_length=32)
        duo = serializers.ListField(
            child=serializers.CharField(max_length=200),
            required=False,
            max_length=30,
            help_text=(
                "A research purpose: datasets whose consent it would fit (the consent "
                'matcher\'s "fits" or "needs review"). DUO codes, repeated or comma-'
                "separated; a value after '=' (DUO:0000007=MONDO:0005148, "
                "DUO:0000022=EU). E.g. duo=DUO:0000006 includes GRU datasets."
            ),
        )
        max_price = serializers.RegexField(r"^\d{1,78}$", required=False, allow_blank=True)
        reference = serializers.CharField(required=False, allow_blank=True, max_length=32)

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=10_000, allow_blank=True, default="")
        files = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100)
        duo_codes = serializers.ListField(
            child=serializers.JSONField(), min_length=1, max_length=30
        )
        price = serializers.RegexField(
            r"^\d{1,78}$",
            error_messages={"invalid": "A whole number of token base units, as a string."},
        )
        access_days = serializers.IntegerField(min_value=1, max_value=3650)
        review = serializers.ChoiceField(choices=Dataset.Review.values)
        # The committee that reviews its requests (issue 19 §1); default: the platform's.
        dac = serializers.UUIDField(required=False, allow_null=True, default=None)

    def get_permissions(self) -> list[BasePermission]:
        return [IsDonor()] if self.request.method == "POST" else [AllowAny()]

    @extend_schema(
        operation_id="datasets_list",
        parameters=[FilterSerializer],
        responses={200: paginated(DatasetOutputSerializer, "PaginatedDatasets")},
        tags=["datasets"],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        filters = DatasetFilters(
            q=data.get("q", ""),
            format=data.get("format", ""),
            duo=parse_purpose_filter(data.get("duo", []), field="duo"),
            max_price=Decimal(data["max_price"]) if data.get("max_price") else None,
            reference=data.get("reference", ""),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(dataset_list(filters=filters), request, view=self)
        return paginator.get_paginated_response(DatasetOutputSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: DatasetOutputSerializer}, tags=["datasets"]
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_create(donor=authenticated_user(request), **serializer.validated_data)
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: DatasetOutputSerializer}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        dataset = dataset_get(dataset_id=dataset_id, viewer=_viewer(request))
        return Response(DatasetOutputSerializer(dataset).data)


class DatasetWithdrawApi(APIView):
    permission_classes = [IsDonor]

    @extend_schema(request=None, responses={200: DatasetOutputSerializer}, tags=["datasets"])
    def post(self, request: Request, dataset_id: str) -> Response:
        user = authenticated_user(request)
        dataset = dataset_get(dataset_id=dataset_id, viewer=user)
        return Response(DatasetOutputSerializer(dataset_withdraw(dataset=dataset, actor=user)).data)


class EarningsSerializer(serializers.Serializer):
    paid = serializers.CharField()
    released = serializers.CharField()
    fee = serializers.CharField()
    refunded = serializers.CharField()
    in_escrow = serializers.CharField()


class DatasetEarningsApi(APIView):
    """A dataset's earnings in token base units: for its donor, reviewers and admins."""

    @extend_schema(responses={200: EarningsSerializer}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        user = authenticated_user(request)
        dataset = dataset_get(dataset_id=dataset_id, viewer=user)
        if user.pk != dataset.donor_id and user.role not in (Role.REVIEWER, Role.ADMIN):
            raise NotFound("No such dataset.")
        return Response(dataset_earnings(dataset=dataset).as_dict())
