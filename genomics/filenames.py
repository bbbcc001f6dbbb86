"""Filenames as donors send them: kept for display only, never used as a storage path."""

from __future__ import annotations

import unicodedata

from core.errors import ValidationError

MAX_FILENAME = 255


def clean_filename(raw: str) -> str:
    """Refuse names that try to climb folders or hide characters; keep the rest as typed.

    Storage paths are random keys, so a name cannot reach the disk; refusing `../` and
    control characters anyway keeps logs, downloads and `Content-Disposition` safe.
    """
    name = raw.strip()
    if not name:
        raise ValidationError("The file needs a name.", fields={"filename": ["Required."]})
    if len(name) > MAX_FILENAME:
        raise ValidationError(
            "The filename is too long.",
            fields={"filename": [f"At most {MAX_FILENAME} characters."]},
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in name):
        raise ValidationError(
            "The filename contains control characters.",
            fields={"filename": ["Remove control characters."]},
        )
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ValidationError(
            "The filename must not contain a path.",
            fields={"filename": ["Use the file's name only, without folders."]},
        )
    return name
