"""`GET /api/v1/chain`: where to pay and how far the indexer has come."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from requests.exceptions import RequestException
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ServiceUnavailable
from ledger.selectors.chain_status import chain_status


class ChainApi(APIView):
    """Public: wallets need the chain id and addresses before anyone signs in."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        chain_id = serializers.IntegerField()
        rpc_url = serializers.CharField()
        token = serializers.CharField(allow_null=True)
        market = serializers.CharField(allow_null=True)
        head = serializers.IntegerField()
        confirmed_block = serializers.IntegerField(allow_null=True)
        lag = serializers.IntegerField(allow_null=True)
        confirmations = serializers.IntegerField()
        pending_operator_transactions = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer}, tags=["chain"])
    def get(self, request: Request) -> Response:
        try:
            status = chain_status()
        except (RequestException, OSError) as exc:
            raise ServiceUnavailable("The chain node does not answer.") from exc
        return Response(self.OutputSerializer(asdict(status)).data)
