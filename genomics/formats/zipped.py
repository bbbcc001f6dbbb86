"""A ZIP archive holding one file: how 23andMe and AncestryDNA ship raw data.

The member is inflated as a stream (stream-unzip reads the local headers in order, never
the central directory at the end), so no plaintext reaches disk. Refused: an archive with
more than one file, a member whose name is a path outside the archive (absolute or with
`..`; nothing is ever written, but such an archive is not what a company ships), an
encrypted archive, and a member larger than `max_bytes` (a ZIP bomb). The member's name is
never repeated in a message or in metadata: 23andMe's names hold the customer's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import stream_unzip

from genomics.formats.ends import truncated
from genomics.formats.errors import FormatError

ZIP_MAGIC = b"PK\x03\x04"


def only_member(chunks: Iterable[bytes], *, max_bytes: int) -> Iterator[bytes]:
    """The bytes of the archive's one file, checked (CRC-32 and sizes) by stream-unzip.

    Raises `FormatError` for what the module doc lists and for a damaged or truncated
    archive; the check for a second member runs once the first is read to its end.
    """
    members = stream_unzip.stream_unzip(
        chunks, allowed_encryption_mechanisms=(stream_unzip.NO_ENCRYPTION,)
    )
    try:
        first = next(members, None)
        if first is None:
            raise FormatError("The ZIP archive holds no file.")
        name, _size, data = first
        _check_name(name)
        total = 0
        for chunk in data:
            total += len(chunk)
            if total > max_bytes:
                raise FormatError(
                    f"The file inside the ZIP archive is larger than {max_bytes:,} bytes, the "
                    "largest file the vault takes."
                )
            yield chunk
        if next(members, None) is not None:
            raise FormatError(
                "The ZIP archive holds more than one file: unzip it first and upload each "
                "file on its own."
            )
    except (stream_unzip.PasswordError, stream_unzip.MissingPasswordError) as exc:
        raise FormatError(
            "The ZIP archive is password-protected: unzip it first and upload the file inside."
        ) from exc
    except stream_unzip.TruncatedDataError as exc:
        raise truncated("ZIP", "it ends before its last file does") from exc
    except stream_unzip.UnzipError as exc:
        raise FormatError(
            f"The ZIP archive cannot be read ({type(exc).__name__}): unzip it first and "
            "upload the file inside."
        ) from exc


def _check_name(raw: bytes) -> None:
    name = raw.decode("utf-8", errors="replace").replace("\\", "/")
    if name.endswith("/"):
        raise FormatError("The ZIP archive holds a folder, not a file: unzip it first.")
    if name.startswith("/") or ".." in name.split("/") or (len(name) > 1 and name[1] == ":"):
        raise FormatError(
            "The file inside the ZIP archive is named with a path outside the archive; "
            "unzip it first and upload the file itself."
        )
