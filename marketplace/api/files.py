"""Files API, the donor's actions that the marketplace audits (API.md "Files"); reading
files is genomics' (genomics/api/files.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from genomics.api.files import FileOutputSerializer
from marketplace.api.permissions import IsDonor, authenticated_user
from marketplace.services.files import donor_file_recompress


class FileRecompressApi(APIView):
    """Store a plain or gzip VCF bgzipped, so researchers can read regions of it (htsget)
    and it can be sold by region. The worker does it: 202 with the file, whose
    `recompression` says `queued`, then `working` (with `progress`), then `done` (the
    file's `plaintext_sha256` is then the bgzipped bytes', `recompression.
    uploaded_plaintext_sha256` the upload's) or `failed` (with `error`; the file is
    unchanged, and asking again starts over). Asking while it is queued or working
    answers the same. Grants of the file keep working: their headers are made again for
    the new payload."""

    permission_classes = [IsDonor]

    @extend_schema(
        operation_id="files_recompress",
        request=None,
        # 409 (the API's error shape): not a VCF, not ready, or already bgzipped.
        responses={202: FileOutputSerializer},
        tags=["files"],
    )
    def post(self, request: Request, file_id: str) -> Response:
        file = donor_file_recompress(donor=authenticated_user(request), file_id=file_id)
        return Response(FileOutputSerializer(file).data, status=status.HTTP_202_ACCEPTED)
