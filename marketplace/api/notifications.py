"""A user's notifications (in-app list; the same news goes out by email)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import paginated
from marketplace.api.permissions import authenticated_user
from marketplace.models import Notification
from marketplace.services.notifications import notifications_mark_read


class NotificationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "message", "request", "created_at", "read_at"]


class NotificationsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="notifications_list",
        responses={200: paginated(NotificationOutputSerializer, "PaginatedNotifications")},
        tags=["notifications"],
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            Notification.objects.filter(user=authenticated_user(request)), request, view=self
        )
        return paginator.get_paginated_response(NotificationOutputSerializer(page, many=True).data)


class NotificationsReadApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "NotificationsRead", fields={"marked": serializers.IntegerField()}
            )
        },
        tags=["notifications"],
    )
    def post(self, request: Request) -> Response:
        return Response({"marked": notifications_mark_read(user=authenticated_user(request))})
