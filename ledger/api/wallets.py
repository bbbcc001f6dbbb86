"""Wallet linking API (API.md: /api/v1/me/wallet/challenge, /api/v1/me/wallet)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import request_user
from core.api.throttling import ScopedThrottle
from ledger.models import WalletChallenge
from ledger.services.wallets import (
    MAX_SIGNATURE_BYTES,
    siwe_message_hash,
    wallet_challenge_create,
    wallet_link,
    wallet_unlink,
)


def siwe_domain(request: Request) -> str:
    """The domain SIWE messages must name: pinned by SIWE_DOMAIN, else this request's host
    (already checked against ALLOWED_HOSTS by Django)."""
    return str(settings.SIWE_DOMAIN or request.get_host())


class WalletChallengeApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "wallet"

    class InputSerializer(serializers.Serializer):
        address = serializers.CharField(max_length=42)

    class OutputSerializer(serializers.Serializer):
        message = serializers.CharField()
        # EIP-191 hash of `message`: what a smart-contract wallet approves (EIP-1271).
        message_hash = serializers.SerializerMethodField()
        nonce = serializers.CharField()
        expires_at = serializers.DateTimeField()

        def get_message_hash(self, challenge: WalletChallenge) -> str:
            return "0x" + siwe_message_hash(challenge.message).hex()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, tags=["wallet"])
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        challenge = wallet_challenge_create(
            user=request_user(request),
            address=serializer.validated_data["address"],
            domain=siwe_domain(request),
            uri=request.build_absolute_uri("/"),
        )
        return Response(self.OutputSerializer(challenge).data, status=status.HTTP_201_CREATED)


class WalletLinkApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "wallet"

    class InputSerializer(serializers.Serializer):
        message = serializers.CharField(max_length=4000, trim_whitespace=False)
        # 65 bytes from an account's key; a contract wallet's (EIP-1271) may be longer, or
        # empty (a Safe that approved the message on chain).
        signature = serializers.RegexField(
            rf"^0x(?:[0-9a-fA-F]{{2}}){{0,{MAX_SIGNATURE_BYTES}}}$",
            allow_blank=False,
            error_messages={
                "invalid": "Expected a hex signature: 0x followed by its bytes (65 for an "
                "account's key; a contract wallet's may be longer, or empty)."
            },
        )

    class OutputSerializer(serializers.Serializer):
        wallet_address = serializers.CharField(source="address")
        linked_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["wallet"])
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link = wallet_link(
            user=request_user(request),
            domain=siwe_domain(request),
            **serializer.validated_data,
        )
        return Response(self.OutputSerializer(link).data)

    @extend_schema(responses={204: None}, tags=["wallet"])
    def delete(self, request: Request) -> Response:
        wallet_unlink(user=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
