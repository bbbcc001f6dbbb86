"""GA4GH htsget 1.3.0 at `/ga4gh/htsget/v1/`, always over Crypt4GH.

- `GET`/`POST reads/{id}` and `variants/{id}` ("Methods": the ticket), with `format`,
  `class=header`, `referenceName`, `start`, `end`, `fields`, `tags`, `notags` (GET) or a
  JSON body with `regions` (POST). `fields`/`tags`/`notags` are accepted and every field is
  returned, as the spec allows ("the server may return more").
- `reads/service-info`, `variants/service-info` ("Service info").
- `blocks/{id}`: where a ticket's URLs point (encrypted segments; the token of the URL's
  `headers` is the credential).

Crypt4GH, as htsget-rs's extension serves it: `encryptionScheme=C4GH` is accepted (and
assumed when absent: plaintext is never served). A ticket's first URL is a `data:` URI of a
Crypt4GH header for the caller's registered key, whose data edit list keeps just the
region's blocks; the next URLs are the stored encrypted 64 KiB segments holding them, and
`data:` URIs of the segments the ticketer sealed for this ticket (the header blocks' last
bytes with the region's first, the region's last bytes with the EOF block). Concatenated
and run through `crypt4gh decrypt`, they are a valid BAM/CRAM/BCF/VCF.

Authentication (htsget 1.3 "Authentication"): `Authorization: Bearer <token>` (API token,
or a GA4GH Passport visa of ours for its dataset), `Token <token>`, or the session. Errors
have the spec's shape `{"htsget": {"error": <name>, "message": ...}}` and statuses.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import BearerTokenAuthentication
from core.api.exception_handler import api_exception_handler
from core.errors import DomainError, NotFound
from genomics import payloads
from genomics.services.tickets import TicketRefused
from genomics.ticketer import Region
from marketplace.api.permissions import authenticated_user
from marketplace.api.visa_auth import VisaAuthentication, visa_scope
from marketplace.selectors.drs import GrantedFile, drs_granted_file
from marketplace.selectors.scope import region_in_scope
from marketplace.services.htsget import htsget_block_redeem, htsget_ticket_create

HTSGET_VERSION = "1.3.0"
CONTENT_TYPE = "application/vnd.ga4gh.htsget.v1.3.0+json; charset=utf-8"
FORMATS = {"reads": ("BAM", "CRAM"), "variants": ("VCF", "BCF")}
STATUS = {
    "InvalidAuthentication": 401,
    "PermissionDenied": 403,
    "NotFound": 404,
    "PayloadTooLarge": 413,
    "UnsupportedFormat": 400,
    "InvalidInput": 400,
    "InvalidRange": 400,
}
STREAM_CHUNK = 1024 * 1024


class HtsgetError(DomainError):
    """An htsget error (htsget 1.3 "Errors"): `name` and the status the spec gives it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.status = STATUS.get(name, 400)
        self.code = name


# Regions of one POST (htsget 1.3 sets no limit): the ticket service reads one request line
# of at most genomics.ticketer.MAX_REQUEST bytes (1 MiB), which 1,000 regions fit many times.
MAX_REGIONS = 1000


def htsget_error_shape(status: int, code: str, message: str) -> dict[str, Any]:
    """The spec's error body; the JSON_ERROR_SHAPES builder of /ga4gh/htsget/."""
    names = {401: "InvalidAuthentication", 403: "PermissionDenied", 404: "NotFound"}
    if status >= 500:
        # htsget 1.3 names no server error; a 4xx name would tell the client to change its
        # request, which cannot help (htsget-rs answers InternalError the same way).
        name = "ServiceUnavailable" if status == 503 else "InternalError"
    else:
        name = code if code in STATUS else names.get(status, "InvalidInput")
    return {"htsget": {"error": name, "message": message}}


def htsget_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, TicketRefused):
        exc = HtsgetError(exc.code, exc.message)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        code = "InvalidAuthentication"
    else:
        code = exc.name if isinstance(exc, HtsgetError) else ""
    response = api_exception_handler(exc, context)
    if response is not None:
        error = response.data.get("error", {}) if response.data else {}
        response.data = htsget_error_shape(
            response.status_code, code, error.get("message", "") or str(exc)
        )
    return response


