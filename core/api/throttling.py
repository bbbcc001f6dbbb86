"""Throttles that read their rates when they run.

DRF copies DEFAULT_THROTTLE_RATES into the class when it is imported, so a rate changed in
settings (an operator's environment, a test) would be ignored until restart.
"""

from __future__ import annotations

from typing import cast

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class ScopedThrottle(ScopedRateThrottle):
    def get_rate(self) -> str | None:
        self.THROTTLE_RATES = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)
        return super().get_rate()
