"""tus 1.0.0 protocol endpoints (core, creation, termination) at /api/v1/uploads/.

The protocol's headers are parsed and answered here; the work is in
`genomics.services.uploads`. Errors still use the API's JSON error shape, with the tus
headers every response must carry.
"""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.utils.http import http_date
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import request_user
from core.api.throttling import ScopedThrottle
from core.errors import DomainError, PermissionDenied, ValidationError
from genomics.models import GenomicFile
from genomics.services.uploads import (
    upload_append,
    upload_create,
    upload_expires_at,
    upload_get_resumable,
    upload_terminate,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


class TusVersionMismatch(DomainError):
    status = 412
    code = "tus_version_unsupported"


class ConnectionLost(DomainError):
    """Answered to nobody, usually: it keeps a dropped client from logging as a 500."""

    status = 400
    code = "connection_lost"


class WrongContentType(DomainError):
    status = 415
    code = "unsupported_media_type"


def _tus_headers(response: Response) -> Response:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    return response


def _expires_header(response: Response, upload: GenomicFile) -> Response:
    """tus expiration extension: `Upload-Expires` (an RFC 9110 HTTP-date) while unfinished."""
    expires_at = upload_expires_at(upload)
    if expires_at is not None:
        response["Upload-Expires"] = http_date(expires_at.timestamp())
    return response


def _require_tus(request: Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusVersionMismatch(f"Send the header Tus-Resumable: {TUS_VERSION}.")


def _int_header(request: Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isdigit():
        raise ValidationError(
            f"The {name} header must be a non-negative integer.",
            fields={name: ["A non-negative integer is required."]},
        )
    return int(raw)


def parse_metadata(header: str) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64value` pairs."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, value = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(value, validate=True).decode() if value else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"Upload-Metadata value of {key!r} is not base64 UTF-8.",
                fields={"Upload-Metadata": ["Invalid base64."]},
            ) from exc
    return metadata


class TusApiView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "upload"

    def finalize_response(
        self, request: Request, response: Response, *args: object, **kwargs: object
    ) -> Response:
        return super().finalize_response(request, _tus_headers(response), *args, **kwargs)


class UploadCreateApi(TusApiView):
    @extend_schema(
        tags=["files"],
        request=None,
        responses={201: None},
        parameters=[
            OpenApiParameter("Tus-Resumable", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Metadata",
                str,
                OpenApiParameter.HEADER,
                description="`filename <base64>` (tus creation extension)",
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        _require_tus(request)
        user = request_user(request)
        # Roles live on the marketplace's user model; only donors bring genomes in.
        if getattr(user, "role", None) != "donor":
            raise PermissionDenied("Only donors upload genomic files.")
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        upload = upload_create(
            owner=request_user(request),
            upload_length=_int_header(request, "Upload-Length"),
            filename=metadata.get("filename", ""),
        )
        response = Response(status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"/api/v1/uploads/{upload.pk}")
        response["Upload-Offset"] = "0"
        return _expires_header(response, upload)

    @extend_schema(tags=["files"], responses={204: None})
    def options(  # type: ignore[override]  # DRF passes its Request
        self, request: Request, *args: object, **kwargs: object
    ) -> Response:
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Max-Size"] = str(settings.UPLOAD_MAX_BYTES)
        return response


class UploadApi(TusApiView):
    @extend_schema(tags=["files"], responses={200: None})
    def head(self, request: Request, upload_id: str) -> Response:
        """200 with the offset while resumable or complete; 404 terminated, 410 ended."""
        _require_tus(request)
        upload = upload_get_resumable(owner=request_user(request), file_id=upload_id)
        response = Response(status=status.HTTP_200_OK)
        response["Upload-Offset"] = str(upload.upload_offset)
        response["Upload-Length"] = str(upload.upload_length)
        return _expires_header(response, upload)

    @extend_schema(
        tags=["files"],
        request={OFFSET_CONTENT_TYPE: bytes},
        responses={204: None},
        parameters=[
            OpenApiParameter("Tus-Resumable", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True),
        ],
    )
    def patch(self, request: Request, upload_id: str) -> Response:
        _require_tus(request)
        if request.content_type.split(";")[0].strip() != OFFSET_CONTENT_TYPE:
            raise WrongContentType(f"PATCH bodies must be {OFFSET_CONTENT_TYPE}.")
        length = request.headers.get("Content-Length")
        try:
            upload = upload_append(
                owner=request_user(request),
                file_id=upload_id,
                offset=_int_header(request, "Upload-Offset"),
                read=request._request.read,
                content_length=int(length) if length and length.isdigit() else None,
            )
        except OSError as exc:  # the client went away mid-body; what arrived is kept
            raise ConnectionLost(
                "The connection broke during the upload; resume from the offset HEAD reports."
            ) from exc
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Upload-Offset"] = str(upload.upload_offset)
        return _expires_header(response, upload)

    @extend_schema(tags=["files"], responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        _require_tus(request)
        upload_terminate(owner=request_user(request), file_id=upload_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
