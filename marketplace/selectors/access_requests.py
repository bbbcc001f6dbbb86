"""Access-request reads, filtered by who is asking (RELIABILITY.md item 2: list views
filter in the selector, never only in get_object)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.db.models import Q, QuerySet

from core.errors import NotFound
from ledger.vouchers import typed_data
from marketplace.consent import Match, parse_codes, purpose_fits
from marketplace.consent.codes import ConsentCode
from marketplace.consent.matching import conditions_to_commit
from marketplace.models import (
    AccessRequest,
    AuditEntry,
    DacMembership,
    Dataset,
    DatasetTier,
    Role,
    User,
)
from marketplace.models.lifecycle import ENDED
from marketplace.selectors.scope import request_files, request_scope
from marketplace.services.audit import audit_views

# The standard ERC-20 `approve`: the token may be any ERC-20 (DESIGN "On chain").
ERC20_APPROVE_ABI = [
    {
        "name": "approve",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
CONTRACT_WALLET_CANNOT_PERMIT = (
    "The linked wallet is a smart-contract wallet (such as a Safe), which cannot sign an "
    "EIP-2612 permit: a permit is an ECDSA signature of an account's own key. Pay with the "
    "wallet's own transactions instead: the voucher's approve_call, then its call (in a "
    "Safe, one batch of the two)."
)


def request_list(*, viewer: User) -> QuerySet[AccessRequest]:
    """The researcher's own requests, those on the donor's datasets, and those on datasets
    whose committee the viewer sits on (issue 19 §1: a reviewer of another committee sees
    none of them). Admins see every request: they oversee the platform (close, flags)."""
    requests = AccessRequest.objects.select_related(
        "dataset", "dataset__donor", "dataset__dac", "researcher"
    )
    if viewer.role == Role.ADMIN:
        return requests
    # A subquery, not a join over the members: one row per request whoever else sits there.
    committees = DacMembership.objects.filter(user=viewer).values("dac_id")
    return requests.filter(
        Q(researcher=viewer) | Q(dataset__donor=viewer) | Q(dataset__dac_id__in=committees)
    )


def request_get(*, viewer: User, request_id: UUID | str) -> AccessRequest:
    """A request the viewer may see; any other id answers 404, as if it did not exist."""
    found = request_list(viewer=viewer).filter(pk=request_id).first()
    if found is None:
        raise NotFound("No such request.")
    return found


# Decisions whose reasons the researcher and the donor are shown (issue 16 §8); other
# entries' reasons are operational notes (a flag is for admins only).
REASONED_ACTIONS = frozenset(
    {"approve", "reject", "revoke", "close", "withdraw", "refunding", "return"}
)


def dataset_consent(*, dataset: Dataset) -> list[ConsentCode]:
    return [ConsentCode(c["code"], c["value"]) for c in dataset.duo_codes]


def request_purpose_fit(*, dataset: Dataset, purpose_codes: Sequence[object]) -> Match:
    """The consent matcher's answer for a purpose (codes as clients send them) against the
    dataset's consent, as the request form shows it live and submission checks it.
    Raises ValidationError (`purpose_codes`) when the codes cannot be read."""
    purpose = parse_codes(purpose_codes, field="purpose_codes")
    return purpose_fits(dataset_consent(dataset=dataset), purpose, access_days=dataset.access_days)


def request_conditions(*, dataset: Dataset) -> list[ConsentCode]:
    """The conditions the dataset's consent requires a purpose to list (issue 16 §7)."""
    return conditions_to_commit(dataset_consent(dataset=dataset))


def request_open_for(
    *, researcher: User, dataset: Dataset, tier: DatasetTier | None = None
) -> AccessRequest | None:
    """The researcher's open request for the dataset (any state outside lifecycle.ENDED),
    newest first, for the same scope (`tier`: None for the whole dataset); None when every
    earlier one has ended (issue 16 §7). Renewals of a live
    grant are their own kind and not counted (`services.renewals`)."""
    return (
        AccessRequest.objects.filter(
            dataset=dataset, researcher=researcher, tier=tier, renews__isnull=True
        )
        .exclude(state__in=ENDED)
        .order_by("-created_at")
        .first()
    )


