"""Files API (API.md "Files"): a donor's stored files and their ingest state."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import request_user
from core.api.schema import paginated
from core.errors import ServiceUnavailable
from genomics import c4gh
from genomics.models import GenomicFile
from genomics.selectors.files import archive_public_key, file_get, file_list


class FileOutputSerializer(serializers.ModelSerializer):
    size = serializers.SerializerMethodField()
    received_bytes = serializers.IntegerField(source="upload_offset")

    class Meta:
        model = GenomicFile
        fields = [
            "id",
            "filename",
            "state",
            "progress",
            "format",
            "size",
            "received_bytes",
            "upload_length",
            "source",
            "plaintext_sha256",
            "payload_sha256",
            "metadata",
            "error",
            "created_at",
            "ready_at",
        ]

    def get_size(self, obj: GenomicFile) -> int | None:
        """The plaintext size: known from the start for plaintext uploads, after ingest
        for files that arrived encrypted."""
        if obj.plaintext_size is not None:
            return obj.plaintext_size
        return obj.upload_length if obj.source == GenomicFile.Source.PLAINTEXT else None


class FileListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="files_list",
        responses={200: paginated(FileOutputSerializer, "PaginatedFiles")},
        tags=["files"],
    )
    def get(self, request: Request) -> Response:
        paginator = PageNumberPagination()
        files: QuerySet[GenomicFile] = file_list(owner=request_user(request))
        page = paginator.paginate_queryset(files, request, view=self)
        return paginator.get_paginated_response(FileOutputSerializer(page, many=True).data)


class FileDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: FileOutputSerializer}, tags=["files"])
    def get(self, request: Request, file_id: str) -> Response:
        found = file_get(owner=request_user(request), file_id=file_id)
        return Response(FileOutputSerializer(found).data)


class ArchiveKeyApi(APIView):
    """The archive's public key, so donors can encrypt before uploading."""

    authentication_classes = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        public_key = serializers.CharField(help_text="As `crypt4gh-keygen` writes it.")
        public_key_base64 = serializers.CharField(help_text="The 32 raw bytes, base64.")

    @extend_schema(responses={200: OutputSerializer}, tags=["files"])
    def get(self, request: Request) -> Response:
        key = archive_public_key()
        if key is None:
            raise ServiceUnavailable("The archive key is not set up yet.")
        return Response(
            self.OutputSerializer(
                {
                    "public_key": c4gh.public_key_text(key),
                    "public_key_base64": c4gh.public_key_base64(key),
                }
            ).data
        )
