"""Wallet reads, for other apps (the profile shows the linked address)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from ledger.models import WalletLink


def wallet_address_of(*, user: AbstractBaseUser) -> str | None:
    link = WalletLink.objects.filter(user_id=user.pk).only("address").first()
    return link.address if link else None


# EIP-7702: an account with a key that delegated its code holds 0xef0100 || address; it
# still signs with its own key, so it is not a contract wallet for what follows.
EIP7702_DELEGATION_PREFIX = bytes.fromhex("ef0100")


def wallet_is_contract(*, address: str) -> bool | None:
    """Whether `address` is a smart-contract wallet (Safe and the like) on the configured
    chain: it holds code and no key of its own signs for it. Such a wallet cannot sign an
    EIP-2612 permit (OpenZeppelin's ERC20Permit checks ECDSA only) and pays with its own
    transactions. None when the chain node cannot be reached.
    """
    from eth_utils import is_address, to_checksum_address
    from web3.exceptions import Web3Exception

    from ledger import chain

    if not is_address(address):
        return None
    try:
        code = bytes(chain.web3().eth.get_code(to_checksum_address(address)))
    except chain.UNREACHABLE:
        return None
    except Web3Exception:
        return None
    return bool(code) and not code.startswith(EIP7702_DELEGATION_PREFIX)
