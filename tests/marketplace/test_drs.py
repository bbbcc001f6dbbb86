"""GA4GH DRS 1.4 (marketplace/ga4gh/drs.py): every answer is validated against the DRS 1.4.0
response schemas (tests/marketplace/ga4gh/drs-1.4.0.schema.json, transcribed from the
official OpenAPI; source and version in its `$comment`). A real file is uploaded and ingested,
granted to a researcher's key, fetched through the access URL and decrypted by the reference
`crypt4gh` package."""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crypt4gh import lib as reference
from django.test import Client
from django.utils import timezone
from jsonschema import Draft7Validator, FormatChecker, ValidationError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from genomics import c4gh
from genomics.models import GenomicFile
from genomics.services.grants import grant_create
from genomics.services.ingest import file_ingest
from marketplace.ga4gh.drs import DrsServiceInfoApi
from marketplace.models import AccessRequest, AuditEntry, Dataset, Role, User
from marketplace.selectors.drs import drs_granted_file
from marketplace.services.drs import drs_access_token_create
from tests.genomics import samples
from tests.genomics.conftest import archive_key, upload, worker  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

SCHEMA = json.loads((Path(__file__).parent / "ga4gh" / "drs-1.4.0.schema.json").read_text())
DRS = "/ga4gh/drs/v1"


def conforms(body: Any, definition: str) -> Any:
    """`body` validated against the DRS 1.4.0 schema `definition` (formats checked too)."""
    schema = {**SCHEMA, "$ref": f"#/definitions/{definition}"}
    Draft7Validator(schema, format_checker=FormatChecker()).validate(body)
    return body


def test_the_schema_checks_formats_and_rejects_what_it_should() -> None:
    """The gate is real: date-time formats are checked (rfc3339-validator installed) and a
    DrsObject without checksums, or with an unknown access type, fails."""
    assert "date-time" in FormatChecker().checkers
    good = {
        "id": "x",
        "self_uri": "drs://h/x",
        "size": 1,
        "created_time": "2026-01-01T00:00:00Z",
        "checksums": [{"type": "sha-256", "checksum": "00"}],
        "access_methods": [{"type": "https", "access_id": "a"}],
    }
    conforms(good, "DrsObject")
    for broken in (
        {**good, "checksums": []},
        {**good, "created_time": "yesterday"},
        {**good, "access_methods": [{"type": "carrier-pigeon", "access_id": "a"}]},
        {k: v for k, v in good.items() if k != "self_uri"},
    ):
        with pytest.raises(ValidationError):
            conforms(broken, "DrsObject")


@dataclass
class Granted:
    researcher: User
    secret: bytes  # the researcher's Crypt4GH secret key
    file: GenomicFile
    other_file: GenomicFile
    plaintext: bytes
    dataset: Dataset
    request: AccessRequest

    def client(self, user: User | None = None, scheme: str = "Bearer") -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=user or self.researcher)
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token.key}")
        return client


def _ingest(donor: User, data: bytes, filename: str) -> GenomicFile:
    browser = Client()
    browser.force_login(donor)
    upload(browser, data, filename=filename, chunk=50_000)
    stored = GenomicFile.objects.get(filename=filename)
    file_ingest(file_id=str(stored.pk))
    stored.refresh_from_db()
    assert stored.state == GenomicFile.State.READY, stored.error
    return stored


