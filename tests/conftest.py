"""Shared fixtures: API clients per role and real service processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace.models import Role, User
from tests.factories import UserFactory
from tests.support.processes import AnvilNode, RedisServer
from tests.support.stack import LiveStack, running_stack


@pytest.fixture(autouse=True)
def _isolated_state(settings: object, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own storage folder and an empty cache (throttle counters)."""
    settings.MEDIA_ROOT = tmp_path / "storage"  # type: ignore[attr-defined]
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "storage")},
        },
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def _make(role: Role = Role.RESEARCHER, **kwargs: object) -> User:
        return cast(User, UserFactory(role=role, **kwargs))

    return _make


@pytest.fixture
def client_for(make_user: Callable[..., User]) -> Callable[[Role], tuple[APIClient, User]]:
    """An API client authenticated by token as a new user of the given role."""

    def _client(role: Role) -> tuple[APIClient, User]:
        user = make_user(role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client, user

    return _client


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anvil_node(tmp_path: Path) -> Iterator[AnvilNode]:
    node = AnvilNode(tmp_path)
    node.start()
    yield node
    node.stop()


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[LiveStack]:
    """The whole system as `make run` starts it, on PostgreSQL and a private Redis, for a
    test that changes it (its chain, its services)."""
    with running_stack(tmp_path) as live:
        yield live


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One live system for the tests that only add their own users and data to it (each
    start costs seconds): the acceptance flow, the browser journeys, a killed worker."""
    with running_stack(tmp_path_factory.mktemp("shared-stack")) as live:
        yield live
