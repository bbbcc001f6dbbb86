"""/health: 200 when database, broker, storage and chain answer; 503 naming what fails.

Runs against a private redis-server and anvil so stopping them disturbs nothing else.
"""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def live_services(settings, redis_server, anvil_node):
    settings.CELERY_BROKER_URL = redis_server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.CHAIN_RPC_URL = anvil_node.url
    settings.CHAIN_TIMEOUT_S = 1.0
    return redis_server, anvil_node


def test_health_is_green_when_everything_answers(client: Client, live_services) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "storage", "chain"}
    assert all(check["ok"] for check in body["checks"].values())


def test_health_turns_503_naming_the_broker_when_redis_stops(client: Client, live_services) -> None:
    redis_server, _ = live_services
    assert client.get("/health").status_code == 200
    redis_server.stop()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert "broker" in body["checks"]["broker"]["detail"]
    redis_server.start()
    assert client.get("/health").status_code == 200


def test_health_names_the_chain_when_the_node_stops(client: Client, live_services) -> None:
    _, anvil = live_services
    anvil.stop()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failing"] == ["chain"]


def test_health_names_storage_when_it_is_not_writable(
    client: Client, live_services, settings, tmp_path
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked)},
        },
    }
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]


def test_health_reports_when_a_worker_was_last_seen(client: Client, live_services) -> None:
    from core.services import heartbeat_record

    assert client.get("/health").json()["worker_last_seen"] is None
    heartbeat_record(hostname="w1")
    assert client.get("/health").json()["worker_last_seen"] is not None