@pytest.fixture
def granted(archive_key, worker, make_user, tmp_path) -> Granted:  # noqa: F811
    donor = make_user(Role.DONOR)
    researcher = make_user(Role.RESEARCHER)
    secret, public = c4gh.generate_keypair()
    researcher.crypt4gh_public_key = public
    researcher.save()
    plaintext = samples.write_variants(tmp_path / "a.vcf", "w", records=6000).read_bytes()
    assert len(plaintext) > 2 * 65536  # several Crypt4GH segments
    stored = _ingest(donor, plaintext, "cohort a.vcf")
    other = _ingest(
        donor,
        samples.write_variants(tmp_path / "b.vcf", "w", records=40).read_bytes(),
        "cohort-b.vcf",
    )
    dataset = Dataset.objects.create(
        donor=donor,
        title="DRS cohort",
        price=1,
        access_days=30,
        duo_codes=[{"code": "DUO:0000042", "value": ""}],
    )
    dataset.files.set([stored, other])
    request = AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        statement="s",
        amount=1,
        duo_match={"fits": True, "reasons": []},
        state=AccessRequest.State.GRANTED,
        expires_at=timezone.now() + timedelta(days=30),
    )
    for each in (stored, other):
        grant_create(file=each, recipient_public_key=public)
    return Granted(researcher, secret, stored, other, plaintext, dataset, request)


def _get(client: APIClient, path: str, **headers: Any) -> Any:
    """The response (DRF's stubs type the test client's as the request factory's)."""
    return client.get(path, **headers)


def test_service_info_is_a_drs_1_4_service_for_anyone() -> None:
    response = _get(APIClient(), f"{DRS}/service-info")
    assert response.status_code == 200
    info = conforms(response.json(), "ServiceInfo")
    assert info["type"] == {"group": "org.ga4gh", "artifact": "drs", "version": "1.4.0"}


def test_a_granted_researcher_gets_the_blob_with_checksum_and_access_method(
    granted: Granted,
) -> None:
    response = _get(granted.client(), f"{DRS}/objects/{granted.file.pk}")
    assert response.status_code == 200, response.content
    blob = conforms(response.json(), "DrsObject")
    assert blob["id"] == str(granted.file.pk) and blob["self_uri"].startswith("drs://")
    assert blob["name"] == "cohort_a.vcf"  # portable filename characters only (DRS 1.4)
    assert blob["checksums"] == [
        {"type": "sha-256", "checksum": hashlib.sha256(granted.plaintext).hexdigest()}
    ]
    assert blob["size"] == len(granted.plaintext)
    assert "decrypted" in blob["description"]  # the checksum says what it is of
    assert [m["type"] for m in blob["access_methods"]] == ["https"]
    assert "contents" not in blob


def test_the_access_url_downloads_what_the_reference_decrypts_to_the_checksum(
    granted: Granted,
) -> None:
    client = granted.client()
    blob = _get(client, f"{DRS}/objects/{granted.file.pk}").json()
    access_id = blob["access_methods"][0]["access_id"]
    answer = _get(client, f"{DRS}/objects/{granted.file.pk}/access/{access_id}")
    assert answer.status_code == 200, answer.content
    url = conforms(answer.json(), "AccessURL")["url"]
    assert url.startswith("http://testserver/ga4gh/drs/v1/")
    # The URL alone is the credential, as a signed URL of an object store is.
    download = _get(APIClient(), url)
    assert download.status_code == 200
    encrypted = b"".join(download.streaming_content)
    out = io.BytesIO()
    reference.decrypt([(0, granted.secret, None)], io.BytesIO(encrypted), out)
    assert out.getvalue() == granted.plaintext
    assert hashlib.sha256(out.getvalue()).hexdigest() == blob["checksums"][0]["checksum"]
    assert AuditEntry.objects.filter(
        action="request.download",
        object_id=str(granted.request.pk),
        actor_id=str(granted.researcher.pk),
    ).exists()
    ranged = _get(APIClient(), url, HTTP_RANGE="bytes=0-99")
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == encrypted[:100]
    head = APIClient().head(url)
    assert head.status_code == 200 and int(head["Content-Length"]) == len(encrypted)


def _refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    error = conforms(response.json(), "Error")
    assert set(error) == {"msg", "status_code"} and error["status_code"] == status
    return error


