"""`{% beacon_disclosure %}`: what the Beacon may reveal about a donor's data, in plain words
with the numbers of the settings in force (on the donor's listing pages)."""

from __future__ import annotations

from django import template

from disclosure.policy import DisclosurePolicy

register = template.Library()


@register.inclusion_tag("disclosure/what_a_beacon_reveals.html")
def beacon_disclosure() -> dict[str, object]:
    policy = DisclosurePolicy.current()
    return {
        "policy": policy,
        "rare_percent": f"{policy.rare_af * 100:g}",
        "window_days": f"{policy.window_s / 86400:g}",
        # AN 2,000: a dataset of 1,000 diploid genomes.
        "sure_copies": policy.undrawn_from(2000) if policy.enabled else policy.rare_min_ac,
    }
