"""Files API (API.md "Files"): a donor's stored files and their ingest state."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
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
from genomics.models import GenomicFile, Recompression
from genomics.selectors.archive_keys import archive_key_list, archive_key_rotation_progress
from genomics.selectors.files import archive_public_key, file_get, file_list
from genomics.services.indexes import sliceable


class RecompressionSerializer(serializers.ModelSerializer):
    """Storing a VCF bgzipped (README "Storing a VCF bgzipped"), as the worker goes."""

    state = serializers.ChoiceField(
        choices=Recompression.State.choices,
        help_text="queued, working (see progress), done, or failed (see error; the file "
        "is unchanged).",
    )
    uploaded_plaintext_sha256 = serializers.CharField(
        help_text="SHA-256 of what was uploaded (set when done; the file's plaintext_sha256 "
        "is then the bgzipped bytes', what a grantee verifies after decrypting)."
    )

    class Meta:
        model = Recompression
        fields = [
            "state",
            "progress",
            "error",
            "requested_at",
            "finished_at",
            "uploaded_filename",
            "uploaded_plaintext_sha256",
            "uploaded_plaintext_size",
            "uploaded_compression",
            "bgzipped_plaintext_sha256",
            "grants_reissued",
        ]


class FileOutputSerializer(serializers.ModelSerializer):
    size = serializers.SerializerMethodField()
    received_bytes = serializers.IntegerField(source="upload_offset")
    sliceable = serializers.SerializerMethodField()
    recompression = serializers.SerializerMethodField()

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
            "sliceable",
            "recompression",
        ]

    def get_size(self, obj: GenomicFile) -> int | None:
        """The plaintext size: known from the start for plaintext uploads, after ingest
        for files that arrived encrypted."""
        if obj.plaintext_size is not None:
            return obj.plaintext_size
        return obj.upload_length if obj.source == GenomicFile.Source.PLAINTEXT else None

    def get_sliceable(self, obj: GenomicFile) -> bool:
        """Whether researchers can read regions of it (htsget). False for a plain or gzip
        VCF: POST /api/v1/files/{id}/recompress stores it bgzipped."""
        return obj.state == GenomicFile.State.READY and sliceable(obj)

    @extend_schema_field(RecompressionSerializer(allow_null=True))
    def get_recompression(self, obj: GenomicFile) -> dict[str, object] | None:
        """Its bgzipped copy, once asked for (POST /api/v1/files/{id}/recompress); else null."""
        try:
            row = obj.recompression
        except Recompression.DoesNotExist:
            return None
        return dict(RecompressionSerializer(row).data)


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


class ArchiveKeyPeriodSerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="As `crypt4gh-keygen` writes it.")
    public_key_base64 = serializers.CharField(help_text="The 32 raw bytes, base64.")
    state = serializers.ChoiceField(
        choices=["active", "retiring", "retired"],
        help_text="retiring: a rotation is moving its files to the active key.",
    )
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(
        allow_null=True, help_text="When a newer key replaced it; null while active."
    )
    retired_at = serializers.DateTimeField(
        allow_null=True, help_text="When its last file moved and its secret was deleted."
    )


class ArchiveKeyRotationSerializer(serializers.Serializer):
    files_moved = serializers.IntegerField()
    files_remaining = serializers.IntegerField()
    uploads_receiving = serializers.IntegerField(
        help_text="Files still being uploaded to the retiring key: they move once complete."
    )


class ArchiveKeyApi(APIView):
    """The archive's public key, so donors can encrypt before uploading; and every key the
    archive has had, with its period, so researchers can check the origin of a download
    with `crypt4gh decrypt --sender_pk` (the key active when the grant was made)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        public_key = serializers.CharField(
            help_text="The active key, as crypt4gh-keygen writes it."
        )
        public_key_base64 = serializers.CharField(help_text="The 32 raw bytes, base64.")
        keys = ArchiveKeyPeriodSerializer(many=True, help_text="Every key, newest first.")
        rotation = ArchiveKeyRotationSerializer(
            allow_null=True, help_text="The rotation in progress, if any."
        )

    @extend_schema(responses={200: OutputSerializer}, tags=["files"])
    def get(self, request: Request) -> Response:
        key = archive_public_key()
        if key is None:
            raise ServiceUnavailable("The archive key is not set up yet.")
        progress = archive_key_rotation_progress()
        keys = [
            {
                "public_key": c4gh.public_key_text(bytes(each.public_key)),
                "public_key_base64": c4gh.public_key_base64(bytes(each.public_key)),
                "state": each.state,
                "valid_from": each.created_at,
                "valid_until": each.replaced_at,
                "retired_at": each.retired_at,
            }
            for each in archive_key_list()
        ]
        rotation = (
            None
            if progress.done
            else {
                "files_moved": progress.moved,
                "files_remaining": progress.remaining,
                "uploads_receiving": progress.receiving,
            }
        )
        return Response(
            self.OutputSerializer(
                {
                    "public_key": c4gh.public_key_text(key),
                    "public_key_base64": c4gh.public_key_base64(key),
                    "keys": keys,
                    "rotation": rotation,
                }
            ).data
        )