def test_anyone_without_a_live_grant_gets_404_as_for_a_missing_id(
    granted: Granted, make_user
) -> None:
    missing = _get(granted.client(), f"{DRS}/objects/9b0f5c2e-6f7e-4a39-9d3c-8e8f1d2b4a11")
    expected = _refused(missing, 404)
    stranger = make_user(Role.RESEARCHER)
    donor = granted.dataset.donor
    for user in (stranger, donor):
        client = granted.client(user)
        for object_id in (granted.file.pk, granted.dataset.pk):
            assert _refused(_get(client, f"{DRS}/objects/{object_id}"), 404) == expected
        access = _get(client, f"{DRS}/objects/{granted.file.pk}/access/crypt4gh")
        assert _refused(access, 404) == expected
    assert _refused(_get(granted.client(), f"{DRS}/objects/not-a-uuid"), 404) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"state": AccessRequest.State.REVOKED},
        {"state": AccessRequest.State.EXPIRED},
        {"expires_at": timezone.now() - timedelta(seconds=1)},
    ],
    ids=["revoked", "expired state", "past its end"],
)
def test_a_grant_that_is_no_longer_live_hides_its_objects(
    granted: Granted, change: dict[str, Any]
) -> None:
    AccessRequest.objects.filter(pk=granted.request.pk).update(**change)
    for object_id in (granted.file.pk, granted.dataset.pk):
        _refused(_get(granted.client(), f"{DRS}/objects/{object_id}"), 404)


def _access_url(granted: Granted, researcher: User | None = None) -> str:
    client = granted.client(researcher)
    answer = _get(client, f"{DRS}/objects/{granted.file.pk}/access/crypt4gh")
    assert answer.status_code == 200, answer.content
    return str(answer.json()["url"])


