"""Routes for the download benchmark only: a grant by id, with no access check (the
marketplace's checks are not what this measures)."""

from uuid import UUID

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import path

from genomics.downloads import grant_download_response
from genomics.models import Grant


def grant_download(request: HttpRequest, grant_id: UUID) -> HttpResponseBase:
    grant = get_object_or_404(Grant.objects.select_related("file"), pk=grant_id)
    return grant_download_response(request, grant=grant, filename=grant.file.filename)


urlpatterns = [path("grant/<uuid:grant_id>", grant_download)]
