"""GA4GH Passport v1.2: the researcher's visas and the keys that verify them (README
"Passports")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.permissions import authenticated_user
from marketplace.selectors.visas import passport_visas, visa_jwks


class PassportApi(APIView):
    """The caller's current visas, in the shape of a Passport v1.2 userinfo answer
    ("Passport Claim Format"): one ES256-signed `ControlledAccessGrants` visa per live
    grant. A revoked or expired grant's visa is gone from here at once; elsewhere it stays
    valid until its `exp` (at most VISA_LIFETIME_S)."""

    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        ga4gh_passport_v1 = serializers.ListField(
            child=serializers.CharField(),
            help_text="Visa JWTs (JWS compact serialization), verifiable against "
            "/.well-known/jwks.json.",
        )

    @extend_schema(responses={200: OutputSerializer}, tags=["passports"])
    def get(self, request: Request) -> Response:
        visas = passport_visas(user=authenticated_user(request))
        return Response(self.OutputSerializer({"ga4gh_passport_v1": visas}).data)


class JwksApi(APIView):
    """The public keys of our visas (RFC 7517 §5 JWK Set), each with its `kid`."""

    authentication_classes = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        keys = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))

    @extend_schema(responses={200: OutputSerializer}, tags=["passports"])
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(visa_jwks()).data)
