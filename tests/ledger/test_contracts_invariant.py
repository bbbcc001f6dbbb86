"""Stateful property test: whatever sequence of pays, deliveries, releases, refunds (by
operator or buyer, early or late), cancels, pauses and operator rotations, the market holds
exactly the open escrows, a delivered escrow is never refunded, a cancelled voucher is
never paid, and a paused market neither takes payments nor delivers nor releases."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from ledger import vouchers
from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import GENE, MarketEnv, reverts_with

pytestmark = pytest.mark.integration


class MarketMachine(RuleBasedStateMachine):
    env: MarketEnv
    paid = Bundle("paid")

    def __init__(self) -> None:
        super().__init__()
        self.paid_open: dict[str, int] = {}  # paid, not delivered: refundable
        self.delivered: dict[str, int] = {}  # delivered: only releasable
        self.closed: set[str] = set()
        self.paused = False
        env = self.env
        self.signer: LocalAccount = env.operator  # who signs vouchers now
        self.previous: LocalAccount | None = None  # a rotated-out operator still honoured
        # Every example starts from the same chain state.
        self.snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def teardown(self) -> None:
        env = self.env
        env.w3.provider.make_request("evm_revert", [self.snapshot])  # type: ignore[arg-type]

    def _operator_send(self, call_of) -> None:
        self.env.send(self.signer, call_of(self.env.market.functions))

    def _voucher(self, amount: int, buyer: LocalAccount, lifetime: int) -> vouchers.Voucher:
        valid_until = self.env.now() + 5
        return self.env.voucher(
            amount=amount,
            buyer=buyer.address,
            validUntil=valid_until,
            refundAfter=valid_until + 1 + lifetime,
        )

    @rule(
        target=paid,
        amount=st.integers(min_value=1, max_value=50 * GENE),
        buyer=st.sampled_from([3, 5, 6]),
        lifetime=st.integers(min_value=0, max_value=2000),
        by_previous=st.booleans(),
    )
    def pay(self, amount: int, buyer: int, lifetime: int, by_previous: bool) -> str:
        env = self.env
        account = env.accounts[buyer]
        voucher = self._voucher(amount, account, lifetime)
        signer = self.previous if by_previous and self.previous is not None else self.signer
        env.approve(account, amount)
        if self.paused:
            reverts_with("EnforcedPause()", lambda: env.pay(voucher, sender=account, signer=signer))
            self.closed.add(voucher.requestId)
            return voucher.requestId
        env.pay(voucher, sender=account, signer=signer)
        self.paid_open[voucher.requestId] = amount
        return voucher.requestId

    @rule(amount=st.integers(min_value=1, max_value=GENE))
    def cancel_then_pay(self, amount: int) -> None:
        env = self.env
        voucher = self._voucher(amount, env.buyer, 100)
        self._operator_send(lambda f: f.cancel(request_id_bytes(voucher.requestId)))
        env.approve(env.buyer, amount)
        if not self.paused:
            reverts_with("AlreadyPaid()", lambda: env.pay(voucher, signer=self.signer))

    @rule(request=paid)
    def deliver(self, request: str) -> None:
        if request not in self.paid_open:
            return
        call = self.env.market.functions.deliver(request_id_bytes(request))
        if self.paused:
            reverts_with("EnforcedPause()", lambda: self.env.send(self.signer, call))
            return
        self.env.send(self.signer, call)
        self.delivered[request] = self.paid_open.pop(request)

    @rule(request=paid)
    def release(self, request: str) -> None:
        if request in self.closed:
            return
        call = self.env.market.functions.release(request_id_bytes(request))
        if self.paused:  # checked before the escrow's status
            reverts_with("EnforcedPause()", lambda: self.env.send(self.signer, call))
            return
        if request in self.paid_open:
            reverts_with("NotDelivered()", lambda: self.env.send(self.signer, call))
            return
        self.env.send(self.signer, call)
        self.closed.add(request)
        self.delivered.pop(request)

    @rule(request=paid, by_buyer=st.booleans())
    def refund(self, request: str, by_buyer: bool) -> None:
        env = self.env
        escrow = env.market.functions.escrows(request_id_bytes(request)).call()
        if request in self.closed or (by_buyer and env.now() < escrow[1]):
            return
        sender = (
            next(a for a in env.accounts if a.address == escrow[0]) if by_buyer else self.signer
        )
        call = env.market.functions.refund(request_id_bytes(request))
        if request in self.delivered:  # the data has left: nothing is refunded
            reverts_with("NotPaid()", lambda: env.send(sender, call))
            return
        env.send(sender, call)
        self.closed.add(request)
        self.paid_open.pop(request)

    @rule()
    def pause_or_unpause(self) -> None:
        functions = self.env.market.functions
        self.env.send(self.env.owner, functions.unpause() if self.paused else functions.pause())
        self.paused = not self.paused

    @rule(honour=st.booleans(), to=st.sampled_from([1, 7]))
    def rotate_operator(self, honour: bool, to: int) -> None:
        new = self.env.accounts[to]
        if new.address == self.signer.address:
            return
        self.env.send(self.env.owner, self.env.market.functions.setOperator(new.address, honour))
        self.previous = self.signer if honour else None
        self.signer = new

    @rule(seconds=st.integers(min_value=1, max_value=1500))
    def time_passes(self, seconds: int) -> None:
        self.env.increase_time(seconds)

    @invariant()
    def market_balance_equals_open_escrows(self) -> None:
        expected = sum(self.paid_open.values()) + sum(self.delivered.values())
        assert self.env.balance(self.env.market.address) == expected


def test_market_balance_always_equals_open_escrows(env: MarketEnv) -> None:
    MarketMachine.env = env
    runner = MarketMachine.TestCase
    runner.settings = settings(
        max_examples=15,
        stateful_step_count=14,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    runner().runTest()
