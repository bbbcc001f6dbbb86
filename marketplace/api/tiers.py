"""Region tiers API (README "Selling regions"): a donor offers a dataset limited to
regions; anyone reads the tiers of a listed dataset."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ValidationError
from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.models import Dataset, DatasetTier, User
from marketplace.selectors.datasets import dataset_get
from marketplace.selectors.tiers import tier_list
from marketplace.services.tiers import dataset_set_whole_for_sale, tier_create


class TierOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    dataset = serializers.UUIDField(source="dataset_id")
    name = serializers.CharField()
    price = serializers.SerializerMethodField()
    state = serializers.CharField()
    error = serializers.CharField()
    # "bed" or "genes": how the donor gave the regions.
    regions_from = serializers.CharField(source="source")
    genes = serializers.ListField(child=serializers.CharField())
    gene_table = serializers.CharField()
    reference_build = serializers.CharField()
    regions = serializers.ListField(child=serializers.ListField())
    regions_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_price(self, obj: DatasetTier) -> str:
        return str(int(obj.price))


def _viewer(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


class DatasetTiersApi(APIView):
    """GET: the tiers of a dataset (anyone: the ones for sale; its donor: all).
    POST (the donor): offer the dataset limited to regions, as `bed` (BED text, or a file
    upload in a multipart form) or `genes` (symbols, or one comma-separated string)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        price = serializers.CharField(max_length=80)
        bed = serializers.CharField(required=False, allow_blank=True, max_length=2_100_000)
        bed_file = serializers.FileField(required=False)
        genes = serializers.ListField(
            child=serializers.CharField(max_length=40), required=False, max_length=2000
        )
        # false: from now on the dataset is sold by region only (its tiers).
        whole_for_sale = serializers.BooleanField(required=False, allow_null=True, default=None)

    def get_permissions(self) -> list[BasePermission]:
        return [IsDonor()] if self.request.method == "POST" else [AllowAny()]

    def _dataset(self, request: Request, dataset_id: str) -> Dataset:
        return dataset_get(dataset_id=dataset_id, viewer=_viewer(request))

    @extend_schema(responses={200: TierOutputSerializer(many=True)}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        dataset = self._dataset(request, dataset_id)
        tiers = tier_list(dataset=dataset, viewer=_viewer(request))
        return Response(TierOutputSerializer(tiers, many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: TierOutputSerializer}, tags=["datasets"]
    )
    def post(self, request: Request, dataset_id: str) -> Response:
        dataset = self._dataset(request, dataset_id)
        data: dict[str, Any] = dict(request.data.items()) if hasattr(request.data, "items") else {}
        if hasattr(request.data, "getlist") and "genes" in request.data:
            data["genes"] = request.data.getlist("genes")
        if isinstance(data.get("genes"), str):
            data["genes"] = [g for g in str(data["genes"]).replace(",", " ").split() if g]
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        valid = serializer.validated_data
        bed = valid.get("bed", "")
        if valid.get("bed_file") is not None:
            try:
                bed = valid["bed_file"].read(2_100_000).decode()
            except UnicodeDecodeError:
                raise ValidationError(
                    "The BED file is not text.", fields={"bed_file": ["Not UTF-8 text."]}
                ) from None
        tier = tier_create(
            dataset=dataset,
            actor=authenticated_user(request),
            name=valid["name"],
            price=valid["price"],
            bed=bed,
            genes=valid.get("genes", []),
        )
        if valid.get("whole_for_sale") is not None:
            dataset_set_whole_for_sale(
                dataset=dataset, actor=authenticated_user(request), whole=valid["whole_for_sale"]
            )
        return Response(TierOutputSerializer(tier).data, status=status.HTTP_201_CREATED)
