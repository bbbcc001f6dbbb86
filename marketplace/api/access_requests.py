"""Access requests API (API.md "Access requests"): the transitions before payment."""

from __future__ import annotations

from typing import Any

from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import paginated
from core.errors import NotFound
from genomics.downloads import grant_download_response
from marketplace.api.permissions import IsCommitteeMember, IsResearcher, authenticated_user
from marketplace.models import AccessRequest
from marketplace.selectors.access_requests import (
    request_get,
    request_grant_view,
    request_list,
    request_permit_call,
    request_timeline,
    request_voucher,
)
from marketplace.services.access_requests import (
    request_approve,
    request_reject,
    request_submit,
    request_withdraw,
)
from marketplace.services.blocklist import request_revoke_for_misuse
from marketplace.services.committees import request_edit
from marketplace.services.downloads import request_download_grant
from marketplace.services.renewals import request_renew
from marketplace.services.settlement import request_revoke


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    dataset = serializers.UUIDField(source="dataset_id")
    dataset_title = serializers.CharField(source="dataset.title")
    tier = serializers.UUIDField(source="tier_id", allow_null=True)
    researcher = serializers.CharField(source="researcher.username")
    purpose_codes = serializers.JSONField()
    statement = serializers.CharField()
    duo_match = serializers.JSONField()
    consent_matcher_version = serializers.CharField()
    amount = serializers.SerializerMethodField()
    decision_reason = serializers.CharField()
    agreement = serializers.SerializerMethodField()
    renews = serializers.UUIDField(
        source="renews_id", allow_null=True, help_text="The live request this one renews."
    )
    # The committee that reviews it and the review round (one more per resubmission).
    dac = serializers.UUIDField(source="dataset.dac_id")
    review_round = serializers.IntegerField()
    timeline = serializers.SerializerMethodField()
    voucher = serializers.SerializerMethodField()
    grant = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_amount(self, obj: AccessRequest) -> str:
        return str(int(obj.amount))

    def get_agreement(self, obj: AccessRequest) -> dict[str, Any] | None:
        """The agreement version accepted with the request, or null."""
        found = obj.agreement
        return {"version": found.version, "sha256": found.sha256} if found else None

    def get_timeline(self, obj: AccessRequest) -> list[dict[str, Any]]:
        return request_timeline(request=obj)

    def get_voucher(self, obj: AccessRequest) -> dict[str, Any] | None:
        return request_voucher(request=obj)

    def get_grant(self, obj: AccessRequest) -> dict[str, Any] | None:
        return request_grant_view(request=obj)


class AccessRequestsApi(APIView):
    """GET: the requests the caller may see. POST: a researcher asks for access."""

    class InputSerializer(serializers.Serializer):
        dataset = serializers.UUIDField()
        purpose_codes = serializers.ListField(
            child=serializers.JSONField(), min_length=1, max_length=30
        )
        statement = serializers.CharField(max_length=5000)
        accept_terms = serializers.BooleanField()
        agreement_sha256 = serializers.RegexField(
            r"^[0-9a-fA-F]{64}$",
            required=False,
            help_text="SHA-256 of the dataset's current data access agreement "
            "(GET /datasets/{id}/agreement), when it asks for one: accepting it.",
        )
        # A region tier of the dataset (README "Selling regions"); omitted: the whole.
        tier = serializers.UUIDField(required=False, allow_null=True)

    def get_permissions(self) -> list[Any]:
        return [IsResearcher()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="access_requests_list",
        responses={200: paginated(RequestOutputSerializer, "PaginatedAccessRequests")},
        tags=["access requests"],
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            request_list(viewer=authenticated_user(request)), request, view=self
        )
        return paginator.get_paginated_response(RequestOutputSerializer(page, many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: RequestOutputSerializer}, tags=["access requests"]
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = request_submit(
            researcher=authenticated_user(request),
            dataset_id=data["dataset"],
            purpose_codes=data["purpose_codes"],
            statement=data["statement"],
            accept_terms=data["accept_terms"],
            agreement_sha256=data.get("agreement_sha256"),
            tier_id=data.get("tier"),
        )
        return Response(RequestOutputSerializer(created).data, status=status.HTTP_201_CREATED)


class AccessRequestDetailApi(APIView):
    """GET: a request the caller may see. PATCH: its researcher edits it while it is
    returned for changes (then POST .../resubmit)."""

    class EditSerializer(serializers.Serializer):
        statement = serializers.CharField(max_length=5000, required=False)
        purpose_codes = serializers.ListField(
            child=serializers.JSONField(), min_length=1, max_length=30, required=False
        )

    def get_permissions(self) -> list[Any]:
        return [IsResearcher()] if self.request.method == "PATCH" else [IsAuthenticated()]

    @extend_schema(responses={200: RequestOutputSerializer}, tags=["access requests"])
    def get(self, request: Request, request_id: str) -> Response:
        found = request_get(viewer=authenticated_user(request), request_id=request_id)
        return Response(RequestOutputSerializer(found).data)

    @extend_schema(
        request=EditSerializer, responses={200: RequestOutputSerializer}, tags=["access requests"]
    )
    def patch(self, request: Request, request_id: str) -> Response:
        serializer = self.EditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        edited = request_edit(
            researcher=authenticated_user(request),
            request_id=request_id,
            **serializer.validated_data,
        )
        return Response(RequestOutputSerializer(edited).data)


class DecisionInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=True, default="")
    # The state the caller saw; a request no longer in it is refused (409 stale_state).
    # Without it, only a request still waiting for a decision (submitted) may be decided.
    expected_state = serializers.ChoiceField(
        choices=AccessRequest.State.values, required=False, allow_null=True, default=None
    )


