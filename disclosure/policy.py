"""The disclosure policy, read from settings when it is applied (so a test's or the
bench's override takes effect): what each answer may say, given its noisy draws
(drawn with OpenDP in disclosure.batch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings


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
    gate_margin: float = 1.0

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
            gate_margin=settings.DISCLOSURE_GATE_MARGIN_SCALES,
        )

    def budget_for(self, holder: str) -> int:
        return self.user_budget if holder.startswith("user:") else self.network_budget

    def rare_below(self, allele_number: int) -> int:
        """The allele count from which an allele is common in a dataset of `allele_number`
        called alleles: AC >= max(DISCLOSURE_RARE_MIN_AC, ceil(DISCLOSURE_RARE_AF * AN))."""
        return max(self.rare_min_ac, math.ceil(self.rare_af * allele_number - 1e-9))

    def gate(self, allele_number: int) -> int:
        """The noisy allele count from which a query is free (not charged): the rare
        threshold lowered by `gate_margin` noise scales, so that an allele at the threshold
        is charged with probability about 1/2 e^-margin (18 % at the default of 1), one at
        1.5 times the threshold (AC 30 of AN 2,000) with under 1 %."""
        return math.floor(self.rare_below(allele_number) - self.gate_margin * self.noise_scale)

    def exact_from(self, allele_number: int) -> int:
        """The noisy allele count from which the true answer is released: the rare
        threshold raised by EXACT_MARGIN_SCALES noise scales."""
        return math.ceil(self.rare_below(allele_number) + EXACT_MARGIN_SCALES * self.noise_scale)

    def undrawn_from(self, allele_number: int) -> int:
        """The true allele count from which no noise is drawn: the answer is the exact one
        a draw would give but with probability 1/2 e^-10 (2.3e-5), the truncation (the
        delta of the mechanism's (epsilon, delta)); below it every answer is drawn."""
        if self.noise_scale <= 0:
            return self.exact_from(allele_number)
        return math.ceil(self.exact_from(allele_number) + TAIL_SCALES * self.noise_scale)

    def answer(
        self, *, true_ac: int, allele_number: int, draws: tuple[int, int] | None, with_count: bool
    ) -> tuple[bool, bool, bool | None, int | None, bool]:
        """(charged, suppressed, exists, count, exact) for an allele count `true_ac` of
        `allele_number` called alleles, given `draws` = (gate, answer): two independent noisy
        counts (true_ac plus discrete Laplace noise of `noise_scale` each), or None when
        true_ac >= undrawn_from(allele_number) (or protection is off).

        Everything a caller sees is a function of the two draws (the truncation aside), so
        no output flips at a fixed allele count that one person's genome could cross:
        - the gate draw decides the cost: charged below gate(AN), free from it; from
          exact_from(AN) the answer is the true one (presence, and the count for count
          granularity) and `exact`;
        - a charged answer says "present" when the answer draw reaches
          DISCLOSURE_SUPPRESS_BELOW, else it is suppressed (rare and absent look alike);
          a free one says "present", with the gate draw as its noisy count.
        A released noisy count is rounded to DISCLOSURE_COUNT_ROUNDING, never below the
        floor it passed."""
        if not self.enabled:
            return False, False, true_ac > 0, true_ac if with_count else None, True
        if draws is None:
            return False, False, True, true_ac if with_count else None, True
        gate_draw, answer_draw = draws
        if gate_draw >= self.exact_from(allele_number):
            # Propose-test-release: a true count far below the threshold passes this test
            # with probability 1/2 e^-(its distance in scales), the mechanism's delta.
            return False, False, true_ac > 0, true_ac if with_count else None, True
        charged = gate_draw < self.gate(allele_number)
        floor = self.suppress_below
        # A free answer is said from the gate draw (above the floor by construction): a
        # second floor there would suppress alleles of AC 15-25 now and then, and each such
        # "no", free and unlimited, is what the attack lives on.
        answer_draw = answer_draw if charged else max(gate_draw, floor)
        if answer_draw < floor:
            return charged, True, None, None, False
        if not with_count:
            return charged, False, True, None, False
        step = self.count_rounding
        return charged, False, True, max(floor, step * round(answer_draw / step)), False


# How many noise scales above the rare threshold a gate draw must be for the true answer to
# be released (propose-test-release; at 3, an allele of AC 1 passes with probability 4e-5).
EXACT_MARGIN_SCALES = 3
# How many noise scales above the exact-count gate an allele count must be for its answer
# to be given without a draw (README "Disclosure control", the truncation).
TAIL_SCALES = 10
