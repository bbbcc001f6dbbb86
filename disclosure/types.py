"""The shapes `release_answer` takes and gives: who asks, what the dataset holds for the
query, what may be released, and the refusal when a caller's privacy budget is spent."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from core.errors import DomainError

# Anonymous callers are counted per network prefix, never per address: one IPv6 end site
# (a home line, a cloud VM) is handed a whole /64 and picks any of its 2^64 addresses at
# will (SLAAC, privacy extensions), so a per-address budget would be a budget per query.
# For IPv4, /24 is the smallest block routed between networks (longer BGP prefixes are
# filtered) and the usual unit a cloud or DHCP pool hands neighbouring addresses from.
IPV4_PREFIX_BITS = 24
IPV6_PREFIX_BITS = 64


def network_prefix(address: str) -> str:
    """The budget's network prefix of a client address, as CIDR text.

    "203.0.113.7" -> "203.0.113.0/24"; "2001:db8:1:2:a:b:c:d" -> "2001:db8:1:2::/64";
    an IPv4-mapped IPv6 address ("::ffff:203.0.113.7") counts as its IPv4 address.
    Raises ValueError for text that is not an IP address.
    """
    ip = ipaddress.ip_address(address.strip())
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = IPV4_PREFIX_BITS if ip.version == 4 else IPV6_PREFIX_BITS
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@dataclass(frozen=True)
class Caller:
    """Who asks a discovery query.

    `user_id`: the authenticated user's primary key, or None for an anonymous caller.
    `network_prefix`: the client's network as CIDR text (IPv4 /24, IPv6 /64; see
    `network_prefix()`), always set: an authenticated caller is charged on their account
    AND on their network's shared budget (the Sybil rule, README "Disclosure control").
    Build it with `Caller.for_address(user_id=..., address=request's client address)`.
    """

    user_id: UUID | int | None
    network_prefix: str

    @classmethod
    def for_address(cls, *, user_id: UUID | int | None, address: str) -> Caller:
        """Raises ValueError when `address` is not an IP address."""
        return cls(user_id=user_id, network_prefix=network_prefix(address))

    @property
    def holders(self) -> tuple[str, ...]:
        """The budget holders one query is charged to: "net:<prefix>" always, and
        "user:<id>" for an authenticated caller."""
        net = f"net:{self.network_prefix}"
        return (f"user:{self.user_id}", net) if self.user_id is not None else (net,)


class Granularity(StrEnum):
    """Beacon v2 response granularity the dataset's donor chose (never `record`)."""

    BOOLEAN = "boolean"
    COUNT = "count"


@dataclass(frozen=True)
class AlleleTally:
    """One matched alternate allele in one dataset, from the variant index.

    `allele_count` (AC): copies of the allele among the dataset's genotypes;
    `allele_number` (AN): called alleles at the site (2 per diploid sample called).
    Allele frequency = AC / AN.
    """

    allele_count: int
    allele_number: int

    @property
    def frequency(self) -> float:
        return self.allele_count / self.allele_number if self.allele_number > 0 else 0.0


@dataclass(frozen=True)
class Released:
    """What one dataset's answer to one query may say.

    `suppressed`: True when nothing may be said, not even whether the allele is present
    (the allele is rare here, or absent: the two are deliberately not told apart); then
    `exists` and `count` are None. Otherwise `exists` is True or False and, for count
    granularity, `count` is the allele count (AC, summed over the matched alleles) as
    released: exact when `exact`, else rounded to `DISCLOSURE_COUNT_ROUNDING` after noise.
    For boolean granularity `count` is None.
    `exact`: the answer is the true one (only for alleles that are not rare).
    `charged`: this call took one unit from the caller's budget (False for a common
    allele, and for a rare query this caller was already charged for: the stored answer
    is given again).
    """

    suppressed: bool
    exists: bool | None
    count: int | None
    exact: bool
    charged: bool


@dataclass(frozen=True)
class BudgetStatus:
    """A caller's privacy budget on one dataset, in rare-allele queries.

    Of the caller's holders (account and network prefix) the one with the least left:
    `limit`: its distinct rare-allele queries allowed per window; `spent`: those charged
    to it in the current window; `remaining` = max(0, limit - spent);
    `window_s`: window length in seconds; `renews_at`: when the oldest charge leaves the
    window (None when nothing is spent).
    """

    limit: int
    spent: int
    remaining: int
    window_s: int
    renews_at: datetime | None


class BudgetExhausted(DomainError):
    """The caller (account or network prefix) has spent its rare-allele query budget on
    this dataset for the current window; nothing is released. HTTP 429."""

    status = 429
    code = "privacy_budget_exhausted"

    def __init__(self, message: str, *, holder: str, renews_at: datetime | None) -> None:
        super().__init__(message)
        self.holder = holder
        self.renews_at = renews_at
