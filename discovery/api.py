"""`GET`/`PUT /api/v1/datasets/{id}/beacon`: what the Beacon may say about a dataset,
`{"granularity": "boolean"|"count"}`, chosen by its donor."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from discovery.models import BeaconPolicy
from discovery.services import beacon_granularity, beacon_policy_set
from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.selectors.datasets import dataset_get


class DatasetBeaconPolicyApi(APIView):
    class InputSerializer(serializers.Serializer):
        granularity = serializers.ChoiceField(choices=BeaconPolicy.Granularity.choices)

    class OutputSerializer(serializers.Serializer):
        granularity = serializers.CharField()

    def get_permissions(self) -> list:
        return [IsDonor()] if self.request.method == "PUT" else [AllowAny()]

    @extend_schema(responses={200: OutputSerializer}, tags=["datasets"])
    def get(self, request: Request, dataset_id: str) -> Response:
        viewer = request.user if request.user.is_authenticated else None
        dataset = dataset_get(dataset_id=dataset_id, viewer=viewer)
        return Response({"granularity": beacon_granularity(dataset=dataset)})

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["datasets"])
    def put(self, request: Request, dataset_id: str) -> Response:
        user = authenticated_user(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_get(dataset_id=dataset_id, viewer=user)
        policy = beacon_policy_set(
            dataset=dataset, actor=user, granularity=serializer.validated_data["granularity"]
        )
        return Response({"granularity": policy.granularity})
