"""Stateful property test: whatever sequence of pays, releases and refunds (by operator or
buyer, early or late, valid or not), the market holds exactly the open escrows."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from ledger.vouchers import request_id_bytes
from tests.ledger.contracts_env import GENE, MarketEnv

pytestmark = pytest.mark.integration


class MarketMachine(RuleBasedStateMachine):
    env: MarketEnv
    paid = Bundle("paid")

    def __init__(self) -> None:
        super().__init__()
        self.open: dict[str, int] = {}
        self.closed: set[str] = set()
        # Every example starts from the same chain state.
        self.snapshot = self.env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def teardown(self) -> None:
        self.env.w3.provider.make_request("evm_revert", [self.snapshot])  # type: ignore[arg-type]

    @rule(
        target=paid,
        amount=st.integers(min_value=1, max_value=50 * GENE),
        buyer=st.sampled_from([3, 5, 6]),
        lifetime=st.integers(min_value=0, max_value=2000),
    )
    def pay(self, amount: int, buyer: int, lifetime: int) -> str:
        env = self.env
        account = env.accounts[buyer]
        voucher = env.voucher(
            amount=amount, buyer=account.address, refundAfter=env.now() + lifetime
        )
        env.approve(account, amount)
        env.pay(voucher, sender=account)
        self.open[voucher.requestId] = amount
        return voucher.requestId

    @rule(request=paid)
    def release(self, request: str) -> None:
        if request in self.closed:
            return
        self.env.send(
            self.env.operator, self.env.market.functions.release(request_id_bytes(request))
        )
        self.closed.add(request)
        self.open.pop(request)

    @rule(request=paid, by_buyer=st.booleans())
    def refund(self, request: str, by_buyer: bool) -> None:
        env = self.env
        escrow = env.market.functions.escrows(request_id_bytes(request)).call()
        if request in self.closed or (by_buyer and env.now() < escrow[1]):
            return
        sender = (
            next(a for a in env.accounts if a.address == escrow[0]) if by_buyer else env.operator
        )
        env.send(sender, env.market.functions.refund(request_id_bytes(request)))
        self.closed.add(request)
        self.open.pop(request)

    @rule(seconds=st.integers(min_value=1, max_value=1500))
    def time_passes(self, seconds: int) -> None:
        self.env.increase_time(seconds)

    @invariant()
    def market_balance_equals_open_escrows(self) -> None:
        assert self.env.balance(self.env.market.address) == sum(self.open.values())


def test_market_balance_always_equals_open_escrows(env: MarketEnv) -> None:
    MarketMachine.env = env
    runner = MarketMachine.TestCase
    runner.settings = settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    runner().runTest()
