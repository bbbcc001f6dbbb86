"""GA4GH Passport visas without a chain: the signing key stays in the worker, a visa that
was altered or signed by another key is refused, and the worker re-issues short-lived visas
while the grant lives. (A grant made on anvil issuing its visa: tests/integration/
test_visas.py.)"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from core import worker_secrets
from core.worker_secrets import NotInWorker
from marketplace.models import AccessRequest, Dataset, Role, User, Visa, VisaKey
from marketplace.selectors.visas import VisaRefused, passport_visas, visa_verify
from marketplace.services.visas import (
    _signing_key,
    public_jwk,
    visa_issue,
    visa_key_create,
    visas_refresh,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def visa_key_file(settings, tmp_path: Path) -> Path:
    settings.VISA_SIGNING_KEY_FILE = str(tmp_path / "keys" / "visa-signing.pem")
    visa_key_create(path=Path(settings.VISA_SIGNING_KEY_FILE))
    return Path(settings.VISA_SIGNING_KEY_FILE)


@pytest.fixture
def in_worker() -> Iterator[None]:
    previous = worker_secrets._in_worker
    worker_secrets._in_worker = True
    yield
    worker_secrets._in_worker = previous


def granted_request(make_user, *, access_days: int = 30) -> AccessRequest:
    donor, researcher = make_user(Role.DONOR), make_user(Role.RESEARCHER)
    dataset = Dataset.objects.create(
        donor=donor, title="Cohort", description="", price=1000, access_days=access_days
    )
    now = timezone.now()
    return AccessRequest.objects.create(
        dataset=dataset,
        researcher=researcher,
        statement="s",
        amount=1000,
        state=AccessRequest.State.GRANTED,
        granted_at=now,
        expires_at=now + timedelta(days=access_days),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_web_process_cannot_load_the_visa_key(visa_key_file: Path, make_user) -> None:
    assert not worker_secrets.in_worker_process()
    with pytest.raises(NotInWorker):
        _signing_key()
    # Not swallowed as a missing key: signing from the web is a bug and fails loudly.
    with pytest.raises(NotInWorker):
        visa_issue(request=granted_request(make_user))
    assert not Visa.objects.exists()


def test_the_key_file_is_private_and_its_public_key_published(
    settings, tmp_path: Path, in_worker: None
) -> None:
    settings.VISA_SIGNING_KEY_FILE = str(tmp_path / "keys" / "visa-signing.pem")
    call_command("create_visa_key", if_missing=True)
    path = Path(settings.VISA_SIGNING_KEY_FILE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    call_command("create_visa_key", if_missing=True)  # make run's set-up, run again
    assert path.read_bytes() == before
    jwks = APIClient().get("/.well-known/jwks.json").json()
    key, kid = _signing_key()
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert "d" not in jwks["keys"][0]  # the public half only
    assert jwt.PyJWKSet.from_dict(jwks)[kid].key.public_numbers() == (
        key.public_key().public_numbers()
    )


def test_a_grant_without_a_key_stands_and_gets_its_visa_once_the_key_is_there(
    settings, tmp_path: Path, in_worker: None, make_user
) -> None:
    settings.VISA_SIGNING_KEY_FILE = str(tmp_path / "absent.pem")
    request = granted_request(make_user)
    record = visa_issue(request=request)
    assert record is not None and record.token == ""  # the worker's record of the grant only
    assert passport_visas(user=request.researcher) == []
    assert visas_refresh() == 0
    visa_key_create(path=Path(settings.VISA_SIGNING_KEY_FILE))
    assert visas_refresh() == 1
    assert visa_verify(passport_visas(user=request.researcher)[0]) == request


def tampered_payload(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return ".".join((header, b64(json.dumps(claims).encode()), signature))


def another_keys_token(token: str, *, same_kid: bool) -> str:
    """The same claims signed by a key that is not ours, naming our kid or its own."""
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    other = ec.generate_private_key(ec.SECP256R1())
    kid = header["kid"] if same_kid else public_jwk(other.public_key())["kid"]
    return jwt.encode(claims, other, algorithm="ES256", headers={**header, "kid": kid})


def test_a_tampered_visa_is_refused(visa_key_file: Path, in_worker: None, make_user) -> None:
    request = granted_request(make_user)
    other = granted_request(make_user)
    visa = visa_issue(request=request)
    assert visa is not None and visa_verify(visa.token) == request
    claims = jwt.decode(visa.token, options={"verify_signature": False})
    forgeries = {
        "another researcher": tampered_payload(visa.token, sub=str(other.researcher_id)),
        "a later exp": tampered_payload(visa.token, exp=claims["exp"] + 86400 * 365),
        "another dataset": tampered_payload(
            visa.token,
            ga4gh_visa_v1={
                **claims["ga4gh_visa_v1"],
                "value": claims["ga4gh_visa_v1"]["value"].replace(
                    str(request.dataset_id), str(other.dataset_id)
                ),
            },
        ),
        "another key under our kid": another_keys_token(visa.token, same_kid=True),
        "another key under its own kid": another_keys_token(visa.token, same_kid=False),
        "no signature": ".".join(
            (
                b64(json.dumps({**jwt.get_unverified_header(visa.token), "alg": "none"}).encode()),
                visa.token.split(".")[1],
                "",
            )
        ),
        "a cut signature": visa.token.rsplit(".", 1)[0] + ".",
        "not a JWT": "visa",
    }
    for name, forged in forgeries.items():
        with pytest.raises(VisaRefused):
            visa_verify(forged)
            pytest.fail(f"accepted a visa with {name}")


def test_a_visa_is_short_lived_and_re_issued_while_the_grant_lives(
    visa_key_file: Path, in_worker: None, make_user, settings
) -> None:
    settings.VISA_LIFETIME_S = 3600
    request = granted_request(make_user)
    first = visa_issue(request=request)
    assert first is not None
    first_claims = jwt.decode(first.token, options={"verify_signature": False})
    assert first_claims["exp"] - first_claims["iat"] == 3600  # not the grant's 30 days
    assert visas_refresh() == 0  # fresh enough
    later = timezone.now() + timedelta(seconds=2000)
    assert visas_refresh(now=later) == 1
    newest = Visa.objects.filter(request=request).order_by("-issued_at").first()
    assert newest is not None and newest != first
    assert passport_visas(user=request.researcher, now=later) == [newest.token]


def test_a_visa_never_outlives_its_grant_and_is_not_re_issued_in_a_loop(
    visa_key_file: Path, in_worker: None, make_user, settings
) -> None:
    settings.VISA_LIFETIME_S = 86400
    request = granted_request(make_user, access_days=30)
    request.expires_at = timezone.now() + timedelta(seconds=600)
    request.save(update_fields=["expires_at"])
    visa = visa_issue(request=request)
    assert visa is not None
    claims = jwt.decode(visa.token, options={"verify_signature": False})
    assert claims["exp"] == int(request.expires_at.timestamp())
    assert visas_refresh() == 0  # it already runs to the grant's end


def test_ended_grants_lose_their_visas(
    visa_key_file: Path, in_worker: None, make_user, settings
) -> None:
    request = granted_request(make_user)
    visa = visa_issue(request=request)
    assert visa is not None
    AccessRequest.objects.filter(pk=request.pk).update(state=AccessRequest.State.REVOKED)
    assert passport_visas(user=request.researcher) == []
    with pytest.raises(VisaRefused):
        visa_verify(visa.token)
    assert visas_refresh() == 0
    assert not Visa.objects.exists()
    assert VisaKey.objects.count() == 1  # the key stays published


def test_the_passport_holds_only_the_callers_visas(
    visa_key_file: Path, in_worker: None, make_user
) -> None:
    mine, theirs = granted_request(make_user), granted_request(make_user)
    visas = {r.pk: visa_issue(request=r) for r in (mine, theirs)}
    client = APIClient()
    client.force_authenticate(user=User.objects.get(pk=mine.researcher_id))
    answer = client.get("/api/v1/me/passport")
    assert answer.status_code == 200
    assert answer.json() == {"ga4gh_passport_v1": [visas[mine.pk].token]}  # type: ignore[union-attr]


def test_a_visa_row_pointed_at_another_grant_is_refused(
    visa_key_file: Path, in_worker: None, make_user
) -> None:
    """The web tier can write the visa table (RELIABILITY 23): a row that maps a visa to
    someone else's live grant does not make it theirs: the signed claims must name it."""
    request, other = granted_request(make_user), granted_request(make_user)
    visa = visa_issue(request=request)
    assert visa is not None
    Visa.objects.filter(pk=visa.pk).update(request=other)
    with pytest.raises(VisaRefused):
        visa_verify(visa.token)