def request_timeline(*, request: AccessRequest) -> list[dict[str, object]]:
    """What happened to a request, from the audit log: [{"at", "action", "state", "by",
    "reason" ("" unless a decision gave one)}], oldest first."""
    entries = AuditEntry.objects.filter(object_type="access_request", object_id=str(request.pk))
    steps: list[dict[str, object]] = []
    for view in audit_views(entries.order_by("seq")):
        entry = view.entry
        action = entry.action.removeprefix("request.")
        reason = view.fields.get("reason", "") if action in REASONED_ACTIONS else ""
        steps.append(
            {
                "at": entry.created_at,
                "action": action,
                "state": entry.data.get("state"),
                "by": view.who,
                "reason": str(reason or ""),
            }
        )
    return steps


def request_voucher(*, request: AccessRequest) -> dict[str, object] | None:
    """What a wallet needs to pay (API.md): amount, token, market, the EIP-712 typed data
    and signature, `approve_call`, the ready calldata of the token's ERC-20
    `approve(market, amount)`, and `call`, that of `AccessMarket.pay`. A smart-contract
    wallet runs the two calls, in that order, as its own transactions (one Safe batch)."""
    if request.state != AccessRequest.State.PAYABLE or not request.voucher_signature:
        return None
    from web3 import Web3

    from ledger.artifacts import load_artifact
    from ledger.models import Deployment
    from ledger.selectors.deployments import TOKEN
    from marketplace.services.settlement import voucher_for

    voucher = voucher_for(request)
    token = Deployment.objects.filter(chain_id=request.voucher_chain_id or 0, name=TOKEN).first()
    market = Web3().eth.contract(
        address=Web3.to_checksum_address(request.voucher_market),
        abi=load_artifact("AccessMarket")["abi"],
    )
    return {
        "amount": str(int(request.amount)),
        "token": token.address if token else None,
        "market": request.voucher_market,
        "chain_id": request.voucher_chain_id,
        "valid_until": request.voucher_valid_until,
        "refund_after": request.voucher_refund_after,
        "typed_data": typed_data(
            chain_id=int(request.voucher_chain_id or 0),
            market=request.voucher_market,
            voucher=voucher,
        ),
        "signature": request.voucher_signature,
        "approve_call": {
            "to": token.address if token else None,
            "data": Web3()
            .eth.contract(abi=ERC20_APPROVE_ABI)
            .encode_abi("approve", args=[market.address, int(request.amount)]),
        },
        "call": {
            "to": market.address,
            "data": market.encode_abi("pay", args=[voucher.as_tuple(), request.voucher_signature]),
        },
    }


def request_grant_view(*, request: AccessRequest) -> dict[str, object] | None:
    if request.state not in (AccessRequest.State.GRANTED, AccessRequest.State.SETTLED):
        return None
    return {
        "expires_at": request.expires_at,
        "files": [
            {
                "id": str(f.pk),
                "filename": f.filename,
                "size": f.plaintext_size,
                "plaintext_sha256": f.plaintext_sha256,
                # the checksum is of the file inside a ZIP (genomics ingest)
                "zipped": (f.metadata or {}).get("container") == "zip",
                "download_url": f"/api/v1/access-requests/{request.pk}/files/{f.pk}",
            }
            for f in request_files(request)
        ],
        "scope": request_scope(request),
    }


def request_permit(*, request: AccessRequest) -> dict[str, object] | None:
    """EIP-2612 typed data for paying in one signature (`payWithPermit`), when the token
    supports permits and the buyer is an account with a key; None otherwise (the wallet
    approves, then pays). A smart-contract wallet (a Safe) gets None: the permit must be
    an ECDSA signature of the owner's own key (EIP-2612; OpenZeppelin's ERC20Permit), which
    a contract does not have. The permit lasts as long as the voucher."""
    if request.state != AccessRequest.State.PAYABLE or not request.voucher_signature:
        return None
    from ledger.selectors.wallets import wallet_is_contract

    if wallet_is_contract(address=request.buyer):
        return None
    from web3 import Web3
    from web3.exceptions import Web3Exception

    from ledger import chain
    from ledger.artifacts import load_artifact
    from ledger.models import Deployment
    from ledger.permits import permit_typed_data
    from ledger.selectors.deployments import TOKEN

    token_row = Deployment.objects.filter(
        chain_id=request.voucher_chain_id or 0, name=TOKEN
    ).first()
    if token_row is None:
        return None
    token = chain.web3().eth.contract(
        address=Web3.to_checksum_address(token_row.address), abi=load_artifact("GeneToken")["abi"]
    )
    try:
        name = token.functions.name().call()
        nonce = token.functions.nonces(Web3.to_checksum_address(request.buyer)).call()
    except (Web3Exception, ValueError, OSError):
        return None  # no permit on this token, or the node is away: approve and pay
    return permit_typed_data(
        chain_id=int(request.voucher_chain_id or 0),
        token=token_row.address,
        token_name=str(name),
        owner=request.buyer,
        spender=request.voucher_market,
        value=int(request.amount),
        nonce=int(nonce),
        deadline=int(request.voucher_valid_until or 0),
    )