class _HtsgetApi(APIView):
    # Visas and bearer tokens first, so a 401 says `WWW-Authenticate: Bearer`.
    authentication_classes = [
        VisaAuthentication,
        BearerTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return htsget_exception_handler


def _integer(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise HtsgetError("InvalidInput", f"{name} must be an integer.") from None
    if number < 0:
        raise HtsgetError("InvalidRange", f"{name} must not be negative.")
    return number


def _region(reference: object, start: object, end: object) -> Region:
    if not isinstance(reference, str) or not reference:
        if start is not None or end is not None:
            raise HtsgetError("InvalidInput", "start and end need a referenceName.")
        raise HtsgetError("InvalidInput", "referenceName is missing.")
    if reference == "*":
        if start is not None or end is not None:
            raise HtsgetError("InvalidInput", "start and end cannot go with referenceName=*.")
        raise HtsgetError(
            "InvalidInput", "Unplaced unmapped reads (referenceName=*) are not served by region."
        )
    low = _integer(start, "start") if start is not None else None
    high = _integer(end, "end") if end is not None else None
    if low is not None and high is not None and low > high:
        raise HtsgetError("InvalidRange", "start is greater than end.")
    return (reference, low, high)


def _query(request: Request) -> tuple[str | None, str | None, list[Region] | None, str | None]:
    """(format, class, regions or None for all, encryptionScheme) of a GET or a POST."""
    if request.method == "POST":
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise HtsgetError("InvalidInput", "The body must be a JSON object.")
        regions_in = body.get("regions")
        regions: list[Region] | None = None
        if regions_in is not None:
            if not isinstance(regions_in, list) or not regions_in:
                raise HtsgetError("InvalidInput", "regions must be a non-empty list.")
            if len(regions_in) > MAX_REGIONS:
                raise HtsgetError(
                    "InvalidInput",
                    f"At most {MAX_REGIONS} regions per request: merge neighbouring regions "
                    "or ask in several requests.",
                )
            regions = []
            for item in regions_in:
                if not isinstance(item, dict):
                    raise HtsgetError("InvalidInput", "Each region must be an object.")
                regions.append(
                    _region(item.get("referenceName"), item.get("start"), item.get("end"))
                )
        scheme = request.query_params.get("encryptionScheme") or body.get("encryptionScheme")
        klass = body.get("class")
        return body.get("format"), klass, regions, scheme
    params = request.query_params
    reference = params.get("referenceName")
    start, end = params.get("start"), params.get("end")
    regions = None
    if reference is not None or start is not None or end is not None:
        regions = [_region(reference, start, end)]
    return params.get("format"), params.get("class"), regions, params.get("encryptionScheme")


def _granted(request: Request, object_id: str) -> GrantedFile:
    researcher = authenticated_user(request)
    granted = drs_granted_file(researcher=researcher, object_id=object_id)
    scope = visa_scope(request)
    if granted is None or (scope is not None and not scope.covers_file(granted.file.pk)):
        raise HtsgetError("NotFound", "No such file among your grants.")
    return granted


def _ticket(request: Request, endpoint: str, object_id: str) -> Response:
    fmt, klass, regions, scheme = _query(request)
    if scheme is not None and scheme.upper() != "C4GH":
        raise HtsgetError("UnsupportedFormat", "Only encryptionScheme=C4GH is served.")
    if klass is not None and klass != "header":
        raise HtsgetError("InvalidInput", "class must be 'header' when given.")
    try:
        granted = _granted(request, object_id)
    except NotFound:
        raise HtsgetError("NotFound", "No such file among your grants.") from None
    file_format = granted.file.format
    if file_format not in FORMATS[endpoint]:
        raise HtsgetError(
            "UnsupportedFormat",
            f"This is a {file_format or 'non-genomic'} file; /{endpoint}/ serves "
            f"{' and '.join(FORMATS[endpoint])}.",
        )
    if fmt is not None and str(fmt).upper() != file_format:
        raise HtsgetError(
            "UnsupportedFormat", f"This file is {file_format}; it is not converted to {fmt}."
        )
    # A tier's region object holds only its regions: another region is not in the grant.
    for reference, start, end in regions or []:
        if not region_in_scope(granted.file, reference_name=reference, start=start, end=end):
            raise HtsgetError(
                "PermissionDenied",
                "This region is outside the regions of your grant (a region tier).",
            )
    parts, tokens = htsget_ticket_create(
        researcher=authenticated_user(request),
        granted=granted,
        regions=regions,
        header_only=klass == "header",
    )
    blocks_url = request.build_absolute_uri(
        reverse("htsget:blocks", kwargs={"object_id": granted.file.pk})
    )
    urls: list[dict[str, Any]] = [
        {"url": "data:;base64," + base64.b64encode(parts.header).decode(), "class": "header"}
    ]
    tokens_left = iter(tokens)
    for piece in parts.pieces:
        if isinstance(piece, bytes):  # segments the ticketer sealed for this ticket
            urls.append({"url": "data:;base64," + base64.b64encode(piece).decode()})
            continue
        start, end = piece
        urls.append(
            {
                "url": blocks_url,
                "headers": {
                    "Authorization": f"Bearer {next(tokens_left)}",
                    "Range": f"bytes={start}-{end - 1}",
                },
            }
        )
    if klass == "header":
        for url in urls:
            url["class"] = "header"
    else:
        for url in urls[1:]:
            url["class"] = "body"
    response = Response(
        {"htsget": {"format": file_format, "urls": urls}}, content_type=CONTENT_TYPE
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _service_info(request: Request, endpoint: str) -> Response:
    host = request.get_host().split(":")[0]
    reverse_domain = ".".join(reversed(host.split(".")))
    return Response(
        {
            "id": f"{reverse_domain}.htsget.{endpoint}",
            "name": f"GeneMarket htsget ({endpoint})",
            "type": {"group": "org.ga4gh", "artifact": "htsget", "version": HTSGET_VERSION},
            "description": (
                "Regions of the files granted to you, as Crypt4GH for your registered key "
                "(encryptionScheme=C4GH, always): decrypt the concatenated URLs with "
                "`crypt4gh decrypt`."
            ),
            "organization": {"name": "GeneMarket", "url": request.build_absolute_uri("/")},
            "documentationUrl": request.build_absolute_uri("/api/docs/"),
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "htsget": {
                "datatype": endpoint,
                "formats": list(FORMATS[endpoint]),
                "fieldsParametersEffective": False,
                "tagsParametersEffective": False,
            },
        }
    )


@extend_schema(exclude=True)  # documented by the htsget 1.3 OpenAPI
class HtsgetReadsTicketApi(_HtsgetApi):
    """htsget 1.3 "Reads": a ticket for a BAM or CRAM file of the caller's live grants."""

    def get(self, request: Request, object_id: str) -> Response:
        return _ticket(request, "reads", object_id)

    def post(self, request: Request, object_id: str) -> Response:
        return _ticket(request, "reads", object_id)


@extend_schema(exclude=True)
class HtsgetVariantsTicketApi(_HtsgetApi):
    """htsget 1.3 "Variants": a ticket for a bgzipped VCF or BCF file."""

    def get(self, request: Request, object_id: str) -> Response:
        return _ticket(request, "variants", object_id)

    def post(self, request: Request, object_id: str) -> Response:
        return _ticket(request, "variants", object_id)


@extend_schema(exclude=True)
class HtsgetServiceInfoApi(_HtsgetApi):
    """htsget 1.3 "Service info" (GA4GH service-info 1.0.0 + the `htsget` object)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    endpoint = "reads"

    def get(self, request: Request) -> Response:
        return _service_info(request, self.endpoint)


@extend_schema(exclude=True)
class HtsgetBlocksApi(_HtsgetApi):
    """A ticket URL: the payload bytes its signed token allows (whole encrypted segments),
    all of them or the `Range` the ticket's headers name."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        # Without an authenticator DRF would turn NotAuthenticated into 403; htsget 1.3.0
        # answers InvalidAuthentication with 401 (and the ticket's token is a bearer token).
        return "Bearer"

    def get(self, request: Request, object_id: str) -> HttpResponseBase:
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise drf_exceptions.NotAuthenticated("Send the headers the ticket gives.")
        allowed = htsget_block_redeem(token=parts[1], file_id=object_id)
        start, end = allowed.start, allowed.end
        wanted = request.headers.get("Range")
        if wanted:
            try:
                unit, spec = wanted.split("=", 1)
                first, last = spec.split("-", 1)
                start, end = int(first), int(last) + 1
            except ValueError:
                raise HtsgetError("InvalidRange", "Range must be bytes=first-last.") from None
            if unit.strip() != "bytes" or start < allowed.start or end > allowed.end:
                raise HtsgetError("InvalidRange", "This URL allows only the ticket's range.")
        file_parts = [(p.payload_offset, p.size, p.storage_name) for p in allowed.file.parts.all()]
        body = payloads.read_range(file_parts, start, end, chunk=STREAM_CHUNK)
        response: HttpResponseBase = StreamingHttpResponse(
            body, status=206 if wanted else 200, content_type="application/octet-stream"
        )
        response["Content-Length"] = str(end - start)
        response["Cache-Control"] = "private, no-store"
        if wanted:
            response["Content-Range"] = f"bytes {start}-{end - 1}/{allowed.file.payload_size}"
        return response


class HtsgetVariantsServiceInfoApi(HtsgetServiceInfoApi):
    endpoint = "variants"
