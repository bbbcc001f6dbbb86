"""Researchers register the Crypt4GH public key their grants are encrypted to."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genomics import c4gh
from marketplace.models import Role

pytestmark = pytest.mark.django_db
KEY = "/api/v1/me/crypt4gh-key"


def test_a_key_from_crypt4gh_keygen_is_accepted(client_for, tmp_path: Path) -> None:
    keygen = Path(sys.executable).with_name("crypt4gh-keygen")
    subprocess.run(
        [
            str(keygen),
            "--sk",
            str(tmp_path / "me.sec"),
            "--pk",
            str(tmp_path / "me.pub"),
            "--nocrypt",
            "-f",
        ],
        check=True,
        capture_output=True,
        env={**os.environ},
    )
    text = (tmp_path / "me.pub").read_text()
    client, user = client_for(Role.RESEARCHER)
    response = client.put(KEY, {"public_key": text}, format="json")
    assert response.status_code == 200, response.json()
    user.refresh_from_db()
    assert bytes(user.crypt4gh_public_key) == c4gh.parse_public_key(text)
    assert (
        client.get("/api/v1/me")
        .json()["crypt4gh_public_key"]
        .startswith("-----BEGIN CRYPT4GH PUBLIC KEY-----")
    )


def test_base64_of_the_raw_bytes_is_accepted(client_for) -> None:
    _, public = c4gh.generate_keypair()
    client, _ = client_for(Role.RESEARCHER)
    response = client.put(KEY, {"public_key": base64.b64encode(public).decode()}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("hello", "base64"),
        (base64.b64encode(b"x" * 31).decode(), "32 bytes"),
        (base64.b64encode(bytes(32)).decode(), "weak"),
    ],
)
def test_an_invalid_key_is_refused_with_the_reason(client_for, bad: str, reason: str) -> None:
    client, _ = client_for(Role.RESEARCHER)
    response = client.put(KEY, {"public_key": bad}, format="json")
    assert response.status_code == 400
    assert reason in response.json()["error"]["fields"]["public_key"][0]
