"""Accounts API: register, token login, profile (API.md "Accounts and keys")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.throttling import ScopedThrottle
from marketplace.api.permissions import authenticated_user
from marketplace.models.users import SELF_SERVICE_ROLES
from marketplace.selectors.accounts import user_profile
from marketplace.services.accounts import (
    token_issue,
    user_authenticate,
    user_identity_update,
    user_register,
    user_set_crypt4gh_key,
)


class ProfileSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    role = serializers.CharField()
    public_name = serializers.CharField()
    institution = serializers.CharField(allow_blank=True)
    is_staff = serializers.BooleanField()
    crypt4gh_public_key = serializers.CharField(
        allow_null=True,
        help_text="The X25519 key grants are made for, as crypt4gh-keygen writes it.",
    )
    crypt4gh_key_type = serializers.CharField(
        allow_null=True, help_text="What the key was given as, e.g. 'OpenSSH ed25519 key'."
    )
    crypt4gh_key_fingerprint = serializers.CharField(
        allow_null=True,
        help_text="SHA256:... as `ssh-keygen -l` prints it for an SSH key; of the 32 "
        "X25519 bytes otherwise.",
    )
    wallet_address = serializers.CharField(allow_null=True)


class RegisterApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "register"

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(
            r"^[\w.@+-]+\Z",
            max_length=150,
            min_length=3,
            error_messages={"invalid": "Use letters, digits and @/./+/-/_ only."},
        )
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        email = serializers.EmailField()
        role = serializers.ChoiceField(choices=sorted(SELF_SERVICE_ROLES))

    @extend_schema(request=InputSerializer, responses={201: ProfileSerializer}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_register(**serializer.validated_data)
        return Response(
            ProfileSerializer(user_profile(user=user)).data, status=status.HTTP_201_CREATED
        )


class TokenApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # django-axes needs the Django request: it tracks failures by username and address.
        user = user_authenticate(request=request._request, **serializer.validated_data)
        return Response(self.OutputSerializer({"token": token_issue(user=user)}).data)


class Crypt4ghKeyApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        # Room for what people paste by mistake (an RSA key, a secret key), so the parser's
        # own message says what it is and what to use instead.
        public_key = serializers.CharField(max_length=20000)

    @extend_schema(request=InputSerializer, responses={200: ProfileSerializer}, tags=["accounts"])
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_set_crypt4gh_key(
            user=authenticated_user(request), public_key=serializer.validated_data["public_key"]
        )
        return Response(ProfileSerializer(user_profile(user=user)).data)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    class IdentitySerializer(serializers.Serializer):
        public_name = serializers.CharField(allow_blank=True, required=False, max_length=120)
        institution = serializers.CharField(allow_blank=True, required=False, max_length=200)

    @extend_schema(responses={200: ProfileSerializer}, tags=["accounts"])
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(user_profile(user=authenticated_user(request))).data)

    @extend_schema(
        request=IdentitySerializer, responses={200: ProfileSerializer}, tags=["accounts"]
    )
    def patch(self, request: Request) -> Response:
        """Change the public name and institution (shown in donors' access histories)."""
        body = self.IdentitySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticated_user(request)
        user_identity_update(
            user=user,
            public_name=body.validated_data.get("public_name", user.public_name),
            institution=body.validated_data.get("institution", user.institution),
        )
        return Response(ProfileSerializer(user_profile(user=user)).data)
