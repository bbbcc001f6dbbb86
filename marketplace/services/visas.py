"""GA4GH Passport v1.2 `ControlledAccessGrants` visas of our grants (worker side).

Every live grant is a visa (Passport v1.2 "Visa Format", "ControlledAccessGrants"): a JWS
whose `ga4gh_visa_v1` claim says that our committee (`by: "dac"`, `source`: the market)
granted the researcher (`sub`) access to a dataset (`value`: its page), since `asserted`
(the grant time). It is signed with ES256 by a key only the worker holds (core.worker_secrets;
DESIGN "Processes and trust boundaries"), so the web never holds it.

Why signed at grant time and stored, rather than on request: the web cannot sign, and a
visa asked for through a task would make `/me/passport` wait on the worker. The worker signs
one at the end of the grant (inside its transaction) and re-issues it from beat
(`visas_refresh`) while the grant lives; the web serves the stored tokens, filtered by the
request's live state (marketplace.selectors.visas). At the grant the worker also records
the grant's end under its own MAC (ledger.integrity), and re-issues only from that record
(RELIABILITY.md 23: a request row is a request for work, never a proof).

Other services cannot learn of a revocation before a visa's `exp` (Passport v1.2 "Token
Revocation" leaves it to short lifetimes): a visa lives VISA_LIFETIME_S at most (a day by
default), never past the grant's end. Our own endpoints check the grant itself
(`marketplace.selectors.visas.visa_verify`) and refuse a revoked grant's visa at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from jwt.algorithms import ECAlgorithm

from core.worker_secrets import SecretMissing, read_secret
from ledger.integrity import row_mac, row_mac_valid
from marketplace.models import AccessRequest, Visa, VisaKey
from marketplace.models.lifecycle import LIVE

logger = logging.getLogger(__name__)

VISA_TYPE = "ControlledAccessGrants"
# Passport v1.2 "typ": RECOMMENDED for Visa Document Tokens.
VISA_TYP = "vnd.ga4gh.visa+jwt"
# AAI profile "Signing Algorithms": ES256 (ECDSA P-256, SHA-256); small keys and tokens.
ALGORITHM = "ES256"
_WHAT = "the visa signing key"
GRANT_MAC_KIND = "visa-grant"


def dataset_url(dataset_id: object) -> str:
    """A visa's `value`: the dataset's page on the market (absolute URL)."""
    return settings.SITE_URL + reverse("web:dataset", kwargs={"dataset_id": dataset_id})


def tier_url(dataset_id: object, tier_id: object) -> str:
    """A tier grant's visa `value`: the region tier's page (absolute URL), so a service
    reading the visa knows the grant covers that tier's regions, not the dataset."""
    return settings.SITE_URL + reverse(
        "web:dataset_tier", kwargs={"dataset_id": dataset_id, "tier_id": tier_id}
    )


def grant_url(request: AccessRequest) -> str:
    """What a visa of `request` names as its `value`: its tier's URL, or the dataset's."""
    if request.tier_id is not None:
        return tier_url(request.dataset_id, request.tier_id)
    return dataset_url(request.dataset_id)


def jwks_url() -> str:
    """Where our public keys are (a visa's `jku` header, Passport v1.2 "Visa Format")."""
    return settings.SITE_URL + reverse("jwks")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK (RFC 7517) of `public_key`, with `kid` = its RFC 7638 thumbprint
    (SHA-256 of the required members in lexicographic order, base64url without padding),
    so the same key always has the same `kid`, whoever computes it."""
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(
        json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return {**required, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def visa_key_create(*, path: Path) -> VisaKey:
    """Make a new EC P-256 signing key, write it to `path` (PKCS#8 PEM, mode 0600, never
    over an existing file) and publish its public key. For `manage.py create_visa_key`,
    which set-up runs before the worker starts. FileExistsError if the file is there."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return _publish(key.public_key())


def _publish(public_key: ec.EllipticCurvePublicKey) -> VisaKey:
    jwk = public_jwk(public_key)
    row, _ = VisaKey.objects.get_or_create(kid=jwk["kid"], defaults={"public_jwk": jwk})
    return row


def _signing_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The worker's signing key and its `kid` (published if it was not yet). Worker only
    (NotInWorker elsewhere); SecretMissing when it is absent or not an EC P-256 key."""
    raw = read_secret(
        what=_WHAT, path=Path(settings.VISA_SIGNING_KEY_FILE), env_var="VISA_SIGNING_KEY"
    )
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        # The message names no key material: cryptography's errors do not carry it.
        raise SecretMissing(f"{_WHAT} is not a PEM private key without passphrase") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SecretMissing(f"{_WHAT} must be an EC P-256 key (ES256)")
    return key, _publish(key.public_key()).kid


def _grant_fields(request: AccessRequest, grant_ends_at: datetime) -> dict[str, object]:
    """What the worker's MAC over a grant covers: whose grant, of what, from when to when."""
    granted_at = request.granted_at
    # The tier joins the record only when there is one, so records of whole-dataset
    # grants made before tiers existed keep their MACs.
    tier = {"tier": str(request.tier_id)} if request.tier_id is not None else {}
    return {
        "request": str(request.pk),
        "sub": str(request.researcher_id),
        "dataset": str(request.dataset_id),
        "asserted": int(granted_at.timestamp()) if granted_at else None,
        "ends": grant_ends_at.isoformat(),
        **tier,
    }


