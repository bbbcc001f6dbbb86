"""schemathesis against the served OpenAPI schema: every operation, generated inputs,
called as each kind of user. No answer may be a 5xx, and every answer must be one the
schema documents, with the documented content type and body shape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketplace.models import Role, User
from tests.factories import UserFactory, ready_file

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz, pytest.mark.integration]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROLES = (None, Role.DONOR, Role.RESEARCHER, Role.REVIEWER, Role.ADMIN)
# `make test`: 6 examples per operation, derandomized (hypothesis seeds them from a hash of
# the test function: the same inputs every run, so a failure always reproduces).
# `make fuzz` sets FUZZ_EXAMPLES and draws that many new random inputs per operation.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
DERANDOMIZE = "FUZZ_EXAMPLES" not in os.environ
# tus PATCH bodies are raw bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture
def api_schema(db: None, archive_key: object, chain_db: object) -> Iterator[Any]:
    # Like Django's test client: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db: None) -> dict[Role | None, dict[str, str]]:
    headers: dict[Role | None, dict[str, str]] = {None: {}}
    for role in ROLES[1:]:
        user = cast(User, UserFactory(role=role))
        if role == Role.DONOR:
            ready_file(user)
        token = Token.objects.create(user=user)
        headers[role] = {"Authorization": f"Token {token.key}"}
    return headers


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_as_every_role(
    case: Any, tokens: dict[Role | None, dict[str, str]]
) -> None:
    for role in ROLES:
        case.call_and_validate(headers={**(case.headers or {}), **tokens[role]}, checks=CHECKS)
