"""Shared fixtures: API clients per role and real service processes."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from celery import Task
from celery.signals import task_failure
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from marketplace.models import Role, User
from tests.factories import UserFactory
from tests.support.processes import AnvilNode, RedisServer
from tests.support.stack import LiveStack, running_stack


@dataclass(frozen=True)
class TaskFailure:
    task: str
    exception: BaseException
    traceback: str


_task_failures: list[TaskFailure] = []


def _record_task_failure(
    sender: Task | None = None,
    exception: BaseException | None = None,
    einfo: object = None,
    **_: object,
) -> None:
    name = getattr(sender, "name", repr(sender))
    _task_failures.append(TaskFailure(name, exception or Exception(), str(einfo)))


# Tasks a test runs in-process (`task_always_eager`) store no result (task_ignore_result)
# and, with Celery's default, their exceptions stay inside the eager result nobody reads: a
# test could pass over a task that died. Every final failure sends `task_failure` (a retry
# does not: an eager retry runs again at once, as `autoretry_for` asks), so each is caught
# here. Eager propagation (task_eager_propagates) is no answer: it raises Celery's `Retry`
# out of the first attempt of every retrying task.
task_failure.connect(_record_task_failure, weak=False)


@pytest.fixture
def task_failures() -> list[TaskFailure]:
    """The tasks that failed in this test, for a test that makes one fail on purpose: it
    then asserts on them itself."""
    return _task_failures


def pytest_runtest_setup(item: pytest.Item) -> None:
    _task_failures.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a test in which a task it ran (in its fixtures or its body) failed unseen."""
    result = yield
    if _task_failures and "task_failures" not in getattr(item, "fixturenames", ()):
        failed = "\n\n".join(f"{f.task}: {f.exception!r}\n{f.traceback}" for f in _task_failures)
        pytest.fail(f"a Celery task failed during this test:\n{failed}", pytrace=False)
    return result


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
