"""Data access agreements and the blocklist in the API (API.md "Datasets"; issue 19
§3, §4)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound, PermissionDenied
from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.models import DataAccessAgreement, DatasetBlock, Role, User
from marketplace.selectors.agreements import agreement_current
from marketplace.selectors.blocklist import dataset_blocks
from marketplace.selectors.datasets import dataset_get
from marketplace.services.agreements import agreement_publish, agreement_remove
from marketplace.services.blocklist import researcher_unblock


class AgreementSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    text = serializers.CharField()
    sha256 = serializers.CharField(help_text="SHA-256 (hex) of `text` as UTF-8: accept by it.")
    created_at = serializers.DateTimeField()


def _viewer(request: Request) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


class DatasetAgreementApi(APIView):
    """GET: the agreement a request must accept now (404 when none). PUT: the donor
    publishes a new version. DELETE: the donor drops the requirement."""

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        text = serializers.CharField(max_length=50_000)

    def get_permissions(self) -> list[Any]:
        return [AllowAny()] if self.request.method == "GET" else [IsDonor()]

    @extend_schema(responses={200: AgreementSerializer}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        dataset = dataset_get(dataset_id=dataset_id, viewer=_viewer(request))
        current = agreement_current(dataset=dataset)
        if current is None:
            raise NotFound("This dataset asks for no data access agreement.")
        return Response(AgreementSerializer(current).data)

    @extend_schema(request=InputSerializer, responses={200: AgreementSerializer}, tags=["datasets"])
    def put(self, request: Request, dataset_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticated_user(request)
        dataset = dataset_get(dataset_id=dataset_id, viewer=user)
        published: DataAccessAgreement = agreement_publish(
            dataset_id=dataset.pk, actor=user, **serializer.validated_data
        )
        return Response(AgreementSerializer(published).data)

    @extend_schema(request=None, responses={204: None}, tags=["datasets"])
    def delete(self, request: Request, dataset_id: str) -> Response:
        user = authenticated_user(request)
        dataset = dataset_get(dataset_id=dataset_id, viewer=user)
        agreement_remove(dataset_id=dataset.pk, actor=user)
        return Response(status=204)


class BlockSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    researcher = serializers.CharField(source="researcher.username")
    reason = serializers.CharField()
    request = serializers.UUIDField(source="request_id", allow_null=True)
    created_at = serializers.DateTimeField()


def _dataset_for_blocks(request: Request, dataset_id: str) -> tuple[User, Any]:
    user = authenticated_user(request)
    dataset = dataset_get(dataset_id=dataset_id, viewer=user)
    if user.pk != dataset.donor_id and user.role != Role.ADMIN:
        raise PermissionDenied("Only the dataset's donor or an admin sees its blocklist.")
    return user, dataset


class DatasetBlocksApi(APIView):
    """The dataset's active blocks (its donor and admins)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: BlockSerializer(many=True)}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        _, dataset = _dataset_for_blocks(request, dataset_id)
        return Response(BlockSerializer(dataset_blocks(dataset=dataset), many=True).data)


class DatasetBlockLiftApi(APIView):
    """Lift a block: the researcher may request the dataset again."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: BlockSerializer}, tags=["datasets"])
    def post(self, request: Request, dataset_id: str, block_id: str) -> Response:
        user, dataset = _dataset_for_blocks(request, dataset_id)
        if not DatasetBlock.objects.filter(pk=block_id, dataset=dataset).exists():
            raise NotFound("No such block.")
        return Response(BlockSerializer(researcher_unblock(actor=user, block_id=block_id)).data)