def test_request_rows_the_web_could_write_make_the_worker_sign_nothing(
    visa_key_file: Path, in_worker: None, make_user, settings
) -> None:
    """RELIABILITY 23: the worker re-issues from its own MACed record of the grant, not
    from request rows: a request flipped to granted without a grant, one re-pointed at
    another researcher, or one whose end was pushed back get no new visa beyond the grant."""
    settings.VISA_LIFETIME_S = 3600
    flipped = granted_request(make_user)  # "granted" in the database, never granted
    repointed, extended = granted_request(make_user), granted_request(make_user)
    for request in (repointed, extended):
        assert visa_issue(request=request) is not None
    grant_end = extended.expires_at
    assert grant_end is not None
    AccessRequest.objects.filter(pk=repointed.pk).update(researcher=make_user(Role.RESEARCHER))
    AccessRequest.objects.filter(pk=extended.pk).update(
        expires_at=timezone.now() + timedelta(days=3650)
    )
    near_the_end = grant_end - timedelta(seconds=600)
    assert visas_refresh(now=near_the_end) == 1  # the extended one, and only up to its end
    assert not Visa.objects.filter(request=flipped).exists()
    assert not Visa.objects.filter(request=repointed, issued_at=near_the_end).exists()
    newest = Visa.objects.filter(request=extended).order_by("-issued_at").first()
    assert newest is not None and newest.issued_at == near_the_end
    claims = jwt.decode(newest.token, options={"verify_signature": False})
    assert claims["exp"] == int(grant_end.timestamp())