def visa_issue(*, request: AccessRequest) -> Visa | None:
    """At the end of a grant, inside its transaction (worker only): record the grant the
    worker has just made (its end, under a worker-only MAC) and sign its first visa.

    Claims (Passport v1.2 "Visa Format"): `iss`, `sub` (the researcher's id), `iat`,
    `exp` = the grant's end or VISA_LIFETIME_S from now, whichever is first, `jti` (the
    row's id), and `ga4gh_visa_v1` {type, asserted (grant time, s), value (the dataset's
    URL, or a region tier's for a tier grant), source (the market's URL), by: "dac"};
    header `typ`, `kid` and `jku`.

    None when the request holds no grant. Without a usable signing key the grant stands:
    the row holds the record alone (no token; logged) and `visas_refresh` signs it once
    the key is there. NotInWorker outside the worker."""
    if request.state not in LIVE or request.granted_at is None or request.expires_at is None:
        return None
    grant_ends_at = request.expires_at
    mac = row_mac(GRANT_MAC_KIND, _grant_fields(request, grant_ends_at))
    return _store(request=request, grant_ends_at=grant_ends_at, grant_mac=mac, now=timezone.now())


def _store(
    *, request: AccessRequest, grant_ends_at: datetime, grant_mac: str, now: datetime
) -> Visa:
    """A visa row for a grant whose record (`grant_ends_at`, `grant_mac`) the worker has
    checked; signed when the key can be read."""
    jti = uuid.uuid4()
    record = {"request": request, "grant_ends_at": grant_ends_at, "grant_mac": grant_mac}
    try:
        key, kid = _signing_key()
    except SecretMissing as exc:
        logger.error("no visa for %s yet: %s", request, exc)
        return Visa.objects.create(id=jti, issued_at=now, expires_at=now, **record)
    ends = min(grant_ends_at, request.expires_at or grant_ends_at)
    expires_at = min(ends, now + timedelta(seconds=settings.VISA_LIFETIME_S))
    granted_at = request.granted_at or now
    claims = {
        "iss": settings.SITE_URL,
        "sub": str(request.researcher_id),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": str(jti),
        "ga4gh_visa_v1": {
            "type": VISA_TYPE,
            "asserted": int(granted_at.timestamp()),
            "value": grant_url(request),
            "source": settings.SITE_URL,
            "by": "dac",
        },
    }
    token = jwt.encode(
        claims, key, algorithm=ALGORITHM, headers={"typ": VISA_TYP, "kid": kid, "jku": jwks_url()}
    )
    return Visa.objects.create(
        id=jti, kid=kid, token=token, issued_at=now, expires_at=expires_at, **record
    )


def visas_refresh(*, now: datetime | None = None) -> int:
    """Periodic, worker (beat): re-issue the visas of live grants.

    A live grant whose newest signed visa has less than half of VISA_LIFETIME_S left (and
    does not already run to the grant's end), or that has none yet, gets a new visa, from
    the worker's record of the grant: its MAC must hold over the request as it stands, and
    the grant's end comes from the record, so a request row the web tier flipped to
    granted, re-pointed or extended makes the worker sign nothing more. Visas of ended
    grants, and expired ones that a newer visa replaces, are deleted. Returns how many
    visas were signed."""
    moment = now or timezone.now()
    newer = Visa.objects.filter(request=OuterRef("request"), issued_at__gt=OuterRef("issued_at"))
    Visa.objects.filter(
        ~Q(request__state__in=LIVE) | (Q(expires_at__lte=moment) & Q(Exists(newer)))
    ).delete()
    threshold = moment + timedelta(seconds=settings.VISA_LIFETIME_S / 2)
    lasting = (
        Visa.objects.filter(request=OuterRef("pk"))
        .exclude(token="")
        .filter(Q(expires_at__gt=threshold) | Q(expires_at__gte=F("grant_ends_at")))
    )
    recorded = Visa.objects.filter(request=OuterRef("pk"))
    due = (
        AccessRequest.objects.filter(state__in=LIVE, expires_at__gt=moment)
        .filter(Exists(recorded))
        .exclude(Exists(lasting))
        .values_list("pk", flat=True)
    )
    issued = 0
    for request_id in due:
        with transaction.atomic():
            request = (
                AccessRequest.objects.select_for_update(of=("self",)).filter(pk=request_id).first()
            )
            record = request.visas.order_by("-issued_at").first() if request else None
            if request is None or record is None or record.grant_ends_at <= moment:
                continue
            fields = _grant_fields(request, record.grant_ends_at)
            if not row_mac_valid(GRANT_MAC_KIND, fields, record.grant_mac):
                logger.error("%s does not match the grant the worker made: no visa", request)
                continue
            visa = _store(
                request=request,
                grant_ends_at=record.grant_ends_at,
                grant_mac=record.grant_mac,
                now=moment,
            )
            issued += bool(visa.token)
    return issued
