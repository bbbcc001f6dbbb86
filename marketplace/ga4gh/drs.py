"""GA4GH Data Repository Service (DRS) 1.4.0 at `/ga4gh/drs/v1/`.

- `GET service-info` (DRS 1.4 "Service Info", GA4GH service-info 1.0.0), for anyone.
- `GET objects/{object_id}` ("GetObject"): a file of the caller's live grants is a blob; a
  dataset of a live grant is a bundle whose `contents` are its files (DRS "Working With
  Compound Objects"). Anything else answers 404, as an id that does not exist.
- `OPTIONS objects/{object_id}` ("OptionsObject"): the `Authorizations` (bearer tokens), the
  same for every id, so it tells nobody whether an object exists.
- `GET objects/{object_id}/access/{access_id}` ("GetAccessURL"): a short-lived signed URL
  (marketplace/services/drs.py) of the download, `download/{token}` below.

Checksums and size describe the donor's plaintext (what `crypt4gh decrypt` gives back, and what
the researcher verifies): the bytes served are Crypt4GH, encrypted to the researcher's key,
and their header differs per researcher, so a hash of the served stream would be neither
stable nor worth publishing. Errors have DRS's `Error` shape, `{"msg", "status_code"}`.
Authentication: `Authorization: Bearer <token>` (DRS `BearerAuth`) or `Token <token>`, or
`Bearer <visa>`: a GA4GH Passport visa of ours, for the dataset it names only
(marketplace/api/visa_auth.py).
The `POST` forms that carry GA4GH Passports in the body are not offered: a bearer token is
the one credential accepted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import BearerTokenAuthentication
from core.api.exception_handler import api_exception_handler
from core.errors import NotFound
from genomics.downloads import grant_download_response
from genomics.models import GenomicFile
from marketplace.api.permissions import authenticated_user
from marketplace.api.visa_auth import VisaAuthentication, visa_scope
from marketplace.selectors.drs import (
    NO_SUCH_OBJECT,
    GrantedDataset,
    GrantedFile,
    drs_granted_object,
)
from marketplace.services.drs import drs_access_token_create, drs_access_token_redeem

DRS_VERSION = "1.4.0"
# The one access method of a blob: HTTPS download of the Crypt4GH stream for the caller's key.
ACCESS_ID = "crypt4gh"
# DRS 1.4 `DrsObject.name` and `ContentsObject.name`: portable filename characters only.
_NOT_PORTABLE = re.compile(r"[^A-Za-z0-9._-]")
CHECKSUM_NOTE = (
    "size and the sha-256 checksum are of the decrypted file (the donor's bytes, or the "
    "vault's bgzipped copy of a VCF the donor had stored bgzipped: the same records); "
    "the bytes served are that file encrypted with Crypt4GH to your registered public key, "
    "so decrypt with `crypt4gh decrypt --sk <your secret key>` and check the sha-256 of "
    "the output."
)


def drs_error_shape(status: int, code: str, message: str) -> dict[str, Any]:
    """DRS 1.4 `Error`; the JSON_ERROR_SHAPES builder of /ga4gh/drs/ (unknown paths, crashes)."""
    return {"msg": message, "status_code": status}


def drs_exception_handler(exc: Exception, context: dict) -> Response | None:
    """The API's handler (statuses, headers such as WWW-Authenticate and Retry-After),
    with the body in DRS 1.4's `Error` shape."""
    response = api_exception_handler(exc, context)
    if response is not None:
        error = response.data.get("error", {}) if response.data else {}
        response.data = drs_error_shape(
            response.status_code, error.get("code", ""), error.get("message", "")
        )
    return response


def portable_name(name: str) -> str:
    return _NOT_PORTABLE.sub("_", name) or "unnamed"


def _drs_uri(request: Request, object_id: object) -> str:
    """A hostname-based DRS URI (DRS 1.4 "Hostname-based DRS URIs")."""
    return f"drs://{request.get_host()}/{object_id}"


