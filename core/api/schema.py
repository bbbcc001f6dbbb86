"""drf-spectacular hooks that document what every operation shares."""

from __future__ import annotations

from typing import Literal

import drf_spectacular.openapi
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}


def add_error_responses(result: dict, generator: object, request: object, public: bool) -> dict:
    """Declare the shared error body for every 4xx of every operation.

    Clients and schemathesis then know that any 4xx carries `Error`, without each view
    listing the statuses it may raise.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["responses"].setdefault(
                "4XX",
                {
                    "description": "The request was refused; the body says why.",
                    "content": {"application/json": {"schema": reference}},
                },
            )
    return result


class AutoSchema(drf_spectacular.openapi.AutoSchema):
    """Names nested serializers after their view: `TokenApi.InputSerializer` -> `TokenInput`.

    Views keep their `InputSerializer`/`OutputSerializer` nested (HackSoft style), so the
    class names repeat; without this every endpoint's components would collide.
    """

    def get_serializer_name(
        self, serializer: serializers.Serializer, direction: Literal["request", "response"]
    ) -> str:
        cls = type(serializer)
        owner, _, name = cls.__qualname__.rpartition(".")
        if not owner:
            return str(super().get_serializer_name(serializer, direction))
        owner = owner.split(".")[-1].removesuffix("Api")
        return owner + name.removesuffix("Serializer")


def paginated(serializer: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The schema of a page from DRF's PageNumberPagination around `serializer`, for views
    that paginate by hand (drf-spectacular only sees the pagination of generic views)."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
        },
    )
