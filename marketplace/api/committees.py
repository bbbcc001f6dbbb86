"""Data access committees and their work on requests (API.md "Committees"; issue 19 §1,
§2). One view per operation; each calls one service or selector."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.api.access_requests import RequestOutputSerializer
from marketplace.api.permissions import (
    IsAdmin,
    IsCommitteeMember,
    IsResearcher,
    authenticated_user,
)
from marketplace.models import AccessRequest, DacMembership, DataAccessCommittee, Vote
from marketplace.selectors.access_requests import request_get
from marketplace.selectors.committees import dac_get, dac_list, request_thread
from marketplace.services.committees import (
    dac_create,
    dac_member_set,
    dac_update,
    request_message_post,
    request_resubmit,
    request_return,
    request_vote,
)


class MemberSerializer(serializers.Serializer):
    user = serializers.UUIDField(source="user_id")
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()


class DacOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_default = serializers.BooleanField()
    policy = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()

    def get_policy(self, obj: DataAccessCommittee) -> dict[str, Any]:
        return {"votes_needed": obj.votes_needed, "chair_decides": obj.chair_decides}

    def get_members(self, obj: DataAccessCommittee) -> list[dict[str, Any]]:
        return list(MemberSerializer(obj.members.all(), many=True).data)


class DacsApi(APIView):
    """GET: every committee (public: researchers see who reviews). POST: an admin makes one."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(max_length=2000, allow_blank=True, default="")
        votes_needed = serializers.IntegerField(min_value=0, max_value=20, default=0)
        chair_decides = serializers.BooleanField(default=False)

    def get_permissions(self) -> list[BasePermission]:
        return [IsAdmin()] if self.request.method == "POST" else [AllowAny()]

    @extend_schema(
        operation_id="dacs_list", responses={200: DacOutputSerializer(many=True)}, tags=["dacs"]
    )
    def get(self, request: Request) -> Response:
        return Response(DacOutputSerializer(dac_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: DacOutputSerializer}, tags=["dacs"])
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        made = dac_create(admin=authenticated_user(request), **serializer.validated_data)
        return Response(DacOutputSerializer(made).data, status=status.HTTP_201_CREATED)


class DacDetailApi(APIView):
    """GET: a committee (public). PATCH: an admin changes its description or policy."""

    class PolicySerializer(serializers.Serializer):
        description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
        votes_needed = serializers.IntegerField(min_value=0, max_value=20, required=False)
        chair_decides = serializers.BooleanField(required=False)

    def get_permissions(self) -> list[BasePermission]:
        return [IsAdmin()] if self.request.method == "PATCH" else [AllowAny()]

    @extend_schema(responses={200: DacOutputSerializer}, tags=["dacs"])
    def get(self, request: Request, dac_id: str) -> Response:
        return Response(DacOutputSerializer(dac_get(dac_id=dac_id)).data)

    @extend_schema(request=PolicySerializer, responses={200: DacOutputSerializer}, tags=["dacs"])
    def patch(self, request: Request, dac_id: str) -> Response:
        serializer = self.PolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dac = dac_get(dac_id=dac_id)
        changes = serializer.validated_data
        dac_update(
            admin=authenticated_user(request),
            dac_id=dac.pk,
            description=changes.get("description", dac.description),
            votes_needed=changes.get("votes_needed", dac.votes_needed),
            chair_decides=changes.get("chair_decides", dac.chair_decides),
        )
        return Response(DacOutputSerializer(dac_get(dac_id=dac.pk)).data)


class DacMembersApi(APIView):
    """An admin puts an account on the committee as chair or member (or changes its role)."""

    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        user = serializers.UUIDField()
        role = serializers.ChoiceField(choices=DacMembership.Role.values)

    @extend_schema(request=InputSerializer, responses={200: DacOutputSerializer}, tags=["dacs"])
    def post(self, request: Request, dac_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dac_member_set(
            admin=authenticated_user(request),
            dac_id=dac_id,
            user_id=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )
        return Response(DacOutputSerializer(dac_get(dac_id=dac_id)).data)


class VoteOutputSerializer(serializers.Serializer):
    member = serializers.CharField(source="member.username")
    vote = serializers.CharField()
    comment = serializers.CharField()
    review_round = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class AccessRequestVoteApi(APIView):
    """A committee member's vote on the request's current review round (not a state
    change: the request stays submitted)."""

    permission_classes = [IsCommitteeMember]

    class InputSerializer(serializers.Serializer):
        vote = serializers.ChoiceField(choices=Vote.Choice.values)
        comment = serializers.CharField(max_length=2000, allow_blank=True, default="")
        expected_state = serializers.ChoiceField(
            choices=AccessRequest.State.values, required=False, allow_null=True, default=None
        )

    @extend_schema(
        request=InputSerializer, responses={201: VoteOutputSerializer}, tags=["access requests"]
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vote = request_vote(
            member=authenticated_user(request), request_id=request_id, **serializer.validated_data
        )
        return Response(VoteOutputSerializer(vote).data, status=status.HTTP_201_CREATED)


class AccessRequestReturnApi(APIView):
    """Send the request back to its researcher for changes (-> returned)."""

    permission_classes = [IsCommitteeMember]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)
        expected_state = serializers.ChoiceField(
            choices=AccessRequest.State.values, required=False, allow_null=True, default=None
        )

    @extend_schema(
        request=InputSerializer, responses={200: RequestOutputSerializer}, tags=["access requests"]
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        returned = request_return(
            member=authenticated_user(request), request_id=request_id, **serializer.validated_data
        )
        return Response(RequestOutputSerializer(returned).data)


class AccessRequestResubmitApi(APIView):
    """The researcher sends a returned request again (-> submitted, a new review round)."""

    permission_classes = [IsResearcher]

    @extend_schema(request=None, responses={200: RequestOutputSerializer}, tags=["access requests"])
    def post(self, request: Request, request_id: str) -> Response:
        sent = request_resubmit(researcher=authenticated_user(request), request_id=request_id)
        return Response(RequestOutputSerializer(sent).data)


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    from_researcher = serializers.SerializerMethodField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_from_researcher(self, obj: Any) -> bool:
        return bool(obj.author_id == obj.request.researcher_id)


class AccessRequestMessagesApi(APIView):
    """The request's thread: GET for whoever may see the request; POST for its researcher
    and the members of its committee."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=4000)

    @extend_schema(
        operation_id="access_request_messages_list",
        responses={200: MessageOutputSerializer(many=True)},
        tags=["access requests"],
    )
    def get(self, request: Request, request_id: str) -> Response:
        found = request_get(viewer=authenticated_user(request), request_id=request_id)
        return Response(MessageOutputSerializer(request_thread(request=found), many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: MessageOutputSerializer}, tags=["access requests"]
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        posted = request_message_post(
            author=authenticated_user(request),
            request_id=request_id,
            body=serializer.validated_data["body"],
        )
        return Response(MessageOutputSerializer(posted).data, status=status.HTTP_201_CREATED)
