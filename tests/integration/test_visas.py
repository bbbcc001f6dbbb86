"""A grant made on anvil issues a GA4GH Passport v1.2 `ControlledAccessGrants` visa that
other services verify against our JWKS with PyJWT; once the grant is revoked or has
expired, the visa is no longer served and our own check refuses it (issue 18 item 5)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import AccessRequest
from marketplace.selectors.visas import VisaRefused, visa_verify
from marketplace.services.settlement import requests_lapse_and_expire
from marketplace.services.visas import visa_key_create

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def visa_key(settings, tmp_path: Path) -> None:
    settings.VISA_SIGNING_KEY_FILE = str(tmp_path / "keys" / "visa-signing.pem")
    visa_key_create(path=Path(settings.VISA_SIGNING_KEY_FILE))


def passport(flow) -> list[str]:
    response = flow.researcher_api.get("/api/v1/me/passport")
    assert response.status_code == 200
    return response.json()["ga4gh_passport_v1"]


def verified_by_jwks(token: str) -> dict[str, object]:
    """What another GA4GH service does: fetch our JWKS and verify with PyJWT."""
    keys = jwt.PyJWKSet.from_dict(APIClient().get("/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(token)
    return jwt.decode(
        token,
        keys[header["kid"]],
        algorithms=["ES256"],
        issuer=settings.SITE_URL,
        options={"require": ["iss", "sub", "iat", "exp", "jti"]},
    )


def test_a_grant_issues_a_visa_that_verifies_against_our_jwks(flow, visa_key) -> None:
    assert passport(flow) == []
    flow.pay()
    request = flow.request()
    assert request.state == "granted" and request.granted_at and request.expires_at
    [token] = passport(flow)
    claims = verified_by_jwks(token)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == "vnd.ga4gh.visa+jwt"
    assert header["jku"] == f"{settings.SITE_URL}/.well-known/jwks.json"
    assert claims["iss"] == settings.SITE_URL
    assert claims["sub"] == str(request.researcher_id)
    assert claims["ga4gh_visa_v1"] == {
        "type": "ControlledAccessGrants",
        "value": f"{settings.SITE_URL}/datasets/{flow.dataset_id}/",
        "source": settings.SITE_URL,
        "by": "dac",
        "asserted": int(request.granted_at.timestamp()),
    }
    # Short-lived: a day, re-issued while the 30-day grant lives (README "Passports").
    assert claims["exp"] == claims["iat"] + settings.VISA_LIFETIME_S
    assert claims["exp"] < request.expires_at.timestamp()
    assert visa_verify(token) == request


def test_a_visa_expires_with_its_grant(flow, visa_key, settings) -> None:
    settings.VISA_LIFETIME_S = 365 * 86400  # longer than the grant
    flow.pay()
    request = flow.request()
    [token] = passport(flow)
    assert verified_by_jwks(token)["exp"] == int(request.expires_at.timestamp())


@pytest.mark.parametrize("ending", ["revoked", "expired"])
def test_an_ended_grants_visa_is_not_served_and_is_refused(flow, visa_key, ending: str) -> None:
    flow.pay()
    [token] = passport(flow)
    request = flow.request()
    if ending == "revoked":
        response = flow.donor_api.post(
            f"/api/v1/access-requests/{request.pk}/revoke", {"reason": "misuse"}, format="json"
        )
        assert response.status_code == 200
    else:
        AccessRequest.objects.filter(pk=request.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert requests_lapse_and_expire() == (0, 1)
    assert flow.request().state == ending
    assert passport(flow) == []
    with pytest.raises(VisaRefused):
        visa_verify(token)
    # Other services still accept it until its exp: they cannot learn of the revocation,
    # which is why visas are short-lived (README "Passports").
    assert verified_by_jwks(token)["sub"] == str(request.researcher_id)
