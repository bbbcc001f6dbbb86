"""Wallet linking with Sign-In with Ethereum (EIP-4361), using the `siwe` library.

Challenge: the server writes the whole message (domain, address, chain id, a random nonce,
issue and expiry times) and keeps it. Link: the signed message must be exactly the one
issued to this user, unexpired and unused, for this site's domain, and signed for the
address in it. A nonce is burnt by the first attempt, right or wrong, so a signature
cannot be guessed at against a live nonce.

Signed for the address means either (EIP-4361 "Signature verification"):
- its EIP-191 `personal_sign` signature recovers the address (an account with a key), or
- the address holds a contract (a smart-contract wallet such as a Safe) and its EIP-1271
  `isValidSignature(bytes32 hash, bytes signature)` returns the magic value 0x1626ba7e for
  the message's EIP-191 hash. The signature is then whatever the wallet defines: a Safe's
  is its owners' signatures over the SafeMessage (EIP-712) wrapping that hash, 65 bytes
  each, or empty when the Safe approved the message on chain (SignMessageLib); the Safe's
  fallback handler checks owners and threshold. The call is a read on CHAIN_RPC_URL, so
  the wallet must be deployed on the configured chain (EIP-6492 counterfactual wallets are
  not supported).

siwe's own EIP-1271 path is not used: it gives up on any signature that is not 65 bytes
(eth_account refuses its length) before calling the contract, which is every multi-owner
Safe's signature.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_account.messages import defunct_hash_message
from eth_utils import is_address, to_checksum_address
from siwe import SiweMessage, generate_nonce
from siwe.siwe import (
    DomainMismatch,
    ExpiredMessage,
    InvalidSignature,
    NotYetValidMessage,
    VerificationError,
)
from web3.exceptions import Web3Exception

from core.errors import Conflict, ServiceUnavailable, ValidationError
from ledger import chain
from ledger.models import WalletChallenge, WalletLink

CHALLENGE_TTL = timedelta(minutes=10)
STATEMENT = "Link this wallet to your GeneMarket account to pay for and receive data access."
# EIP-1271: bytes4(keccak256("isValidSignature(bytes32,bytes)")), returned when valid.
EIP1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")
EIP1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "magicValue", "type": "bytes4"}],
    }
]
# A Safe with many owners signs with 65 bytes per owner; contract owners add more.
MAX_SIGNATURE_BYTES = 4096


class WalletError(ValidationError):
    code = "wallet_verification_failed"


def signature_bytes(signature: str) -> bytes:
    """`0x` + hex (any even length up to MAX_SIGNATURE_BYTES, empty included) as bytes.

    Raises ValidationError otherwise.
    """
    raw = signature.removeprefix("0x") if signature.startswith("0x") else None
    try:
        value = bytes.fromhex(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or len(value) > MAX_SIGNATURE_BYTES:
        raise ValidationError(
            "Expected a hex signature: 0x followed by its bytes (65 for an account's key, "
            f"any length up to {MAX_SIGNATURE_BYTES} for a contract wallet).",
            fields={"signature": ["Invalid."]},
        )
    return value


def siwe_message_hash(message: str) -> bytes:
    """The EIP-191 (`personal_sign`) hash of a SIWE message: what EIP-1271 wallets are asked
    to validate, and what a Safe approves when it signs a message on chain."""
    return bytes(defunct_hash_message(text=message))


def contract_wallet_accepts(*, address: str, message_hash: bytes, signature: bytes) -> bool:
    """EIP-1271: does the contract at `address` accept `signature` for `message_hash`?

    False when the address holds no code, or the call reverts or returns anything but the
    magic value. Raises ServiceUnavailable when the chain node cannot be reached.
    """
    w3 = chain.web3()
    checksum = to_checksum_address(address)
    try:
        if not w3.eth.get_code(checksum):
            return False
        wallet = w3.eth.contract(address=checksum, abi=EIP1271_ABI)
        answer = wallet.functions.isValidSignature(message_hash, signature).call()
    except chain.UNREACHABLE as exc:
        raise ServiceUnavailable(
            "The chain node cannot be reached to check a contract wallet's signature; "
            "try again in a minute."
        ) from exc
    except (Web3Exception, ValueError):  # a revert (a Safe's GS0xx) or a malformed answer
        return False
    return bytes(answer) == EIP1271_MAGIC_VALUE


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


# EIP-4361: the first line names the domain, a "Nonce: " line holds at least eight
# alphanumerics.
_SIWE_FIRST_LINE = re.compile(r"\A\S+ wants you to sign in with your Ethereum account:\n")
_SIWE_NONCE = re.compile(r"^Nonce: ([A-Za-z0-9]{8,64})$", re.MULTILINE)


def _nonce_of(message: str) -> str:
    """The nonce of a Sign-In with Ethereum message (EIP-4361), found by two regular
    expressions in linear time. Raises WalletError when the text is not shaped like one."""
    found = _SIWE_NONCE.findall(message)
    if not _SIWE_FIRST_LINE.match(message) or len(found) != 1:
        raise WalletError("The message is not a Sign-In with Ethereum message.")
    return str(found[0])


def _parse(message: str) -> SiweMessage:
    try:
        return SiweMessage.from_message(message)
    except Exception as exc:  # the parser raises several unrelated types
        raise WalletError("The message is not a Sign-In with Ethereum message.") from exc


def wallet_link(*, user: AbstractBaseUser, message: str, signature: str, domain: str) -> WalletLink:
    """Verify a signed challenge and link its address to `user`.

    `signature`: 0x-hex; 65 bytes from an account's key, or what a contract wallet's
    EIP-1271 `isValidSignature` accepts. Raises WalletError (400), Conflict (409, the
    address is another account's) or ServiceUnavailable (503, the chain node is needed
    for a contract wallet and cannot be reached).
    """
    nonce = _nonce_of(message)
    signed = signature_bytes(signature)
    with transaction.atomic():
        challenge = (
            WalletChallenge.objects.select_for_update().filter(nonce=nonce, user_id=user.pk).first()
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
    if message.strip() != challenge.message.strip():
        raise WalletError("The message differs from the challenge that was issued.")
    # Parsed only once it is the text we issued: the siwe package's ABNF parser takes
    # seconds on some 4,000-character inputs (a string of zeros), work any caller could ask.
    parsed = _parse(challenge.message)
    if parsed.domain != domain or challenge.domain != domain:
        raise WalletError(f"The message is for {parsed.domain!r}, not for {domain!r}.")
    try:
        # The message checks, then an account's own key (EIP-191 recovery, offline).
        parsed.verify(signature, domain=domain, nonce=challenge.nonce)
    except ExpiredMessage as exc:
        raise WalletError("The challenge expired: ask for a new one.") from exc
    except NotYetValidMessage as exc:
        raise WalletError("The message is not valid yet.") from exc
    except DomainMismatch as exc:
        raise WalletError("The message is for another site.") from exc
    except (InvalidSignature, VerificationError, ValueError, IndexError) as exc:
        # Every message check passed (siwe checks the signature last): a contract wallet?
        message_hash = siwe_message_hash(parsed.prepare_message())
        if not contract_wallet_accepts(
            address=challenge.address, message_hash=message_hash, signature=signed
        ):
            raise WalletError(
                "The signature does not match the address in the message (for a contract "
                "wallet: the contract did not accept it under EIP-1271)."
            ) from exc
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
