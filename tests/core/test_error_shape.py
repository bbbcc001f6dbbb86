"""Every 4xx has the body of API.md, and bad input never gives a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from marketplace.models import Role

pytestmark = pytest.mark.django_db


def assert_error(response: object, status: int, code: str) -> dict:
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_parse_error(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/auth/register", "{bad", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_missing_and_wrong_fields_are_listed(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/auth/register", {"username": "x", "email": "nope"}, format="json"
    )
    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"username", "email", "password", "role"}


def test_wrong_json_type_is_a_validation_error(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/auth/register", [1, 2], format="json")
    assert_error(response, 400, "validation_error")


def test_unsupported_media_type(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/auth/token", "username=a", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_api_path_is_not_found(api_client: APIClient) -> None:
    assert_error(api_client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_refused(api_client: APIClient) -> None:
    assert_error(api_client.delete("/api/v1/auth/token"), 405, "method_not_allowed")


def test_bad_token_is_an_authentication_failure(api_client: APIClient) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(api_client.get("/api/v1/me"), 401, "authentication_failed")


def test_missing_credentials(api_client: APIClient) -> None:
    assert_error(api_client.get("/api/v1/me"), 401, "not_authenticated")


def test_throttled_answers_with_retry_after(api_client: APIClient, settings) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "register": "2/minute",
        },
    }
    for _ in range(2):
        api_client.post("/api/v1/auth/register", {}, format="json")
    response = api_client.post("/api/v1/auth/register", {}, format="json")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


def test_role_refusal_has_the_same_shape(client_for) -> None:
    """A role check refusing a user renders the error shape with 403."""
    from rest_framework.test import APIRequestFactory, force_authenticate
    from rest_framework.views import APIView

    from marketplace.api.permissions import IsReviewer

    class ReviewerOnly(APIView):
        permission_classes = [IsReviewer]

        def get(self, request):  # pragma: no cover - never reached by a researcher
            raise AssertionError

    _, user = client_for(Role.RESEARCHER)
    request = APIRequestFactory().get("/x")
    force_authenticate(request, user=user)
    response = ReviewerOnly.as_view()(request)
    assert response.status_code == 403
    assert response.data["error"]["code"] == "permission_denied"
