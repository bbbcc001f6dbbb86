"""Marketplace tests start from donors who can list: each has a linked payout wallet
(listing requires one; tests of its absence make their donor with `payout_wallet=False`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest

from marketplace.models import Role, User
from tests.factories import UserFactory


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def _make(role: Role = Role.RESEARCHER, **kwargs: object) -> User:
        kwargs.setdefault("payout_wallet", role == Role.DONOR)
        return cast(User, UserFactory(role=role, **kwargs))

    return _make