def _rfc3339(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _updated_time(file: GenomicFile) -> str | None:
    """When the bytes a grantee decrypts last changed: ingest, or the vault storing the file
    bgzipped (genomics.services.recompress; its checksum then changed too)."""
    moments = [file.ready_at]
    recompression = getattr(file, "recompression", None)  # none: RelatedObjectDoesNotExist
    if recompression is not None and recompression.state == "done":
        moments.append(recompression.finished_at)
    known = [moment for moment in moments if moment is not None]
    return _rfc3339(max(known)) if known else None


def blob_json(request: Request, granted: GrantedFile) -> dict[str, Any]:
    """A `DrsObject` of one file (DRS 1.4 `DrsObject`, a blob)."""
    file = granted.file
    created = _rfc3339(file.created_at)
    return {
        "id": str(file.pk),
        "name": portable_name(file.filename),
        "self_uri": _drs_uri(request, file.pk),
        "size": file.plaintext_size or 0,
        "created_time": created,
        "updated_time": _updated_time(file) or created,
        "checksums": [{"type": "sha-256", "checksum": file.plaintext_sha256}],
        "access_methods": [
            {
                "type": "https",
                "access_id": ACCESS_ID,
                "authorizations": {
                    "drs_object_id": str(file.pk),
                    "supported_types": ["BearerAuth"],
                },
            }
        ],
        "description": f"{file.format or 'Genomic'} file, Crypt4GH-encrypted; {CHECKSUM_NOTE}",
    }


def bundle_checksum(files: list[GenomicFile]) -> str:
    """DRS 1.4 `DrsObject.checksums` of a bundle: the sha-256 of the sorted, concatenated
    hex checksums of its contents."""
    return hashlib.sha256("".join(sorted(f.plaintext_sha256 for f in files)).encode()).hexdigest()


def bundle_json(request: Request, granted: GrantedDataset) -> dict[str, Any]:
    """A `DrsObject` of a dataset: a bundle whose `contents` are its files (no nesting, so
    `expand` changes nothing)."""
    contents: list[dict[str, Any]] = []
    taken: set[str] = set()
    for file in granted.files:
        name, copy = portable_name(file.filename), 1
        while name in taken:  # names must be unique within a bundle (DRS `ContentsObject`)
            copy += 1
            name = f"{portable_name(file.filename)}-{copy}"
        taken.add(name)
        contents.append({"name": name, "id": str(file.pk), "drs_uri": [_drs_uri(request, file.pk)]})
    dataset = granted.dataset
    return {
        "id": str(dataset.pk),
        "name": portable_name(dataset.title),
        "self_uri": _drs_uri(request, dataset.pk),
        "size": sum(f.plaintext_size or 0 for f in granted.files),
        "created_time": _rfc3339(dataset.created_at),
        "checksums": [{"type": "sha-256", "checksum": bundle_checksum(granted.files)}],
        "contents": contents,
        "description": f"Dataset “{dataset.title}”: a bundle of its files; {CHECKSUM_NOTE}",
    }


def _within_visa(request: Request, granted: GrantedFile | GrantedDataset) -> None:
    """A visa authorizes its own dataset only: anything else answers as an unknown id."""
    scope = visa_scope(request)
    if scope is None:
        return
    if isinstance(granted, GrantedFile):
        inside = scope.covers_file(granted.file.pk)
    else:
        inside = granted.dataset.pk == scope.dataset_id
    if not inside:
        raise NotFound(NO_SUCH_OBJECT)


class _AuthenticatedExceptOptions(IsAuthenticated):
    """DRS 1.4 `OptionsObject` has no security: it only says which credentials to send."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method == "OPTIONS" or super().has_permission(request, view)


class _DrsApi(APIView):
    # Bearer first, so a 401 says `WWW-Authenticate: Bearer` (DRS `BearerAuth`).
    authentication_classes = [
        VisaAuthentication,
        BearerTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return drs_exception_handler


@extend_schema(exclude=True)  # documented by the DRS 1.4 OpenAPI, whose error shape differs
class DrsServiceInfoApi(_DrsApi):
    """DRS 1.4 "Service Info" (`GetServiceInfo`): GA4GH service-info 1.0.0 with
    `type = org.ga4gh:drs:1.4.0` and DRS's `maxBulkRequestLength`."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        host = request.get_host().split(":")[0]
        reverse_domain = ".".join(reversed(host.split(".")))
        return Response(
            {
                "id": f"{reverse_domain}.drs",
                "name": "GeneMarket DRS",
                "type": {"group": "org.ga4gh", "artifact": "drs", "version": DRS_VERSION},
                "description": (
                    "Files and datasets granted to you, served Crypt4GH-encrypted to your "
                    "registered key; checksums are of the decrypted files."
                ),
                "organization": {"name": "GeneMarket", "url": request.build_absolute_uri("/")},
                "documentationUrl": request.build_absolute_uri("/api/docs/"),
                "version": settings.SPECTACULAR_SETTINGS["VERSION"],
                # No bulk endpoints (`POST /objects`, `/objects/access`): one id per request.
                "maxBulkRequestLength": 1,
            }
        )


@extend_schema(exclude=True)
class DrsObjectApi(_DrsApi):
    """DRS 1.4 `GetObject` and `OptionsObject`."""

    permission_classes = [_AuthenticatedExceptOptions]

    def get(self, request: Request, object_id: str) -> Response:
        granted = drs_granted_object(researcher=authenticated_user(request), object_id=object_id)
        _within_visa(request, granted)
        if isinstance(granted, GrantedFile):
            return Response(blob_json(request, granted))
        return Response(bundle_json(request, granted))

    # DRF's `options` takes its Request; Django's stubs type View's with an HttpRequest.
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        object_id = str(kwargs["object_id"])
        return Response({"drs_object_id": object_id, "supported_types": ["BearerAuth"]})


@extend_schema(exclude=True)
class DrsAccessUrlApi(_DrsApi):
    """DRS 1.4 `GetAccessURL`: an `AccessURL` whose `url` downloads the Crypt4GH stream for
    the caller's key without further credentials, for DRS_ACCESS_URL_TTL_S seconds."""

    def get(self, request: Request, object_id: str, access_id: str) -> Response:
        researcher = authenticated_user(request)
        granted = drs_granted_object(researcher=researcher, object_id=object_id)
        _within_visa(request, granted)
        if isinstance(granted, GrantedDataset):
            # DRS 1.4 "Working With Bundles": a bundle has no access method of its own.
            raise NotFound(
                "This object is a bundle (a dataset): it has no access method of its own. "
                "Fetch each object of its `contents` by its id."
            )
        if access_id != ACCESS_ID:
            raise NotFound("No such access method.")
        token = drs_access_token_create(researcher=researcher, granted=granted)
        url = request.build_absolute_uri(reverse("drs:download", kwargs={"token": token}))
        return Response({"url": url})


@extend_schema(exclude=True)
class DrsDownloadApi(_DrsApi):
    """Where an access URL points: the grantee's Crypt4GH stream (header + payload), with
    Range and HEAD as the download route. The signed token is the credential."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request, token: str) -> HttpResponseBase:
        grant = drs_access_token_redeem(token=token, byte_range=request.headers.get("Range", ""))
        return grant_download_response(request._request, grant=grant, filename=grant.file.filename)
