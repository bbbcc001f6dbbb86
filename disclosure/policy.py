"""The disclosure policy, read from settings when it is applied (so a test's or the
bench's override takes effect), and the noise it draws (OpenDP)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from disclosure.types import AlleleTally


@dataclass(frozen=True)
class DisclosurePolicy:
    """Settings of README "Disclosure control"; units in the names (AF a fraction, AC in
    alleles, budgets in distinct rare-allele queries per dataset per window)."""

    enabled: bool
    rare_af: float
    rare_min_ac: int
    noise_scale: float
    suppress_below: int
    count_rounding: int
    user_budget: int
    network_budget: int
    window_s: int

    @classmethod
    def current(cls) -> DisclosurePolicy:
        return cls(
            enabled=settings.DISCLOSURE_ENABLED,
            rare_af=settings.DISCLOSURE_RARE_AF,
            rare_min_ac=settings.DISCLOSURE_RARE_MIN_AC,
            noise_scale=settings.DISCLOSURE_NOISE_SCALE,
            suppress_below=settings.DISCLOSURE_SUPPRESS_BELOW,
            count_rounding=max(1, settings.DISCLOSURE_COUNT_ROUNDING),
            user_budget=settings.DISCLOSURE_USER_BUDGET,
            network_budget=settings.DISCLOSURE_NETWORK_BUDGET,
            window_s=settings.DISCLOSURE_BUDGET_WINDOW_S,
        )

    def budget_for(self, holder: str) -> int:
        return self.user_budget if holder.startswith("user:") else self.network_budget

    def is_rare(self, alleles: Sequence[AlleleTally]) -> bool:
        """A query touches a rare allele when no allele matched (absent: AF 0, which must not
        be told apart from rare) or any matched allele is rare in this dataset."""
        if not alleles:
            return True
        return any(a.allele_count < self.rare_min_ac or a.frequency < self.rare_af for a in alleles)


@lru_cache(maxsize=8)
def _laplace(scale: float):  # type: ignore[no-untyped-def]  # an OpenDP Measurement
    import opendp.prelude as dp

    # "contrib": OpenDP's measurements not yet vetted by its committee; the discrete
    # Laplace (geometric) mechanism on integers is among them.
    dp.enable_features("contrib")
    return dp.m.make_laplace(
        dp.atom_domain(T=int, nan=False), dp.absolute_distance(T=int), scale=scale
    )


def noisy_count(true_count: int, *, scale: float) -> int:
    """`true_count` plus discrete Laplace noise of `scale` (alleles), drawn by OpenDP's
    sampler (a cryptographically seeded, exact integer sampler; epsilon = 1/scale per
    allele of sensitivity)."""
    if scale <= 0:
        return true_count
    return int(_laplace(float(scale))(int(true_count)))
