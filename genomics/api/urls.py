"""Genomics API routes, mounted under /api/v1/ (API.md "Files")."""

from django.urls import path

from genomics.api.files import ArchiveKeyApi, FileDetailApi, FileListApi
from genomics.api.uploads import UploadApi, UploadCreateApi

app_name = "genomics_api"

urlpatterns = [
    path("uploads/", UploadCreateApi.as_view(), name="uploads"),
    path("uploads/<uuid:upload_id>", UploadApi.as_view(), name="upload"),
    path("files/", FileListApi.as_view(), name="files"),
    path("files/<uuid:file_id>", FileDetailApi.as_view(), name="file"),
    path("archive-key", ArchiveKeyApi.as_view(), name="archive-key"),
]
