"""Wallet linking with Sign-In with Ethereum (EIP-4361), using the `siwe` library.

Challenge: the server writes the whole message (domain, address, chain id, a random nonce,
issue and expiry times) and keeps it. Link: the signed message must be exactly the one
issued to this user, unexpired and unused, for this site's domain, and its EIP-191
signature must recover the address in it. A nonce is burnt by the first attempt, right or
wrong, so a signature cannot be guessed at against a live nonce.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import is_address, to_checksum_address
from siwe import SiweMessage, generate_nonce
from siwe.siwe import (
    DomainMismatch,
    ExpiredMessage,
    InvalidSignature,
    NotYetValidMessage,
    VerificationError,
)

from core.errors import Conflict, ValidationError
from ledger import chain
from ledger.models import WalletChallenge, WalletLink

CHALLENGE_TTL = timedelta(minutes=10)
STATEMENT = "Link this wallet to your GeneMarket account to pay for and receive data access."


class WalletError(ValidationError):
    code = "wallet_verification_failed"


def wallet_challenge_create(
    *, user: AbstractBaseUser, address: str, domain: str, uri: str
) -> WalletChallenge:
    """Issue a SIWE message for `address`, to be signed by the browser wallet."""
    if not is_address(address):
        raise ValidationError(
            "Not an Ethereum address.",
            fields={"address": ["Expected 0x followed by 40 hex digits."]},
        )
    now = timezone.now()
    message = SiweMessage(
        domain=domain,
        address=to_checksum_address(address),
        statement=STATEMENT,
        uri=uri,
        version="1",
        chain_id=chain.configured_chain_id(),
        nonce=generate_nonce(),
        issued_at=now.isoformat().replace("+00:00", "Z"),
        expiration_time=(now + CHALLENGE_TTL).isoformat().replace("+00:00", "Z"),
    )
    return WalletChallenge.objects.create(
        nonce=message.nonce,
        user_id=user.pk,
        address=message.address,
        domain=domain,
        message=message.prepare_message(),
        expires_at=now + CHALLENGE_TTL,
    )


def _parse(message: str) -> SiweMessage:
    try:
        return SiweMessage.from_message(message)
    except Exception as exc:  # the parser raises several unrelated types
        raise WalletError("The message is not a Sign-In with Ethereum message.") from exc


def wallet_link(*, user: AbstractBaseUser, message: str, signature: str, domain: str) -> WalletLink:
    """Verify a signed challenge and link its address to `user`."""
    parsed = _parse(message)
    with transaction.atomic():
        challenge = (
            WalletChallenge.objects.select_for_update()
            .filter(nonce=parsed.nonce, user_id=user.pk)
            .first()
        )
        if challenge is None:
            raise WalletError("Unknown nonce: ask for a new challenge.")
        if challenge.used_at is not None:
            raise WalletError("This challenge was already used: ask for a new one.")
        challenge.used_at = timezone.now()
        challenge.save(update_fields=["used_at"])
    # The burn above is committed before checking, so a failed attempt still spends it.
    if challenge.expires_at <= timezone.now():
        raise WalletError("The challenge expired: ask for a new one.")
    if parsed.domain != domain or challenge.domain != domain:
        raise WalletError(f"The message is for {parsed.domain!r}, not for {domain!r}.")
    if message.strip() != challenge.message.strip():
        raise WalletError("The message differs from the challenge that was issued.")
    try:
        parsed.verify(signature, domain=domain, nonce=challenge.nonce)
    except ExpiredMessage as exc:
        raise WalletError("The challenge expired: ask for a new one.") from exc
    except NotYetValidMessage as exc:
        raise WalletError("The message is not valid yet.") from exc
    except DomainMismatch as exc:
        raise WalletError("The message is for another site.") from exc
    except (InvalidSignature, VerificationError, ValueError) as exc:
        raise WalletError("The signature does not match the address in the message.") from exc
    return _link(user=user, address=challenge.address)


def _link(*, user: AbstractBaseUser, address: str) -> WalletLink:
    try:
        with transaction.atomic():
            if WalletLink.objects.filter(address=address).exclude(user_id=user.pk).exists():
                raise Conflict("This address is linked to another account.")
            link, _ = WalletLink.objects.update_or_create(
                user_id=user.pk, defaults={"address": address}
            )
            return link
    except IntegrityError as exc:  # a concurrent link of the same address won
        raise Conflict("This address is linked to another account.") from exc


def wallet_unlink(*, user: AbstractBaseUser) -> None:
    WalletLink.objects.filter(user_id=user.pk).delete()
