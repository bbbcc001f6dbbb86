"""The worker's htsget ticket service, and the web's client of it.

Tickets are made where the archive key is (README "htsget", choice (a)): the index stays
encrypted, and the edit list packet is written with the archive key as writer. A Celery
round trip would cost the broker's polling interval (a second on the embedded filesystem
broker), far over htsget's latency target, so the ticketer is a small worker-side process
(`manage.py htsget_ticketer`, started by `make run` with the worker's secrets) answering on
a Unix socket that only the platform's own user can open (mode 0600). One JSON line in,
one JSON line out; requests are served one at a time on one database connection.

The web sends what it has checked (the file, the researcher's registered key, the
regions); the ticketer trusts none of it beyond what it re-derives: it answers only for a
key that holds a worker-made grant of the file (genomics.services.tickets.ticket_build).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import socketserver
from pathlib import Path

from django.conf import settings
from django.db import connections

from core.errors import ServiceUnavailable
from genomics.services.tickets import TicketParts, TicketRefused, ticket_build

logger = logging.getLogger(__name__)

MAX_REQUEST = 1024 * 1024  # a POST of marketplace.ga4gh.htsget.MAX_REGIONS regions fits
Region = tuple[str, int | None, int | None]


def socket_path() -> Path:
    return Path(settings.HTSGET_TICKETER_SOCKET)


def _answer(request: dict[str, object]) -> dict[str, object]:
    try:
        regions = request.get("regions")
        parts = ticket_build(
            file_id=str(request["file"]),
            recipient_public=base64.b64decode(str(request["recipient"])),
            regions=[(str(r[0]), r[1], r[2]) for r in regions]
            if isinstance(regions, list)
            else None,
            header_only=bool(request.get("header_only")),
        )
    except TicketRefused as exc:
        return {"error": exc.code, "message": exc.message}
    pieces: list[dict[str, object]] = [
        {"range": list(piece)}
        if isinstance(piece, tuple)
        else {"data": base64.b64encode(piece).decode()}
        for piece in parts.pieces
    ]
    return {
        "header": base64.b64encode(parts.header).decode(),
        "pieces": pieces,
        "plaintext_ranges": parts.plaintext_ranges,
        "format": parts.format,
    }


def _drop_broken_connections() -> None:
    """Close this thread's database connections that no longer work, and keep the others.

    The ticketer serves one request at a time on one connection for its whole life: a new
    connection (SQLite registers its functions, PostgreSQL authenticates) costs more than a
    ticket's one query. Django's `close_old_connections` would also close it after every
    ticket where CONN_MAX_AGE is 0, SQLite's default; a connection a restarted database
    broke is still replaced before the next ticket."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(MAX_REQUEST)
        try:
            _drop_broken_connections()
            answer = _answer(json.loads(line))
        except Exception:  # one bad request must not stop the service
            logger.exception("htsget ticket failed")
            answer = {"error": "ServerError", "message": "The ticket could not be made."}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


def serve(path: Path | None = None) -> None:
    """Serve tickets on the Unix socket until killed (worker side)."""
    target = path or socket_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    previous = os.umask(0o177)  # the socket is created 0600: the platform's user only
    try:
        server = socketserver.UnixStreamServer(str(target), _Handler)
    finally:
        os.umask(previous)
    logger.info("htsget ticketer listening on %s", target)
    with server:
        server.serve_forever()


def ticket_request(
    *,
    file_id: str,
    recipient_public: bytes,
    regions: list[Region] | None,
    header_only: bool,
) -> TicketParts:
    """Ask the ticketer for a ticket's parts (web side). Raises TicketRefused with the
    htsget error name, or ServiceUnavailable when the ticketer does not answer."""
    request = {
        "file": file_id,
        "recipient": base64.b64encode(recipient_public).decode(),
        "regions": regions,
        "header_only": header_only,
    }
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(settings.HTSGET_TICKETER_TIMEOUT_S)
            conn.connect(str(socket_path()))
            conn.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                piece = conn.recv(65536)
                if not piece:
                    break
                data += piece
        answer = json.loads(data)
    except (OSError, ValueError) as exc:
        logger.warning("htsget ticketer unavailable: %s", exc)
        raise ServiceUnavailable("The htsget ticket service is not answering; try again.") from exc
    if "error" in answer:
        if answer["error"] == "ServerError":
            raise ServiceUnavailable(str(answer["message"]))
        raise TicketRefused(str(answer["error"]), str(answer["message"]))
    return TicketParts(
        header=base64.b64decode(answer["header"]),
        pieces=[
            (int(piece["range"][0]), int(piece["range"][1]))
            if "range" in piece
            else base64.b64decode(piece["data"])
            for piece in answer["pieces"]
        ],
        plaintext_ranges=[(int(a), int(b)) for a, b in answer["plaintext_ranges"]],
        format=str(answer["format"]),
    )
