"""Structured logs: a request id on every request's lines, the task id on a task's lines,
and JSON lines in production."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest
from django.test import Client

from config.settings.base import logging_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Route the root logger through the production JSON configuration into a buffer."""
    stream = io.StringIO()
    config = logging_config("json", "INFO")
    config["handlers"]["console"]["stream"] = stream  # type: ignore[index]
    previous = logging.getLogger().handlers[:]
    logging.config.dictConfig(config)
    yield stream
    logging.getLogger().handlers[:] = previous


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_request_id_is_returned_and_logged(client: Client, json_log: io.StringIO) -> None:
    response = client.get("/api/v1/no-such-thing")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    records = [r for r in lines(json_log) if r["logger"] == "django.request"]
    assert records and records[-1]["request_id"] == request_id
    assert {"time", "level", "logger", "message", "task_id"} <= set(records[-1])


def test_a_callers_request_id_is_kept(client: Client) -> None:
    given = "0123456789abcdef0123456789abcdef"
    assert client.get("/", HTTP_X_REQUEST_ID=given)["X-Request-ID"] == given


def test_celery_task_lines_carry_the_task_id(json_log: io.StringIO) -> None:
    from core.tasks import heartbeat

    heartbeat.apply(task_id="task-1234")
    records = [r for r in lines(json_log) if r["logger"] == "core.tasks"]
    assert records and records[-1]["task_id"] == "task-1234"


def test_lines_outside_tasks_say_so(json_log: io.StringIO) -> None:
    logging.getLogger("genemarket.test").warning("plain line")
    record = lines(json_log)[-1]
    assert record["task_id"] == "-" and record["message"] == "plain line"
