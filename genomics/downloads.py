"""Streaming a grant: the recipient's header followed by the shared payload.

No view checks access here: the caller (marketplace) has authorised the request and hands
over the Grant. Supports HEAD and single-range requests (RFC 9110 §14), with an exact
Content-Length and a strong ETag over the grant header and the payload checksum, so a
download cut halfway resumes with `curl -C -` or a download manager.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header

from core.errors import Conflict
from genomics import payloads
from genomics.models import GenomicFile, Grant, PayloadPart

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
STREAM_CHUNK = 1024 * 1024


def grant_etag(grant: Grant) -> str:
    digest = hashlib.sha256(bytes(grant.header) + grant.file.payload_sha256.encode()).hexdigest()
    return f'"{digest[:32]}"'


def _parse_range(header: str, total: int) -> tuple[int, int] | None | str:
    """(start, end exclusive) for one satisfiable range; None to send everything;
    "unsatisfiable" for a range past the end."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # several ranges or another unit: a full 200 is a valid answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(total - length, 0), total
    start = int(first)
    end = min(int(last) + 1, total) if last else total
    if start >= total or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


Parts = list[tuple[int, int, str]]


def _with_parts(grant: Grant) -> tuple[Grant, Parts]:
    """The grant's header and its file's payload parts as of one moment.

    Storing a file bgzipped (genomics.services.recompress) switches the file to a new
    payload and every grant to a new header in one transaction; a download reads the
    grant (with its file) in one statement and the parts in another. The file's payload
    key changes with every switch and never comes back, so finding it unchanged after
    the parts were read proves no switch came between; otherwise the grant is read again.
    The parts are then kept for the whole response: a switch during a download leaves it
    on the payload it started with (kept in storage for RECOMPRESS_REPLACED_PAYLOAD_KEEP_S).
    """
    for _ in range(3):
        parts = list(
            PayloadPart.objects.filter(file_id=grant.file_id).values_list(
                "payload_offset", "size", "storage_name"
            )
        )
        now = GenomicFile.objects.filter(pk=grant.file_id).values_list("payload_key", flat=True)
        if list(now) == [grant.file.payload_key]:
            return grant, parts
        grant = Grant.objects.select_related("file").get(pk=grant.pk)
    raise Conflict("The file is being replaced right now; try again in a moment.")


def _stream(header: bytes, parts: Parts, start: int, end: int) -> Iterator[bytes]:
    if start < len(header):
        yield header[start : min(end, len(header))]
    payload_start = max(start - len(header), 0)
    payload_end = end - len(header)
    if payload_end > payload_start:
        yield from payloads.read_range(parts, payload_start, payload_end, chunk=STREAM_CHUNK)


def grant_download_response(
    request: HttpRequest, *, grant: Grant, filename: str
) -> HttpResponseBase:
    grant, parts = _with_parts(grant)
    total = len(bytes(grant.header)) + grant.file.payload_size
    etag = grant_etag(grant)
    wanted: tuple[int, int] | None | str = None
    if_range = request.headers.get("If-Range")
    if "Range" in request.headers and (if_range is None or if_range == etag):
        wanted = _parse_range(request.headers["Range"], total)
    if wanted == "unsatisfiable":
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{total}"
        return refusal
    start, end = wanted if isinstance(wanted, tuple) else (0, total)
    body: Iterator[bytes] = (
        iter(()) if request.method == "HEAD" else _stream(bytes(grant.header), parts, start, end)
    )
    response: HttpResponseBase = StreamingHttpResponse(
        body,
        status=206 if isinstance(wanted, tuple) else 200,
        content_type="application/octet-stream",
    )
    response["Content-Length"] = str(end - start)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-store"
    disposition = content_disposition_header(True, f"{filename}.c4gh")
    response["Content-Disposition"] = disposition or "attachment"
    if isinstance(wanted, tuple):
        response["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
    return response