def test_an_expired_access_url_is_refused(
    granted: Granted, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _access_url(granted)
    now = time.time()
    monkeypatch.setattr("django.core.signing.time.time", lambda: now + 299)
    assert _get(APIClient(), url).status_code == 200
    monkeypatch.setattr("django.core.signing.time.time", lambda: now + 301)
    assert "expired" in _refused(_get(APIClient(), url), 403)["msg"]


def test_a_forged_or_altered_access_url_is_refused(granted: Granted) -> None:
    url = _access_url(granted)
    token = url.rsplit("/", 1)[1]
    payload, stamp, signature = token.split(":")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (
        f"{payload}:{stamp}:{flipped}",
        f"{payload}:{stamp}",
        # The other file's claims under this file's signature
        drs_access_token_create(
            researcher=granted.researcher,
            granted=drs_granted_file(  # type: ignore[arg-type]
                researcher=granted.researcher, object_id=str(granted.other_file.pk)
            ),
        ).split(":")[0]
        + f":{stamp}:{signature}",
    ):
        refused = _get(APIClient(), f"{DRS}/download/{forged}")
        assert "not valid" in _refused(refused, 403)["msg"]
    assert not AuditEntry.objects.filter(action="request.download").exists()


def test_an_access_url_stops_when_the_grant_is_revoked(granted: Granted) -> None:
    url = _access_url(granted)
    AccessRequest.objects.filter(pk=granted.request.pk).update(state=AccessRequest.State.REVOKED)
    _refused(_get(APIClient(), url), 403)


def _grant_to_another_researcher(granted: Granted, make_user) -> tuple[User, bytes]:
    """A second researcher with a live grant of the same dataset, for their own key."""
    other = make_user(Role.RESEARCHER)
    secret, public = c4gh.generate_keypair()
    other.crypt4gh_public_key = public
    other.save()
    AccessRequest.objects.create(
        dataset=granted.dataset,
        researcher=other,
        purpose_codes=[{"code": "DUO:0000042", "value": ""}],
        statement="s",
        amount=1,
        duo_match={"fits": True, "reasons": []},
        state=AccessRequest.State.GRANTED,
    )
    grant_create(file=granted.file, recipient_public_key=public)
    return other, secret


def test_an_access_url_serves_its_grantees_header_only(granted: Granted, make_user) -> None:
    """Bound to the grantee: each researcher's URL gives a stream that their key opens and
    another grantee's key does not."""
    other, other_secret = _grant_to_another_researcher(granted, make_user)
    urls = {
        granted.secret: _access_url(granted),
        other_secret: _access_url(granted, other),
    }
    for secret, url in urls.items():
        encrypted = b"".join(_get(APIClient(), url).streaming_content)
        wrong = other_secret if secret == granted.secret else granted.secret
        with pytest.raises(ValueError, match="No supported encryption method"):
            reference.decrypt([(0, wrong, None)], io.BytesIO(encrypted), io.BytesIO())
        out = io.BytesIO()
        reference.decrypt([(0, secret, None)], io.BytesIO(encrypted), out)
        assert out.getvalue() == granted.plaintext


def test_a_dataset_is_a_bundle_of_its_files(granted: Granted) -> None:
    response = _get(granted.client(), f"{DRS}/objects/{granted.dataset.pk}")
    assert response.status_code == 200, response.content
    bundle = conforms(response.json(), "DrsObject")
    files = (granted.file, granted.other_file)
    assert {c["id"] for c in bundle["contents"]} == {str(f.pk) for f in files}
    assert {c["name"] for c in bundle["contents"]} == {"cohort_a.vcf", "cohort-b.vcf"}
    assert bundle["size"] == sum(f.plaintext_size or 0 for f in files)
    # DRS 1.4 DrsObject.checksums: of the sorted, concatenated checksums of the contents
    joined = "".join(sorted(f.plaintext_sha256 for f in files))
    assert bundle["checksums"] == [
        {"type": "sha-256", "checksum": hashlib.sha256(joined.encode()).hexdigest()}
    ]
    for content in bundle["contents"]:
        member = _get(granted.client(), f"{DRS}/objects/{content['id']}")
        assert conforms(member.json(), "DrsObject")["id"] == content["id"]
    # A bundle has no bytes of its own: its contents are fetched one by one.
    access = _get(granted.client(), f"{DRS}/objects/{granted.dataset.pk}/access/crypt4gh")
    _refused(access, 404)
    assert "bundle" in access.json()["msg"] and "contents" in access.json()["msg"]


def test_bearer_and_token_headers_both_authenticate(granted: Granted) -> None:
    for scheme in ("Bearer", "Token"):
        response = _get(granted.client(scheme=scheme), f"{DRS}/objects/{granted.file.pk}")
        assert response.status_code == 200, (scheme, response.content)
    # The same bearer token works on the rest of the API
    me = _get(granted.client(), "/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == granted.researcher.username


def test_no_or_a_wrong_bearer_token_answers_401_with_a_bearer_challenge(granted: Granted) -> None:
    anonymous = _get(APIClient(), f"{DRS}/objects/{granted.file.pk}")
    _refused(anonymous, 401)
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    wrong = _get(
        APIClient(), f"{DRS}/objects/{granted.file.pk}", HTTP_AUTHORIZATION="Bearer " + "0" * 40
    )
    _refused(wrong, 401)


def test_options_names_bearer_auth_for_any_id() -> None:
    response = APIClient().options(f"{DRS}/objects/anything")
    assert response.status_code == 200
    authorizations = conforms(response.json(), "Authorizations")
    assert authorizations == {"drs_object_id": "anything", "supported_types": ["BearerAuth"]}


def test_other_drs_paths_answer_404_in_the_drs_shape() -> None:
    _refused(APIClient().post(f"{DRS}/objects", {}, format="json"), 404)


def test_a_crash_answers_500_in_the_drs_shape_without_details(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(DrsServiceInfoApi, "get", crash)
    response = _get(APIClient(raise_request_exception=False), f"{DRS}/service-info")
    assert "internal detail" not in _refused(response, 500)["msg"]