class _CommitteeDecisionApi(APIView):
    """A committee member's final decision with a reason; subclasses name the service that
    makes it. Who may decide is the committee's business (the service): a caller who cannot
    see the request gets 404, one who sees it but does not decide it 403."""

    permission_classes = [IsCommitteeMember]
    decide: staticmethod

    @extend_schema(
        request=DecisionInputSerializer,
        responses={200: RequestOutputSerializer},
        tags=["access requests"],
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = DecisionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        decided = self.decide(
            reviewer=authenticated_user(request),
            request_id=request_id,
            reason=serializer.validated_data["reason"],
            expected_state=serializer.validated_data["expected_state"],
        )
        return Response(RequestOutputSerializer(decided).data)


class AccessRequestApproveApi(_CommitteeDecisionApi):
    decide = staticmethod(request_approve)


class AccessRequestRejectApi(_CommitteeDecisionApi):
    decide = staticmethod(request_reject)


class AccessRequestWithdrawApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=None, responses={200: RequestOutputSerializer}, tags=["access requests"])
    def post(self, request: Request, request_id: str) -> Response:
        withdrawn = request_withdraw(researcher=authenticated_user(request), request_id=request_id)
        return Response(RequestOutputSerializer(withdrawn).data)


class AccessRequestRenewApi(APIView):
    """The researcher asks to renew a live grant: a new request (201) linked to it, reviewed
    and paid like any other; on delivery it runs on from the grant's end."""

    permission_classes = [IsResearcher]

    class InputSerializer(serializers.Serializer):
        statement = serializers.CharField(max_length=5000, allow_blank=True, default="")
        agreement_sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False)

    @extend_schema(
        request=InputSerializer, responses={201: RequestOutputSerializer}, tags=["access requests"]
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        renewal = request_renew(
            researcher=authenticated_user(request),
            request_id=request_id,
            statement=serializer.validated_data["statement"],
            agreement_sha256=serializer.validated_data.get("agreement_sha256"),
        )
        return Response(RequestOutputSerializer(renewal).data, status=status.HTTP_201_CREATED)


class AccessRequestFileDownloadApi(APIView):
    """The Crypt4GH file for the granted researcher's key, while the grant is live.

    Every download is written to the audit log with the byte range asked for.
    """

    permission_classes = [IsResearcher]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): bytes,
            (206, "application/octet-stream"): bytes,
        },
        tags=["access requests"],
    )
    def get(self, request: Request, request_id: str, file_id: str) -> HttpResponseBase:
        grant = request_download_grant(
            researcher=authenticated_user(request),
            request_id=request_id,
            file_id=file_id,
            byte_range=request.headers.get("Range", ""),
        )
        return grant_download_response(request._request, grant=grant, filename=grant.file.filename)


class RevokeInputSerializer(DecisionInputSerializer):
    block = serializers.BooleanField(
        default=False,
        help_text="Revoked for misuse: also block the researcher from the dataset (their "
        "other requests for it end; new ones are refused).",
    )


class AccessRequestRevokeApi(APIView):
    """The donor (or an admin) revokes granted access: downloads stop at once."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=RevokeInputSerializer,
        responses={200: RequestOutputSerializer},
        tags=["access requests"],
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = RevokeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticated_user(request)
        request_get(viewer=user, request_id=request_id)  # 404 for requests the caller cannot see
        revoke = request_revoke_for_misuse if serializer.validated_data["block"] else request_revoke
        revoked = revoke(
            actor=user, request_id=request_id, reason=serializer.validated_data["reason"]
        )
        return Response(RequestOutputSerializer(revoked).data)


class AccessRequestPermitCallApi(APIView):
    """The ready calldata of `AccessMarket.payWithPermit` for the buyer's EIP-2612 permit
    signature: approve and pay in one transaction, from any wallet."""

    permission_classes = [IsResearcher]

    class InputSerializer(serializers.Serializer):
        signature = serializers.CharField(max_length=140)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "PermitCall", {"to": serializers.CharField(), "data": serializers.CharField()}
            )
        },
        tags=["access requests"],
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticated_user(request)
        found = request_get(viewer=user, request_id=request_id)
        if found.researcher_id != user.pk:
            raise NotFound("No such request.")
        return Response(
            request_permit_call(request=found, signature=serializer.validated_data["signature"])
        )
