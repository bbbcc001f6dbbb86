"""A donor's files through the API and the web page; nobody else sees them."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.models import Role
from tests.genomics.conftest import create_upload

pytestmark = pytest.mark.django_db


def test_files_are_listed_for_their_owner_only(donor_client, archive_key, make_user) -> None:
    client, _ = donor_client
    location = create_upload(client, 100, "mine.vcf")
    file_id = location.rsplit("/", 1)[1]
    listing = client.get("/api/v1/files/").json()
    assert [row["id"] for row in listing["results"]] == [file_id]
    assert listing["results"][0]["state"] == "receiving"
    other = Client()
    other.force_login(make_user(Role.DONOR))
    assert other.get("/api/v1/files/").json()["results"] == []
    assert other.get(f"/api/v1/files/{file_id}").status_code == 404
    assert client.get(f"/api/v1/files/{file_id}").json()["filename"] == "mine.vcf"


def test_the_archive_key_is_public(archive_key) -> None:
    body = Client().get("/api/v1/archive-key").json()
    assert body["public_key"].startswith("-----BEGIN CRYPT4GH PUBLIC KEY-----")


def test_without_an_archive_key_uploads_say_what_to_do(donor_client) -> None:
    client, _ = donor_client
    response = client.post(
        "/api/v1/uploads/",
        HTTP_TUS_RESUMABLE="1.0.0",
        HTTP_UPLOAD_LENGTH="5",
        HTTP_UPLOAD_METADATA="filename YS52Y2Y=",
    )
    assert response.status_code == 503
    assert "create_archive_key" in response.json()["error"]["message"]


def test_the_files_page_is_for_donors(donor_client, archive_key, make_user) -> None:
    client, _ = donor_client
    create_upload(client, 100, "mine.vcf")
    page = client.get("/files/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "mine.vcf" in html and "tus-js-client" in html and "<progress" in html
    assert 'hx-trigger="files-changed from:body, every 2s"' in html  # still receiving
    researcher = Client()
    researcher.force_login(make_user(Role.RESEARCHER))
    assert researcher.get("/files/").status_code == 403
    assert Client().get("/files/").status_code == 302
