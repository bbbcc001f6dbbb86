"""The guard in tests/conftest.py: a task a test runs in-process that fails is seen, so the
test fails (or, when it asked for `task_failures`, can assert on it); a task that retries
and then succeeds is no failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.celery import app as celery_app

attempts: list[int] = []


@celery_app.task(name="tests.core.broken")
def broken() -> None:
    raise ValueError("a bug in a task")


@celery_app.task(
    name="tests.core.flaky", autoretry_for=(ConnectionError,), max_retries=3, retry_backoff=False
)
def flaky(failures: int) -> None:
    attempts.append(1)
    if len(attempts) <= failures:
        raise ConnectionError("the node is away")


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    attempts.clear()
    yield
    celery_app.conf.task_always_eager = False


def test_a_task_that_fails_in_process_is_seen(eager, task_failures) -> None:
    broken.delay()  # Celery keeps the exception in an eager result nobody reads
    assert [(f.task, repr(f.exception)) for f in task_failures] == [
        ("tests.core.broken", "ValueError('a bug in a task')")
    ]
    assert "a bug in a task" in task_failures[0].traceback


def test_a_task_that_retries_and_succeeds_is_no_failure(eager, task_failures) -> None:
    flaky.delay(2)
    assert len(attempts) == 3 and task_failures == []


def test_a_task_that_gives_up_is_a_failure(eager, task_failures) -> None:
    flaky.delay(10)
    assert len(attempts) == 4  # the first try and max_retries more
    assert [f.task for f in task_failures] == ["tests.core.flaky"]


def test_the_guard_fails_a_test_that_did_not_ask_for_the_failures(eager, task_failures) -> None:
    from types import SimpleNamespace

    from tests import conftest

    for fixturenames, fails in (([], True), (["task_failures"], False)):
        task_failures.clear()
        hook = conftest.pytest_runtest_call(SimpleNamespace(fixturenames=fixturenames))  # type: ignore[arg-type]
        next(hook)  # the test body runs here
        broken.delay()
        expected: type[BaseException] = pytest.fail.Exception if fails else StopIteration
        with pytest.raises(expected):
            hook.send(None)
    task_failures.clear()  # seen and checked above
