"""Attachments on access requests in the API (issue 19 §3)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound, ValidationError
from marketplace.api.permissions import IsResearcher, authenticated_user
from marketplace.models import RequestAttachment
from marketplace.selectors.access_requests import request_get
from marketplace.selectors.attachments import attachments_of
from marketplace.services.attachments import attachment_add, attachment_open
from marketplace.web.responses import pdf_response


class AttachmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    filename = serializers.CharField(source="file.filename")
    size = serializers.IntegerField(source="file.plaintext_size", help_text="bytes")
    sha256 = serializers.CharField(source="file.plaintext_sha256", help_text="of the PDF")
    created_at = serializers.DateTimeField()


class AccessRequestAttachmentsApi(APIView):
    """GET: the request's attachments (its researcher and the committee). POST: the
    researcher attaches a PDF (multipart field `document`) while the request waits."""

    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        document = serializers.FileField()

    def get_permissions(self) -> list[Any]:
        return [IsResearcher()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses={200: AttachmentSerializer(many=True)}, tags=["access requests"])
    def get(self, request: Request, request_id: str) -> Response:
        user = authenticated_user(request)
        found = request_get(viewer=user, request_id=request_id)
        listed = attachments_of(viewer=user, request=found)
        return Response(AttachmentSerializer(listed, many=True).data)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: AttachmentSerializer},
        tags=["access requests"],
    )
    def post(self, request: Request, request_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["document"]
        if upload.size > settings.ATTACHMENT_MAX_BYTES:
            raise ValidationError(
                f"Attachments may be at most {settings.ATTACHMENT_MAX_BYTES // 2**20} MiB.",
                fields={"document": ["Too large."]},
            )
        user = authenticated_user(request)
        found = request_get(viewer=user, request_id=request_id)
        made = attachment_add(
            researcher=user,
            request_id=found.pk,
            filename=upload.name or "attachment.pdf",
            data=upload.read(),
        )
        return Response(AttachmentSerializer(made).data, status=status.HTTP_201_CREATED)


class AccessRequestAttachmentApi(APIView):
    """The PDF itself, for the committee that decides the request (404 for anyone else)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "application/pdf"): bytes}, tags=["access requests"])
    def get(self, request: Request, request_id: str, attachment_id: str) -> HttpResponse:
        user = authenticated_user(request)
        found = request_get(viewer=user, request_id=request_id)
        if not RequestAttachment.objects.filter(pk=attachment_id, request=found).exists():
            raise NotFound("No such attachment.")
        filename, data = attachment_open(viewer=user, attachment_id=attachment_id)
        return pdf_response(filename, data)