def request_permit_call(*, request: AccessRequest, signature: str) -> dict[str, str]:
    """The calldata of `payWithPermit` with the buyer's permit signature (65 bytes)."""
    from web3 import Web3

    from core.errors import Conflict, ValidationError
    from ledger.artifacts import load_artifact
    from ledger.selectors.wallets import wallet_is_contract
    from marketplace.services.settlement import voucher_for

    if request.state != AccessRequest.State.PAYABLE or not request.voucher_signature:
        raise Conflict("This request is not waiting for a payment.")
    if wallet_is_contract(address=request.buyer):
        raise Conflict(CONTRACT_WALLET_CANNOT_PERMIT)
    raw = signature.removeprefix("0x")
    if len(raw) != 130 or any(c not in "0123456789abcdefABCDEF" for c in raw):
        raise ValidationError(
            "The permit signature must be 65 bytes of hex.", fields={"signature": ["Invalid."]}
        )
    r, s, v = bytes.fromhex(raw[:64]), bytes.fromhex(raw[64:128]), int(raw[128:], 16)
    market = Web3().eth.contract(
        address=Web3.to_checksum_address(request.voucher_market),
        abi=load_artifact("AccessMarket")["abi"],
    )
    data = market.encode_abi(
        "payWithPermit",
        args=[
            voucher_for(request).as_tuple(),
            request.voucher_signature,
            int(request.voucher_valid_until or 0),
            v if v >= 27 else v + 27,
            r,
            s,
        ],
    )
    return {"to": market.address, "data": data}


# Gas a payment may take: payWithPermit measured 137,414 and approve + pay 150,261 (README
# "Gas"); the budget leaves room for a busier block and a different token.
PAY_GAS_BUDGET = 200_000


def request_payment_funds(
    *, request: AccessRequest, contract_wallet: bool
) -> dict[str, int] | None:
    """What the buyer's wallet holds against what paying costs (issue 16 §5), read from the
    chain before the page offers to pay: {"token_balance", "token_needed", "token_missing",
    "gas_balance", "gas_needed", "gas_missing"}, token amounts in base units and gas in wei
    (gas_needed = gas price x PAY_GAS_BUDGET; 0 for a contract wallet, whose owners pay
    the gas). None when the request is not payable or the chain cannot be read: the page
    then offers to pay as before and the wallet reports what is missing."""
    if request.state != AccessRequest.State.PAYABLE or not request.buyer:
        return None
    from eth_utils import to_checksum_address
    from web3.exceptions import Web3Exception

    from core.errors import DomainError
    from ledger import chain
    from ledger.selectors.deployments import TOKEN, deployed_contract

    unreadable: tuple[type[Exception], ...] = (*chain.UNREACHABLE, Web3Exception, DomainError)
    try:
        _, token = deployed_contract(name=TOKEN)
        buyer = to_checksum_address(request.buyer)
        token_balance = int(token.functions.balanceOf(buyer).call())
        w3 = chain.web3()
        gas_balance = int(w3.eth.get_balance(buyer))
        gas_needed = 0 if contract_wallet else int(w3.eth.gas_price) * PAY_GAS_BUDGET
    except unreadable:
        return None
    token_needed = int(request.amount)
    return {
        "token_balance": token_balance,
        "token_needed": token_needed,
        "token_missing": max(0, token_needed - token_balance),
        "gas_balance": gas_balance,
        "gas_needed": gas_needed,
        "gas_missing": max(0, gas_needed - gas_balance),
    }
