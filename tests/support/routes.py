"""The routes the project actually serves, read from the URL configuration and the OpenAPI
schema, so authorization tests cover every route without anyone having to list them by hand:
a route added without an entry in a test's table fails that test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

# The methods a view serves when its class defines a handler for them. OPTIONS is DRF's own
# metadata answer for every view, and an implicit HEAD of a GET view is the GET itself.
METHODS = ("get", "post", "put", "patch", "delete", "head")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    path: str  # "/api/v1/access-requests/{request_id}", parameters as the schema names them
    namespace: str | None
    name: str | None
    view: object  # the resolved callback
    view_class: type | None  # the class behind `as_view()`, None for a function view

    @property
    def object_scoped(self) -> bool:
        """Whether the route names an object by id (and so has owners and strangers)."""
        return "{" in self.path

    def methods(self) -> frozenset[str]:
        """The upper-case methods the view class defines handlers for (empty for functions:
        their methods are known only to their decorators)."""
        if self.view_class is None:
            return frozenset()
        return frozenset(m.upper() for m in METHODS if hasattr(self.view_class, m))


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str, namespace: str | None
) -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
            )
            continue
        route = str(pattern.pattern)
        if route.startswith("^"):
            path = "/" + prefix + route  # a regex catch-all keeps its regex: never a real route
        else:
            path = "/" + prefix + _CONVERTER.sub(r"{\1}", route)
        callback = pattern.callback
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        yield Route(path, namespace, pattern.name, callback, view_class)


def all_routes() -> list[Route]:
    """Every route of the root URL configuration, in resolution order."""
    return list(_walk(get_resolver().url_patterns, "", None))


def api_operations() -> set[tuple[str, str]]:
    """(METHOD, path) for every operation of the API views (DRF and Django class views
    outside the web UI and the admin), e.g. ("POST", "/api/v1/access-requests/{request_id}/
    permit-call")."""
    operations: set[tuple[str, str]] = set()
    for route in all_routes():
        if route.namespace in (*WEB_NAMESPACES, "admin") or route.path.startswith("/^"):
            continue
        assert route.view_class is not None, f"{route.path} is not a class view"
        operations |= {(method, route.path) for method in route.methods()}
    return operations


def schema_operations() -> set[tuple[str, str]]:
    """(METHOD, path) for every operation the OpenAPI schema documents."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    }


# The namespaces of server-rendered pages and their htmx parts: the marketplace's own and
# the catalogue's variant search (app `discovery`).
WEB_NAMESPACES = ("web", "discovery")


def web_routes() -> dict[str, Route]:
    """The web UI's routes by URL name ("chain", "request-approve", ...)."""
    routes = {route.name: route for route in all_routes() if route.namespace in WEB_NAMESPACES}
    assert None not in routes, "every web route needs a name"
    return {name: route for name, route in routes.items() if name is not None}
