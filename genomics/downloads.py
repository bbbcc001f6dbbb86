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

from genomics import payloads
from genomics.models import Grant

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


def _stream(grant: Grant, start: int, end: int) -> Iterator[bytes]:
    header = bytes(grant.header)
    if start < len(header):
        yield header[start : min(end, len(header))]
    payload_start = max(start - len(header), 0)
    payload_end = end - len(header)
    if payload_end > payload_start:
        parts = [(p.payload_offset, p.size, p.storage_name) for p in grant.file.parts.all()]
        yield from payloads.read_range(parts, payload_start, payload_end, chunk=STREAM_CHUNK)


def grant_download_response(
    request: HttpRequest, *, grant: Grant, filename: str
) -> HttpResponseBase:
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
    body: Iterator[bytes] = iter(()) if request.method == "HEAD" else _stream(grant, start, end)
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
